// Buckets and bans in Redis, shared by every replica (rateLimitStore: redis://...).
//
// Each operation is one Lua script, so concurrent takes from many replicas are atomic, and the
// scripts read the clock with redis TIME, so replicas' clocks do not matter. The rules are those
// of token-bucket.ts and ban-tracker.ts, written again in Lua.
//
// Redis must never take the guard down or stall a request:
// - every call resolves within timeoutMs; on an error or timeout it resolves with the
//   onStoreError fallback and `storeError: true`, never rejects;
// - the offline queue is off: while disconnected, commands fail at once instead of piling up and
//   spending tokens long after the caller stopped waiting;
// - the client reconnects by itself forever (capped backoff), so a later call works again;
// - 'error' events go to onError (default: ignored) instead of crashing the process.
//
// Keys: upload-guard:tb:<key> (hash tokens/ts), upload-guard:rej:<client> (counter),
// upload-guard:ban:<client> (flag with PX).

import { createClient, defineScript } from 'redis';
import type { CommandParser } from 'redis';
import type { BanParams, TokenBucketParams } from '../config/types.js';
import { MemoryStore } from './memory-store.js';
import type { BanResult, RateLimitStore, TakeResult } from './rate-limit-store.js';

/**
 * What a call answers when Redis cannot:
 * - allow: let the request through (availability first);
 * - deny:  refuse it (RATE_LIMITED with a short Retry-After);
 * - local: decide with an in-process bucket meanwhile (each replica limits on its own).
 */
export type StoreErrorPolicy = 'allow' | 'deny' | 'local';

export interface RedisStoreOptions {
  /** redis:// or rediss:// URL (may carry user, password and db) */
  url: string;
  /** per call, including a wait for a reconnect; default 100 */
  timeoutMs?: number;
  /** default 'local' */
  onStoreError?: StoreErrorPolicy;
  /** bound of the in-process fallback used by onStoreError 'local'; default 100_000 */
  maxTrackedClients?: number;
  /** connection errors (one per failed reconnect attempt); default: ignored */
  onError?: (err: Error) => void;
  /** longest pause between reconnect attempts; default 1000 */
  maxReconnectDelayMs?: number;
}

export const KEY_PREFIX = 'upload-guard:';
export const DEFAULT_REDIS_TIMEOUT_MS = 100;
/** Retry-After suggested when onStoreError is 'deny' */
const DENY_RETRY_AFTER_MS = 1000;

// Token bucket: KEYS[1] bucket; ARGV rate/s, burst, amount, mode ('1' debit, '0' take).
// Replies {allowed 0|1, tokens as a string (a Lua number reply would be truncated), retryAfterMs (-1: never)}.
// A full bucket is deleted (an absent key is a full bucket); otherwise it expires when it would be full.
const TOKEN_BUCKET_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local rate, burst, amount, debit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1'
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(saved[1]), tonumber(saved[2])
if tokens == nil or ts == nil then tokens = burst; ts = now end
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
tokens = math.min(burst, tokens + elapsed * rate / 1000)
local allowed, missing = 0, 0
if debit then
  tokens = tokens - amount
  if tokens >= 0 then allowed = 1 else missing = -tokens end
elseif tokens >= amount then
  tokens = tokens - amount
  allowed = 1
else
  missing = amount - tokens
end
local retry = 0
if allowed == 0 then
  if (not debit and amount > burst) or rate <= 0 then retry = -1 else retry = math.ceil(missing / rate * 1000) end
end
if tokens >= burst then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', now))
  if rate > 0 then redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((burst - tokens) / rate * 1000))) end
