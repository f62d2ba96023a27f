// Where token buckets and ban counters live: in this process (memory-store.ts) or in Redis,
// shared by every replica (redis-store.ts). Both apply the rules of token-bucket.ts and
// ban-tracker.ts; the request path only sees this interface.
//
// Keys are opaque to the stores. The caller builds them so that buckets with different params
// never share a key, e.g. `${policy.name}:ip:${rateLimitKey(ip)}`, `${policy.name}:bytes:...`,
// `${policy.name}:key:${apiKeyName}`; ban calls take rateLimitKey(ip) so an IPv6 client cannot
// dodge a ban by hopping addresses inside its /64.

import type { BanParams, TokenBucketParams } from '../config/types.js';

export interface TakeResult {
  allowed: boolean;
  /** whole tokens left (never below 0) */
  remaining: number;
  /** 0 when allowed; else ms until it would pass (Infinity: never, cost > burst). Feeds Retry-After. */
  retryAfterMs: number;
  /** set when the store could not answer and the result is the configured fallback (onStoreError) */
  storeError?: true;
}

export interface BanResult {
  /** true when this rejection completed the count and the ban starts now */
  banned: boolean;
  storeError?: true;
}

export interface RateLimitStore {
  /** All or nothing: spends `cost` tokens if the bucket holds them (requests: cost 1). */
  take(key: string, params: TokenBucketParams, cost: number): Promise<TakeResult>;
  /** Always spends `amount` (bytes already received); the balance may go negative (token-bucket.ts). */
  debit(key: string, params: TokenBucketParams, amount: number): Promise<TakeResult>;
  /**
   * Counts one rejection of this client towards a ban. Count only the guard's own verdicts
   * (not IP_BANNED answers, which would extend bans forever).
   */
  recordRejection(clientKey: string, ban: BanParams): Promise<BanResult>;
  /** ms of ban left, 0 when not banned (also 0 when the store cannot answer). */
  isBanned(clientKey: string): Promise<number>;
  /** Entry counts for the status page (buckets, bans, ...); cheap, never a scan of Redis. */
  stats(): Record<string, number>;
  /** Releases connections and timers; the store answers nothing afterwards. */
  close(): Promise<void>;
}

/** Default bound on clients tracked in memory (buckets, rejection windows and bans, each). */
export const DEFAULT_MAX_TRACKED_CLIENTS = 100_000;
