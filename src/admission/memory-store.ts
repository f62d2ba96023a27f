// Buckets and bans in this process, on lru-cache: memory stays bounded however many addresses a
// client sprays from (`max` entries per map). Every entry gets a ttl at which forgetting it
// changes nothing: a bucket's ttl is the time until it is full again (an unknown key is a full
// bucket), a ban's ttl is its end, a rejection window's ttl is its close. Under pressure, the
// least recently used entries go first; that is the price of the bound, and it only ever
// favours the client (a forgotten bucket starts full again).
//
// The clock is injectable (tests); lru-cache is given the same clock so ttls and refills agree.

import { LRUCache } from 'lru-cache';
import type { BanParams, TokenBucketParams } from '../config/types.js';
import { banMsLeft, countRejection } from './ban-tracker.js';
import type { RejectionWindow } from './ban-tracker.js';
import { DEFAULT_MAX_TRACKED_CLIENTS } from './rate-limit-store.js';
import type { BanResult, RateLimitStore, TakeResult } from './rate-limit-store.js';
import { debitBucket, msUntilFull, takeFromBucket } from './token-bucket.js';
import type { BucketDecision, BucketState } from './token-bucket.js';

export interface MemoryStoreOptions {
  /** entries kept per map (buckets, rejection windows, bans); default 100_000 */
  maxTrackedClients?: number;
  /** monotonic ms clock; default performance.now */
  now?: () => number;
}

export class MemoryStore implements RateLimitStore {
  readonly #now: () => number;
  readonly #buckets: LRUCache<string, BucketState>;
  readonly #rejections: LRUCache<string, RejectionWindow>;
  /** client key -> clock reading when the ban ends */
  readonly #bans: LRUCache<string, number>;

  constructor(options: MemoryStoreOptions = {}) {
    const max = options.maxTrackedClients ?? DEFAULT_MAX_TRACKED_CLIENTS;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxTrackedClients must be a positive integer, got ${max}`);
    // performance.now, not Date.now: a wall-clock step (NTP) must not refill or drain buckets.
    const now = options.now ?? (() => performance.now());
    this.#now = now;
    // ttlResolution 0: read the clock on every check rather than caching it on a real-time timer,
    // which would go stale against an injected clock.
    const cacheOptions = { max, ttlResolution: 0, perf: { now } };
    this.#buckets = new LRUCache<string, BucketState>(cacheOptions);
    this.#rejections = new LRUCache<string, RejectionWindow>(cacheOptions);
    this.#bans = new LRUCache<string, number>(cacheOptions);
  }

  /** Buckets currently held (for tests and a gauge). */
  get trackedBuckets(): number {
    return this.#buckets.size;
  }

  takeNow(key: string, params: TokenBucketParams, cost: number): TakeResult {
    const nowMs = this.#now();
    return this.#store(key, params, takeFromBucket(this.#buckets.get(key), params, cost, nowMs));
  }

  debitNow(key: string, params: TokenBucketParams, amount: number): TakeResult {
    const nowMs = this.#now();
    return this.#store(key, params, debitBucket(this.#buckets.get(key), params, amount, nowMs));
  }

  recordRejectionNow(clientKey: string, ban: BanParams): BanResult {
    const nowMs = this.#now();
    const outcome = countRejection(this.#rejections.get(clientKey), ban, nowMs);
    if (outcome.bannedUntilMs !== null) {
      this.#rejections.delete(clientKey);
      this.#bans.set(clientKey, outcome.bannedUntilMs, { ttl: positiveTtl(outcome.bannedUntilMs - nowMs) });
      return { banned: true };
    }
    if (outcome.window !== null) this.#rejections.set(clientKey, outcome.window, { ttl: positiveTtl(outcome.window.endsMs - nowMs) });
    return { banned: false };
  }

  banMsLeftNow(clientKey: string): number {
    return banMsLeft(this.#bans.get(clientKey), this.#now());
  }

  take(key: string, params: TokenBucketParams, cost: number): Promise<TakeResult> {
    return Promise.resolve(this.takeNow(key, params, cost));
  }

  debit(key: string, params: TokenBucketParams, amount: number): Promise<TakeResult> {
    return Promise.resolve(this.debitNow(key, params, amount));
  }

  recordRejection(clientKey: string, ban: BanParams): Promise<BanResult> {
    return Promise.resolve(this.recordRejectionNow(clientKey, ban));
  }

  isBanned(clientKey: string): Promise<number> {
    return Promise.resolve(this.banMsLeftNow(clientKey));
  }

  stats(): Record<string, number> {
    return { buckets: this.#buckets.size, rejectionWindows: this.#rejections.size, bans: this.#bans.size };
  }

  close(): Promise<void> {
    this.#buckets.clear();
    this.#rejections.clear();
    this.#bans.clear();
    return Promise.resolve();
  }

  #store(key: string, params: TokenBucketParams, decision: BucketDecision): TakeResult {
    const untilFullMs = msUntilFull(decision.state.tokens, params);
    // A full bucket is what an unknown key means anyway: nothing to keep.
    if (untilFullMs <= 0) this.#buckets.delete(key);
    // Rate 0 never refills: keep the entry without a ttl (only LRU pressure evicts it).
    else this.#buckets.set(key, decision.state, { ttl: Number.isFinite(untilFullMs) ? untilFullMs : 0 });
    return { allowed: decision.allowed, remaining: decision.remaining, retryAfterMs: decision.retryAfterMs };
  }
}

/** lru-cache reads ttl 0 as "never expires"; an entry due now must still expire. */
function positiveTtl(ms: number): number {
  return Math.max(1, Math.ceil(ms));
}
