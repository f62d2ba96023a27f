import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { debitBucket, msUntilFull, refilledTokens, takeFromBucket } from '../../src/admission/token-bucket.js';
import type { BucketState } from '../../src/admission/token-bucket.js';

const tenPerSecondBurstFive = { ratePerSecond: 10, burst: 5 };

/** Runs `count` takes at `nowMs`, returning the allowed pattern as "1"/"0" and the last decision. */
function takes(state: BucketState | undefined, count: number, nowMs: number) {
  let pattern = '';
  let current = state;
  const retries: number[] = [];
  for (let i = 0; i < count; i++) {
    const decision = takeFromBucket(current, tenPerSecondBurstFive, 1, nowMs);
    pattern += decision.allowed ? '1' : '0';
    retries.push(decision.retryAfterMs);
    current = decision.state;
  }
  return { pattern, state: current, retries };
}

describe('takeFromBucket', () => {
  it('allows a burst, then refills lazily at the rate (10/s, burst 5)', () => {
    const first = takes(undefined, 8, 1_000);
    assert.equal(first.pattern, '11111000');
    assert.deepEqual(first.retries, [0, 0, 0, 0, 0, 100, 100, 100]);
    const later = takes(first.state, 3, 1_250); // +250 ms = 2.5 tokens
    assert.equal(later.pattern, '110');
    assert.deepEqual(later.retries, [0, 0, 50]);
  });

  it('caps the refill at burst', () => {
    const drained = takes(undefined, 5, 0).state;
    assert.equal(refilledTokens(drained, tenPerSecondBurstFive, 60_000), 5);
    assert.equal(takes(drained, 7, 60_000).pattern, '1111100');
  });

  it('reports remaining whole tokens', () => {
    assert.equal(takeFromBucket(undefined, tenPerSecondBurstFive, 1, 0).remaining, 4);
    assert.equal(takeFromBucket({ tokens: 0.5, updatedMs: 0 }, tenPerSecondBurstFive, 1, 0).remaining, 0);
  });

  it('spends nothing on a refused take', () => {
    const refused = takeFromBucket({ tokens: 0.5, updatedMs: 0 }, tenPerSecondBurstFive, 1, 0);
    assert.equal(refused.allowed, false);
    assert.equal(refused.state.tokens, 0.5);
  });

  it('never allows a cost above burst', () => {
    const decision = takeFromBucket(undefined, tenPerSecondBurstFive, 6, 0);
    assert.equal(decision.allowed, false);
    assert.equal(decision.retryAfterMs, Number.POSITIVE_INFINITY);
    assert.equal(decision.state.tokens, 5);
  });

  it('charges a multi-token cost and computes the wait for all of it', () => {
    const decision = takeFromBucket({ tokens: 1, updatedMs: 0 }, tenPerSecondBurstFive, 4, 0);
    assert.equal(decision.allowed, false);
    assert.equal(decision.retryAfterMs, 300);
  });

  it('refills nothing when the clock goes backwards', () => {
    assert.equal(refilledTokens({ tokens: 1, updatedMs: 5_000 }, tenPerSecondBurstFive, 4_000), 1);
  });
});

describe('debitBucket', () => {
  const bytes = { ratePerSecond: 1000, burst: 2000 }; // 1000 B/s, 2000 B burst

  it('goes negative, refuses while in debt, and recovers at the rate', () => {
    let state: BucketState | undefined;
    let decision = debitBucket(state, bytes, 1500, 0);
    assert.deepEqual([decision.allowed, decision.state.tokens, decision.remaining], [true, 500, 500]);
    decision = debitBucket(decision.state, bytes, 1500, 0);
    assert.deepEqual([decision.allowed, decision.state.tokens, decision.remaining, decision.retryAfterMs], [false, -1000, 0, 1000]);
    state = decision.state;
    // 500 ms later: still 500 B in debt
    decision = debitBucket(state, bytes, 0, 500);
    assert.deepEqual([decision.allowed, decision.retryAfterMs], [false, 500]);
    // 1 s later the debt is exactly paid: balance 0, so 1 more byte is refused, 0 bytes allowed
    assert.equal(debitBucket(state, bytes, 0, 1_000).allowed, true);
    decision = debitBucket(state, bytes, 1, 1_000);
    assert.deepEqual([decision.allowed, decision.state.tokens, decision.retryAfterMs], [false, -1, 1]);
    // 1.5 s later: 500 B earned back
    decision = debitBucket(state, bytes, 400, 1_500);
    assert.deepEqual([decision.allowed, decision.state.tokens, decision.remaining], [true, 100, 100]);
  });

  it('recovers to a full bucket after (burst - balance) / rate', () => {
    const inDebt = { tokens: -1000, updatedMs: 0 };
    assert.equal(msUntilFull(inDebt.tokens, bytes), 3_000);
    assert.equal(refilledTokens(inDebt, bytes, 3_000), 2000);
    assert.equal(debitBucket(inDebt, bytes, 2000, 3_000).allowed, true);
  });
});
