// Token-bucket arithmetic, pure: state in, state out, the clock passed in. The memory store runs
// it directly; the Redis store runs the same rules in Lua (redis-store.ts), so the two agree.
//
// Lazy refill: a bucket is only touched when a request arrives. Between visits it gains
// ratePerSecond tokens per second, capped at burst. A key never seen before is a full bucket,
// which is why a store may forget a full (or idle long enough) bucket without changing any answer.
//
// Two ways to spend:
// - take:  all or nothing. The request passes only if `cost` tokens are there now; a refused take
//          spends nothing. A cost larger than burst can never pass (retryAfterMs is Infinity).
//          Used for request counts (rateLimit, keyRateLimit).
// - debit: always spends, and the balance may go negative. Used for uploadRate: the guard debits
//          the bytes it has actually received as they arrive (they are already spent, whether or
//          not the request is then refused), and refuses once the balance is below zero. A
//          negative balance is debt: the bucket refills from there, so the client waits it off.

import type { TokenBucketParams } from '../config/types.js';

export interface BucketState {
  /** balance after the last visit; may be negative after a debit */
  tokens: number;
  /** clock reading (ms) of the last visit */
  updatedMs: number;
}

export interface BucketDecision {
  allowed: boolean;
  /** the state to store */
  state: BucketState;
  /** 0 when allowed; else ms until the same request would pass (Infinity: never, cost > burst or rate 0) */
  retryAfterMs: number;
  /** whole tokens left after this decision, never below 0 */
  remaining: number;
}

/** The balance at `nowMs`: lazy refill capped at burst. A clock that went backwards refills nothing. */
export function refilledTokens(state: BucketState | undefined, params: TokenBucketParams, nowMs: number): number {
  if (state === undefined) return params.burst;
  const elapsedMs = Math.max(0, nowMs - state.updatedMs);
  return Math.min(params.burst, state.tokens + (elapsedMs * params.ratePerSecond) / 1000);
}

/** ms until the balance has grown by `missing` tokens. */
export function msToEarn(missing: number, params: TokenBucketParams): number {
  if (missing <= 0) return 0;
  if (!(params.ratePerSecond > 0)) return Number.POSITIVE_INFINITY;
  return Math.ceil((missing / params.ratePerSecond) * 1000);
}

/** ms until a bucket holding `tokens` is full again; a store may drop the entry after that. */
export function msUntilFull(tokens: number, params: TokenBucketParams): number {
  return msToEarn(params.burst - tokens, params);
}

/** All or nothing: spends `cost` tokens if they are there, else nothing. */
export function takeFromBucket(state: BucketState | undefined, params: TokenBucketParams, cost: number, nowMs: number): BucketDecision {
  const tokens = refilledTokens(state, params, nowMs);
  if (tokens >= cost) {
    const left = tokens - cost;
    return { allowed: true, state: { tokens: left, updatedMs: nowMs }, retryAfterMs: 0, remaining: wholeTokens(left) };
  }
  const retryAfterMs = cost > params.burst ? Number.POSITIVE_INFINITY : msToEarn(cost - tokens, params);
  return { allowed: false, state: { tokens, updatedMs: nowMs }, retryAfterMs, remaining: wholeTokens(tokens) };
}

/**
 * Always spends `amount` (bytes already received); allowed while the balance stays >= 0.
 * retryAfterMs is the time to pay off the debt.
 */
export function debitBucket(state: BucketState | undefined, params: TokenBucketParams, amount: number, nowMs: number): BucketDecision {
  const left = refilledTokens(state, params, nowMs) - amount;
  const allowed = left >= 0;
  return { allowed, state: { tokens: left, updatedMs: nowMs }, retryAfterMs: allowed ? 0 : msToEarn(-left, params), remaining: wholeTokens(left) };
}

function wholeTokens(tokens: number): number {
  return Math.max(0, Math.floor(tokens));
}
