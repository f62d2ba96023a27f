import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MemoryStore } from '../../src/admission/memory-store.js';

function fakeClock(startMs = 1_000) {
  let nowMs = startMs;
  return {
    now: () => nowMs,
    advance(ms: number) {
      nowMs += ms;
    },
  };
}

// A gc() for steadier heap figures without requiring --expose-gc on the command line.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const tenPerSecondBurstFive = { ratePerSecond: 10, burst: 5 };
const ban = { after: 3, withinMs: 60_000, forMs: 15 * 60_000 };

describe('MemoryStore buckets', () => {
  it('applies the token bucket per key with the injected clock', async () => {
    const clock = fakeClock();
    const store = new MemoryStore({ now: clock.now });
    let pattern = '';
    for (let i = 0; i < 8; i++) pattern += (await store.take('a', tenPerSecondBurstFive, 1)).allowed ? '1' : '0';
    assert.equal(pattern, '11111000');
    assert.equal((await store.take('b', tenPerSecondBurstFive, 1)).allowed, true, 'keys are independent');
    clock.advance(250);
    pattern = '';
    for (let i = 0; i < 3; i++) pattern += (await store.take('a', tenPerSecondBurstFive, 1)).allowed ? '1' : '0';
    assert.equal(pattern, '110');
    const refused = await store.take('a', tenPerSecondBurstFive, 1);
    assert.deepEqual(refused, { allowed: false, remaining: 0, retryAfterMs: 50 });
  });

  it('keeps a bucket until it would be full, then forgets it losslessly', async () => {
    const clock = fakeClock();
    const store = new MemoryStore({ now: clock.now });
    await store.take('a', tenPerSecondBurstFive, 5);
    assert.equal(store.trackedBuckets, 1);
    clock.advance(499);
    assert.equal((await store.take('a', tenPerSecondBurstFive, 5)).allowed, false, 'not yet full');
    clock.advance(1);
    assert.equal((await store.take('a', tenPerSecondBurstFive, 5)).allowed, true);
    clock.advance(500);
    // a bucket that would be full is not kept: lru ttl expired, take of 0 leaves it full and drops it
    await store.take('a', tenPerSecondBurstFive, 0);
    assert.equal(store.trackedBuckets, 0);
  });

  it('debits bytes into debt and recovers', async () => {
    const clock = fakeClock();
    const store = new MemoryStore({ now: clock.now });
    const bytes = { ratePerSecond: 1000, burst: 2000 };
    assert.equal((await store.debit('ip', bytes, 2500)).allowed, false);
    assert.equal((await store.debit('ip', bytes, 0)).retryAfterMs, 500);
    clock.advance(500);
    assert.equal((await store.debit('ip', bytes, 0)).allowed, true);
    clock.advance(2000);
    assert.equal((await store.take('ip', bytes, 2000)).allowed, true, 'full again after the debt was paid');
  });

  it('stays bounded under 1,000,000 distinct keys (max 100,000)', async (t) => {
    const store = new MemoryStore({ maxTrackedClients: 100_000 });
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const started = performance.now();
    let maxSize = 0;
    for (let i = 0; i < 1_000_000; i++) {
      store.takeNow(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:${i >> 24}`, tenPerSecondBurstFive, 1);
      if ((i & 0x3fff) === 0) maxSize = Math.max(maxSize, store.trackedBuckets);
    }
    const elapsedMs = performance.now() - started;
    maxSize = Math.max(maxSize, store.trackedBuckets);
    gc();
    const heapDeltaMiB = (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20;
    assert.equal(store.trackedBuckets, 100_000);
    assert.ok(maxSize <= 100_000);
    t.diagnostic(`1M keys: size ${store.trackedBuckets}, heap delta ${heapDeltaMiB.toFixed(1)} MiB, ${(1_000_000 / (elapsedMs / 1000) / 1e6).toFixed(2)}M takes/s`);
    assert.ok(heapDeltaMiB < 200, `heap grew ${heapDeltaMiB.toFixed(1)} MiB`);
    await store.close();
  });
});

describe('MemoryStore bans', () => {
  it('bans after N rejections within the window, for the ban duration', async () => {
    const clock = fakeClock();
    const store = new MemoryStore({ now: clock.now });
    assert.deepEqual(await store.recordRejection('1.2.3.4', ban), { banned: false });
    clock.advance(10_000);
    assert.deepEqual(await store.recordRejection('1.2.3.4', ban), { banned: false });
    assert.equal(await store.isBanned('1.2.3.4'), 0);
    assert.deepEqual(await store.recordRejection('1.2.3.4', ban), { banned: true });
    assert.equal(await store.isBanned('1.2.3.4'), 15 * 60_000);
    assert.equal(await store.isBanned('5.6.7.8'), 0, 'other clients unaffected');
    clock.advance(15 * 60_000 - 1);
    assert.equal(await store.isBanned('1.2.3.4'), 1);
    clock.advance(1);
    assert.equal(await store.isBanned('1.2.3.4'), 0, 'ban expired');
  });

  it('forgets rejections once the window closes', async () => {
    const clock = fakeClock();
    const store = new MemoryStore({ now: clock.now });
    await store.recordRejection('c', ban);
    await store.recordRejection('c', ban);
    clock.advance(60_000); // window (opened at the first rejection) closed
    assert.deepEqual(await store.recordRejection('c', ban), { banned: false });
    assert.deepEqual(await store.recordRejection('c', ban), { banned: false });
    assert.deepEqual(await store.recordRejection('c', ban), { banned: true });
  });

  it('restarts the count after a ban', async () => {
    const clock = fakeClock();
    const store = new MemoryStore({ now: clock.now });
    for (let i = 0; i < 3; i++) await store.recordRejection('c', ban);
    clock.advance(15 * 60_000);
    assert.deepEqual(await store.recordRejection('c', ban), { banned: false });
  });

  it('rejects a nonsensical bound', () => {
    assert.throws(() => new MemoryStore({ maxTrackedClients: 0 }), RangeError);
  });
});
