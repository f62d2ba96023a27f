// Human-friendly quantities in the config: sizes ("50MiB"), durations ("60s") and rates ("5/s",
// "100MiB/min"). Each parser returns a plain number in the unit the hot path uses and throws an
// Error whose message can be shown to the user as is.

const SIZE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  sec: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const RATE_PERIODS_S: Readonly<Record<string, number>> = {
  s: 1,
  sec: 1,
  second: 1,
  m: 60,
  min: 60,
  minute: 60,
  h: 3600,
  hour: 3600,
  d: 86_400,
  day: 86_400,
};

/** A decimal number followed by an optional unit word, e.g. "1.5 GiB". */
const QUANTITY = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i;

function splitQuantity(input: string): { amount: number; unit: string } | null {
  const match = QUANTITY.exec(input);
  if (match === null) return null;
  return { amount: Number(match[1]), unit: (match[2] ?? '').toLowerCase() };
}

function describe(input: unknown): string {
  return typeof input === 'string' ? JSON.stringify(input) : String(input);
}

/** Bytes from a number of bytes or "<n><unit>" with B, KB/MB/GB/TB (1000) or KiB/MiB/GiB/TiB (1024). */
export function parseSize(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) {
      throw new Error(`invalid size ${describe(input)}: a number of bytes must be a whole number >= 0`);
    }
    return input;
  }
  const quantity = splitQuantity(input);
  const multiplier = quantity === null ? undefined : SIZE_UNITS[quantity.unit === '' ? 'b' : quantity.unit];
  if (quantity === null || multiplier === undefined) {
    throw new Error(
      `invalid size ${describe(input)}: expected bytes or a number with a unit like "64KiB", "50MiB", "1GiB" (1024-based) or "50MB" (1000-based)`,
    );
  }
  // Fractions of a byte make no sense; "1.5KiB" is 1536 and "0.3KB" is 300.
  const bytes = Math.floor(quantity.amount * multiplier);
  if (!Number.isSafeInteger(bytes)) throw new Error(`invalid size ${describe(input)}: too large`);
  return bytes;
}

/** Milliseconds from a number of seconds or "<n><unit>" with ms, s, m/min, h or d. */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) {
      throw new Error(`invalid duration ${describe(input)}: a number of seconds must be >= 0`);
    }
    return Math.round(input * 1000);
  }
  const quantity = splitQuantity(input);
  // A bare number in a string means seconds, like a bare YAML number does.
  const multiplier = quantity === null ? undefined : DURATION_UNITS_MS[quantity.unit === '' ? 's' : quantity.unit];
  if (quantity === null || multiplier === undefined) {
    throw new Error(`invalid duration ${describe(input)}: expected seconds or a number with a unit like "500ms", "60s", "15m" or "1h"`);
  }
  return Math.round(quantity.amount * multiplier);
}

/**
 * What the numerator of a rate counts: `count` for requests ("5/s"), `bytes` for byte budgets
 * ("100MiB/min", where a bare number means bytes).
 */
export type RateKind = 'count' | 'bytes';

/** Units per second from "<amount>/<period>" (period s, min, h, d, optionally "/5min") or a number per second. */
export function parseRate(input: string | number, kind: RateKind = 'count'): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input <= 0) throw new Error(`invalid rate ${describe(input)}: must be > 0 per second`);
    return input;
  }
  const example = kind === 'bytes' ? '"100MiB/min" or "1MB/s"' : '"5/s", "300/min" or "10/h"';
  const slash = input.indexOf('/');
  if (slash < 0) throw new Error(`invalid rate ${describe(input)}: expected <amount>/<period> like ${example}`);
  const amountText = input.slice(0, slash);
  // "/min" is one minute; "/5min" is allowed too.
  const periodText = input.slice(slash + 1).trim();
  const period = splitQuantity(/^\d/.test(periodText) ? periodText : `1${periodText}`);
  const periodSeconds = period === null ? undefined : RATE_PERIODS_S[period.unit];
  if (period === null || periodSeconds === undefined || period.amount === 0) {
    throw new Error(`invalid rate ${describe(input)}: the period must be s, min, h or d, like ${example}`);
  }
  let amount: number;
  if (kind === 'bytes') {
    try {
      amount = parseSize(amountText.trim());
    } catch {
      throw new Error(`invalid rate ${describe(input)}: expected a size per period like ${example}`);
    }
  } else {
    const count = splitQuantity(amountText);
    if (count === null || count.unit !== '') {
      throw new Error(`invalid rate ${describe(input)}: expected a request count per period like ${example}`);
    }
    amount = count.amount;
  }
  if (amount <= 0) throw new Error(`invalid rate ${describe(input)}: must be > 0`);
  return amount / (period.amount * periodSeconds);
}
