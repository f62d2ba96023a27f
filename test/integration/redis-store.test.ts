// RedisStore against a real redis-server started on a free port (no persistence). Covers the
// shared, atomic bucket across two store instances, shared bans, and what the guard sees when
// Redis dies, freezes and comes back. Without redis-server the suite is skipped, or fails in CI.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { RedisStore } from '../../src/admission/redis-store.js';
import type { RedisStoreOptions } from '../../src/admission/redis-store.js';
import { freePort, REDIS_SERVER, startRedis, stopRedis } from '../helpers/redis-server.ts';

/** Polls until a take answers from Redis again (not the fallback). */
async function untilStoreAnswers(store: RedisStore, timeoutMs: number): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    const result = await store.take(`probe:${Math.random()}`, { ratePerSecond: 1, burst: 1 }, 1);
    if (result.storeError === undefined) return performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`store did not recover within ${timeoutMs} ms`);
}

describe('RedisStore (real redis-server)', { skip: REDIS_SERVER === null ? 'redis-server not installed' : false }, () => {
  let port = 0;
  let redis: ChildProcess;
  const stores: RedisStore[] = [];
  const connectionErrors: Error[] = [];

  function newStore(options: Partial<RedisStoreOptions> = {}): RedisStore {
    const store = new RedisStore({ url: `redis://127.0.0.1:${port}`, onError: (err) => connectionErrors.push(err), ...options });
    stores.push(store);
    return store;
  }

  before(async () => {
    port = await freePort();
    redis = await startRedis(port);
  });

  after(async () => {
    await Promise.all(stores.map((store) => store.close()));
    await stopRedis(redis);
  });

  it('runs the token bucket in Redis (10/s, burst 5: 11111000)', async () => {
    const store = newStore({ timeoutMs: 1000, onStoreError: 'deny' });
    assert.ok(await store.waitUntilReady(5_000));
    const params = { ratePerSecond: 10, burst: 5 };
    let pattern = '';
    const results = [];
    for (let i = 0; i < 8; i++) {
      const result = await store.take('pattern', params, 1);
      results.push(result);
      pattern += result.allowed ? '1' : '0';
    }
    assert.equal(pattern, '11111000');
    assert.ok(results.every((result) => result.storeError === undefined));
    const refused = results[7]!;
    assert.ok(refused.retryAfterMs > 0 && refused.retryAfterMs <= 100, `retryAfterMs ${refused.retryAfterMs}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
    const second = await store.take('pattern', params, 1);
    assert.equal(second.allowed, true, 'refilled after 250 ms');
    assert.equal((await store.take('pattern', params, 6)).retryAfterMs, Number.POSITIVE_INFINITY, 'cost above burst never passes');
  });

  it('debits into debt and refuses until paid off', async () => {
    const store = newStore({ timeoutMs: 1000, onStoreError: 'deny' });
    assert.ok(await store.waitUntilReady(5_000));
    const bytes = { ratePerSecond: 1000, burst: 2000 };
    const first = await store.debit('bytes', bytes, 2500);
    assert.equal(first.allowed, false);
    assert.ok(first.retryAfterMs > 400 && first.retryAfterMs <= 500, `retryAfterMs ${first.retryAfterMs}`);
    assert.equal(first.remaining, 0);
    await new Promise((resolve) => setTimeout(resolve, 550));
    assert.equal((await store.debit('bytes', bytes, 0)).allowed, true);
  });

  it('lets exactly burst through 200 concurrent takes from two instances (burst 50)', async (t) => {
    const a = newStore({ timeoutMs: 2000, onStoreError: 'deny' });
    const b = newStore({ timeoutMs: 2000, onStoreError: 'deny' });
    assert.ok(await a.waitUntilReady(5_000));
    assert.ok(await b.waitUntilReady(5_000));
    // A rate slow enough that nothing refills during the test.
    const params = { ratePerSecond: 0.001, burst: 50 };
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).take('shared', params, 1)));
    const elapsedMs = performance.now() - started;
    assert.equal(results.filter((result) => result.storeError !== undefined).length, 0);
    const allowed = results.filter((result) => result.allowed).length;
    t.diagnostic(`200 concurrent takes from 2 instances: ${allowed} allowed in ${elapsedMs.toFixed(1)} ms`);
    assert.equal(allowed, 50);
  });

  it('shares bans between instances', async () => {
    const a = newStore({ timeoutMs: 1000 });
    const b = newStore({ timeoutMs: 1000 });
    assert.ok(await a.waitUntilReady(5_000));
    assert.ok(await b.waitUntilReady(5_000));
    const ban = { after: 3, withinMs: 60_000, forMs: 30_000 };
    assert.deepEqual(await a.recordRejection('198.51.100.7', ban), { banned: false });
    assert.deepEqual(await b.recordRejection('198.51.100.7', ban), { banned: false });
    assert.equal(await a.isBanned('198.51.100.7'), 0);
    assert.deepEqual(await a.recordRejection('198.51.100.7', ban), { banned: true });
    const msLeft = await b.isBanned('198.51.100.7');
    assert.ok(msLeft > 29_000 && msLeft <= 30_000, `ban ms left ${msLeft}`);
    assert.equal(await b.isBanned('198.51.100.8'), 0);
  });

  it('answers within the timeout per onStoreError while Redis is down or frozen, and recovers', async (t) => {
    const timeoutMs = 100;
    const allow = newStore({ timeoutMs, onStoreError: 'allow' });
    const deny = newStore({ timeoutMs, onStoreError: 'deny' });
    const local = newStore({ timeoutMs, onStoreError: 'local' });
    for (const store of [allow, deny, local]) assert.ok(await store.waitUntilReady(5_000));
    const params = { ratePerSecond: 0.001, burst: 2 };
    const ban = { after: 2, withinMs: 60_000, forMs: 60_000 };

    // Frozen: the socket stays open but nothing answers, so only the timeout can end the call.
    redis.kill('SIGSTOP');
    try {
      const started = performance.now();
      const [allowed, denied] = await Promise.all([allow.take('frozen', params, 1), deny.take('frozen', params, 1)]);
      const elapsedMs = performance.now() - started;
      t.diagnostic(`frozen redis: answered in ${elapsedMs.toFixed(1)} ms (timeout ${timeoutMs} ms)`);
      assert.deepEqual(allowed, { allowed: true, remaining: 0, retryAfterMs: 0, storeError: true });
      assert.deepEqual(denied, { allowed: false, remaining: 0, retryAfterMs: 1000, storeError: true });
      assert.ok(elapsedMs < timeoutMs + 150, `took ${elapsedMs} ms`);
      const banStarted = performance.now();
      assert.deepEqual(await deny.recordRejection('frozen', ban), { banned: false, storeError: true });
      assert.equal(await deny.isBanned('frozen'), 0);
      assert.ok(performance.now() - banStarted < 2 * timeoutMs + 150);
    } finally {
      redis.kill('SIGCONT');
    }
    await untilStoreAnswers(allow, 5_000);

    // Dead: killed outright.
    await stopRedis(redis);
    const started = performance.now();
    const [allowed, denied] = await Promise.all([allow.take('dead', params, 1), deny.take('dead', params, 1)]);
    const elapsedMs = performance.now() - started;
    t.diagnostic(`killed redis: answered in ${elapsedMs.toFixed(1)} ms`);
    assert.equal(allowed.allowed, true);
    assert.equal(allowed.storeError, true);
    assert.equal(denied.allowed, false);
    assert.equal(denied.storeError, true);
    assert.ok(elapsedMs < timeoutMs + 150, `took ${elapsedMs} ms`);

    // 'local' keeps limiting with an in-process bucket meanwhile (burst 2).
    const localPattern = [];
    for (let i = 0; i < 3; i++) {
      const result = await local.take('dead', params, 1);
      assert.equal(result.storeError, true);
      localPattern.push(result.allowed ? 1 : 0);
    }
    assert.deepEqual(localPattern, [1, 1, 0]);
    assert.deepEqual(await local.recordRejection('dead', ban), { banned: false, storeError: true });
    assert.deepEqual(await local.recordRejection('dead', ban), { banned: true, storeError: true });
    assert.ok((await local.isBanned('dead')) > 0);

    // Restarted on the same port: the clients reconnect by themselves.
    redis = await startRedis(port);
    const recoveries = await Promise.all([allow, deny, local].map((store) => untilStoreAnswers(store, 5_000)));
    t.diagnostic(`restarted redis: stores answered again after ${recoveries.map((ms) => ms.toFixed(0)).join(', ')} ms`);
    const fresh = await deny.take('after-restart', params, 1);
    assert.deepEqual(fresh, { allowed: true, remaining: 1, retryAfterMs: 0 });
    assert.ok(connectionErrors.length > 0, 'connection errors were reported to onError, not thrown');
  });

  it('closes without hanging, and a closed store answers with the fallback', async () => {
    const store = newStore({ timeoutMs: 100, onStoreError: 'deny' });
    assert.ok(await store.waitUntilReady(5_000));
    await store.close();
    const result = await store.take('closed', { ratePerSecond: 1, burst: 1 }, 1);
    assert.deepEqual(result, { allowed: false, remaining: 0, retryAfterMs: 1000, storeError: true });
  });

  it('reports a store that never connects without throwing', async () => {
    const unreachablePort = await freePort();
    const store = newStore({ url: `redis://127.0.0.1:${unreachablePort}`, timeoutMs: 50, onStoreError: 'allow' });
    const started = performance.now();
    const result = await store.take('x', { ratePerSecond: 1, burst: 1 }, 1);
    assert.ok(performance.now() - started < 200);
    assert.deepEqual(result, { allowed: true, remaining: 0, retryAfterMs: 0, storeError: true });
    assert.equal(await store.waitUntilReady(100), false);
  });
});
