// Rate limits and bans on an upload route, decided on the request head (before a byte of body is
// read) plus one running check while the body arrives (uploadRate). The gate builds store keys and
// HTTP answers; the arithmetic lives in token-bucket.ts / ban-tracker.ts, the state in a
// RateLimitStore (memory or Redis).
//
// Order on the head: ban (403) → API key (401, header-admission.ts) → per-IP bucket → per-key
// bucket → byte budget not in debt (429). A refused take spends nothing, so a client hammering a
// limit does not dig itself deeper; every guard verdict (429s included) counts towards a ban.

import type { CompiledPolicy, TokenBucketParams } from '../config/types.js';
import { GuardError } from '../errors.js';
import type { RateLimitScope } from '../observe/request-observer.js';
import type { RateLimitStore, TakeResult } from './rate-limit-store.js';

/** Bytes received between two debits of the byte budget: one store round trip per this many bytes. */
export const BYTE_DEBIT_STEP = 256 * 1024;
/** Retry-After when a bucket can never pass (cost above burst, rate 0): an hour. */
const NEVER_RETRY_AFTER_S = 3600;

export interface Client {
  /** rateLimitKey(clientIp): IPv4 address or IPv6 /64 */
  key: string;
  /** configured API key name, when one was presented and matched */
  apiKeyName: string | null;
}

/** A rate-limit refusal: which bucket, and the headers the 429 carries. */
export class RateLimitedError extends GuardError {
  readonly scope: RateLimitScope;
  constructor(scope: RateLimitScope, headers: Record<string, string>) {
    super('RATE_LIMITED', scopeMessage(scope));
    this.scope = scope;
    this.responseHeaders = headers;
  }
}

export class AdmissionGate {
  readonly #store: RateLimitStore;
  constructor(store: RateLimitStore) {
    this.#store = store;
  }

  /** 403 IP_BANNED while the client serves a ban. */
  async checkBan(policy: CompiledPolicy, client: Client): Promise<void> {
    if (policy.ban === null) return;
    const msLeft = await this.#store.isBanned(client.key);
    if (msLeft > 0) {
      const error = new GuardError('IP_BANNED');
      error.responseHeaders = { 'retry-after': String(retryAfterSeconds(msLeft)) };
      throw error;
    }
  }

  /**
   * Request buckets and the byte budget; throws RateLimitedError. Returns the headers that
   * describe the per-IP bucket (RateLimit-Policy / RateLimit) for the forwarded answer.
   */
  async admit(policy: CompiledPolicy, client: Client): Promise<Record<string, string>> {
    let headers: Record<string, string> = {};
    if (policy.rateLimit !== null) {
      const result = await this.#store.take(`${policy.name}:ip:${client.key}`, policy.rateLimit, 1);
      headers = rateLimitHeaders('ip', policy.rateLimit, result);
      if (!result.allowed) throw new RateLimitedError('ip', headers);
    }
    if (policy.keyRateLimit !== undefined && client.apiKeyName !== null) {
      const result = await this.#store.take(`${policy.name}:key:${client.apiKeyName}`, policy.keyRateLimit, 1);
      if (!result.allowed) throw new RateLimitedError('key', rateLimitHeaders('key', policy.keyRateLimit, result));
    }
    if (policy.uploadRate !== null) {
      // Debit 0: only asks whether the client is still paying off earlier bytes.
      const result = await this.#store.debit(bytesKey(policy, client), policy.uploadRate, 0);
      if (!result.allowed) throw new RateLimitedError('bytes', rateLimitHeaders('bytes', policy.uploadRate, result));
    }
    return headers;
  }

  /**
   * A meter for the body's bytes, or null when the policy has no byte budget. It debits the bytes
   * actually received in steps of BYTE_DEBIT_STEP and calls `fail` once the budget is overdrawn.
   */
  byteMeter(policy: CompiledPolicy, client: Client): ByteMeter | null {
    if (policy.uploadRate === null) return null;
    return new ByteMeter(this.#store, bytesKey(policy, client), policy.uploadRate);
  }

  /**
   * Counts a guard verdict towards the client's ban (policy `ban`). Not counted: IP_BANNED (bans
   * would extend themselves forever) and STORAGE_FULL (the server's state, not the client's doing).
   */
  async recordRejection(policy: CompiledPolicy, client: Client, code: string): Promise<void> {
    if (policy.ban === null || code === 'IP_BANNED' || code === 'STORAGE_FULL') return;
    await this.#store.recordRejection(client.key, policy.ban);
  }
}

export class ByteMeter {
  readonly #store: RateLimitStore;
  readonly #key: string;
  readonly #params: TokenBucketParams;
  #pending = 0;
  #overdrawn: RateLimitedError | null = null;

  constructor(store: RateLimitStore, key: string, params: TokenBucketParams) {
    this.#store = store;
    this.#key = key;
    this.#params = params;
  }

  /** Records received bytes; `fail` is called (at most once) when the budget is overdrawn. */
  record(bytes: number, fail: (err: GuardError) => void): void {
    if (this.#overdrawn !== null) return;
    this.#pending += bytes;
    if (this.#pending >= BYTE_DEBIT_STEP) void this.#flush(fail);
  }

  /** Debits what is still pending (end of body, or the request failed: the bytes were spent). */
  async settle(): Promise<void> {
    if (this.#overdrawn === null && this.#pending > 0) await this.#flush(() => undefined);
  }

  async #flush(fail: (err: GuardError) => void): Promise<void> {
    const amount = this.#pending;
    this.#pending = 0;
    const result = await this.#store.debit(this.#key, this.#params, amount);
    if (!result.allowed && this.#overdrawn === null) {
      this.#overdrawn = new RateLimitedError('bytes', rateLimitHeaders('bytes', this.#params, result));
      fail(this.#overdrawn);
    }
  }
}

function bytesKey(policy: CompiledPolicy, client: Client): string {
  return `${policy.name}:bytes:${client.key}`;
}

function scopeMessage(scope: RateLimitScope): string {
  if (scope === 'ip') return 'Too many requests from this client';
  if (scope === 'key') return 'Too many requests with this API key';
  return 'Upload byte budget exhausted for this client';
}

function retryAfterSeconds(ms: number): number {
  return Number.isFinite(ms) ? Math.max(1, Math.ceil(ms / 1000)) : NEVER_RETRY_AFTER_S;
}

/**
 * IETF draft-ietf-httpapi-ratelimit-headers: the policy as quota q per window w (seconds), where
 * the window is the time an empty bucket takes to fill; the state as r units remaining and t
 * seconds until the request would pass (or, when allowed, until the bucket is full again).
 */
export function rateLimitHeaders(scope: RateLimitScope, params: TokenBucketParams, result: TakeResult): Record<string, string> {
  const windowS = params.ratePerSecond > 0 ? Math.max(1, Math.ceil(params.burst / params.ratePerSecond)) : NEVER_RETRY_AFTER_S;
  const resetS = result.allowed
    ? params.ratePerSecond > 0
      ? Math.ceil((params.burst - result.remaining) / params.ratePerSecond)
      : 0
    : retryAfterSeconds(result.retryAfterMs);
  const headers: Record<string, string> = {
    'ratelimit-policy': `"${scope}";q=${Math.floor(params.burst)};w=${windowS}`,
    ratelimit: `"${scope}";r=${result.remaining};t=${resetS}`,
  };
  if (!result.allowed) headers['retry-after'] = String(retryAfterSeconds(result.retryAfterMs));
  return headers;
}