end
return {allowed, string.format('%.17g', tokens), retry}
`;

// Ban counter, fixed window: KEYS[1] counter, KEYS[2] ban flag; ARGV after, withinMs, forMs. Replies 1 when the ban starts.
const COUNT_REJECTION_LUA = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if count >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

interface BucketReply {
  allowed: boolean;
  tokens: number;
  retryAfterMs: number;
}

const scripts = {
  tokenBucket: defineScript({
    SCRIPT: TOKEN_BUCKET_LUA,
    NUMBER_OF_KEYS: 1,
    parseCommand(parser: CommandParser, key: string, params: TokenBucketParams, amount: number, mode: 'take' | 'debit') {
      parser.pushKey(key);
      parser.push(String(params.ratePerSecond), String(params.burst), String(amount), mode === 'debit' ? '1' : '0');
    },
    transformReply: (reply: unknown): BucketReply => {
      if (!Array.isArray(reply) || reply.length !== 3) throw new Error(`unexpected token bucket reply: ${String(reply)}`);
      const retry = Number(reply[2]);
      return { allowed: Number(reply[0]) === 1, tokens: Number(String(reply[1])), retryAfterMs: retry < 0 ? Number.POSITIVE_INFINITY : retry };
    },
  }),
  countRejection: defineScript({
    SCRIPT: COUNT_REJECTION_LUA,
    NUMBER_OF_KEYS: 2,
    parseCommand(parser: CommandParser, counterKey: string, banKey: string, ban: BanParams) {
      parser.pushKey(counterKey);
      parser.pushKey(banKey);
      parser.push(String(ban.after), String(Math.max(1, Math.ceil(ban.withinMs))), String(Math.max(1, Math.ceil(ban.forMs))));
    },
    transformReply: (reply: unknown): boolean => Number(reply) === 1,
  }),
};

function createGuardClient(options: RedisStoreOptions, timeoutMs: number) {
  const maxDelayMs = options.maxReconnectDelayMs ?? 1000;
  return createClient({
    url: options.url,
    scripts,
    disableOfflineQueue: true,
    // node-redis drops a command from its queue when this expires; our own race (below) is what
    // guarantees the caller an answer.
    commandOptions: { timeout: timeoutMs },
    socket: {
      connectTimeout: Math.max(1000, timeoutMs),
      // Never give up (the default gives up on socket timeouts): 50, 100, 200 ... maxDelayMs, plus jitter
      // so replicas do not reconnect in lockstep.
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 16), maxDelayMs) + Math.floor(Math.random() * 50),
    },
  });
}

type GuardRedisClient = ReturnType<typeof createGuardClient>;

/** Thrown internally when a call outlives timeoutMs. */
class StoreTimeoutError extends Error {
  constructor(ms: number) {
    super(`rate limit store did not answer within ${ms} ms`);
    this.name = 'StoreTimeoutError';
  }
}

export class RedisStore implements RateLimitStore {
  readonly #client: GuardRedisClient;
  readonly #timeoutMs: number;
  readonly #onStoreError: StoreErrorPolicy;
  /** used only while Redis cannot answer and onStoreError is 'local' */
  readonly #fallback: MemoryStore | null;
  #closed = false;

  constructor(options: RedisStoreOptions) {
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_REDIS_TIMEOUT_MS;
    this.#onStoreError = options.onStoreError ?? 'local';
    this.#fallback = this.#onStoreError === 'local' ? new MemoryStore({ maxTrackedClients: options.maxTrackedClients }) : null;
    this.#client = createGuardClient(options, this.#timeoutMs);
    const onError = options.onError ?? (() => {});
    // Without an 'error' listener an EventEmitter error event would crash the process.
    this.#client.on('error', (err: unknown) => onError(err instanceof Error ? err : new Error(String(err))));
    // connect() retries through reconnectStrategy and only settles once connected (or closed);
    // calls made meanwhile fail fast (no offline queue) and get the fallback.
    this.#client.connect().catch((err: unknown) => {
      if (!this.#closed) onError(err instanceof Error ? err : new Error(String(err)));
    });
  }

  /** true while connected; for /readyz. */
  get isReady(): boolean {
    return this.#client.isReady;
  }

  /** Resolves once connected, or false after `ms` (startup checks, tests). */
  async waitUntilReady(ms: number): Promise<boolean> {
    const deadline = performance.now() + ms;
    while (!this.#client.isReady) {
      if (this.#closed || performance.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return true;
  }

  async take(key: string, params: TokenBucketParams, cost: number): Promise<TakeResult> {
    return this.#bucket(key, params, cost, 'take');
  }

  async debit(key: string, params: TokenBucketParams, amount: number): Promise<TakeResult> {
    return this.#bucket(key, params, amount, 'debit');
  }

  async recordRejection(clientKey: string, ban: BanParams): Promise<BanResult> {
    try {
      const banned = await this.#withTimeout(this.#client.countRejection(`${KEY_PREFIX}rej:${clientKey}`, `${KEY_PREFIX}ban:${clientKey}`, ban));
      return { banned };
    } catch {
      if (this.#fallback !== null) return { ...this.#fallback.recordRejectionNow(clientKey, ban), storeError: true };
      return { banned: false, storeError: true };
    }
  }

  async isBanned(clientKey: string): Promise<number> {
    try {
      const msLeft = await this.#withTimeout(this.#client.pTTL(`${KEY_PREFIX}ban:${clientKey}`));
      // PTTL: -2 no key, -1 no expiry (never written by us; treat as not banned rather than forever)
      return msLeft > 0 ? msLeft : 0;
    } catch {
      return this.#fallback?.banMsLeftNow(clientKey) ?? 0;
    }
  }

  /** Whether Redis answers; while it does not, the counts of the local fallback (onStoreError local). */
  stats(): Record<string, number> {
    const fallback = this.#fallback?.stats() ?? {};
    return { redisConnected: this.#client.isReady ? 1 : 0, ...Object.fromEntries(Object.entries(fallback).map(([k, v]) => [`fallback_${k}`, v])) };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#fallback?.close();
    // destroy, not quit: quit waits for pending replies, which may never come from a dead server.
    this.#client.destroy();
  }

  async #bucket(key: string, params: TokenBucketParams, amount: number, mode: 'take' | 'debit'): Promise<TakeResult> {
    try {
      const reply = await this.#withTimeout(this.#client.tokenBucket(`${KEY_PREFIX}tb:${key}`, params, amount, mode));
      return {
        allowed: reply.allowed,
        remaining: Math.max(0, Math.floor(reply.tokens)),
        retryAfterMs: reply.retryAfterMs,
      };
    } catch {
      return this.#bucketFallback(key, params, amount, mode);
    }
  }

  #bucketFallback(key: string, params: TokenBucketParams, amount: number, mode: 'take' | 'debit'): TakeResult {
    if (this.#fallback !== null) {
      const local = mode === 'take' ? this.#fallback.takeNow(key, params, amount) : this.#fallback.debitNow(key, params, amount);
      return { ...local, storeError: true };
    }
    if (this.#onStoreError === 'allow') return { allowed: true, remaining: 0, retryAfterMs: 0, storeError: true };
    return { allowed: false, remaining: 0, retryAfterMs: DENY_RETRY_AFTER_MS, storeError: true };
  }

  /** Settles within timeoutMs whatever the client does; the late reply, if any, is dropped. */
  #withTimeout<T>(operation: Promise<T>): Promise<T> {
    if (this.#closed) {
      operation.catch(() => {});
      return Promise.reject(new Error('rate limit store is closed'));
    }
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new StoreTimeoutError(this.#timeoutMs)), this.#timeoutMs);
      operation.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }
}
