// StatusBoard on a fake clock: rates over the window, totals, in-flight, the rejection ring.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FinishedRequest } from '../../src/observe/request-observer.ts';
import { displayText, StatusBoard } from '../../src/observe/status-board.ts';

function request(over: Partial<FinishedRequest>): FinishedRequest {
  return { id: 'r', route: 'upload', ip: '10.0.0.1', method: 'POST', path: '/upload', outcome: 'forwarded', status: 200, bytes: 0, ms: 1, ...over };
}

test('rates are averaged over the last window; totals count since start', () => {
  let now = 1_000_000;
  const board = new StatusBoard({ windowSeconds: 10, now: () => now });
  now += 20_000; // 20 s of uptime: the full 10 s window applies
  for (let i = 0; i < 30; i++) board.finished(request({}));
  for (let i = 0; i < 10; i++) board.finished(request({ outcome: 'rejected', status: 400, code: 'EXTENSION_NOT_ALLOWED' }));
  board.finished(request({ outcome: 'error', status: 502, code: 'UPSTREAM_TIMEOUT' }));
  let s = board.snapshot();
  assert.equal(s.rateWindowSeconds, 10);
  assert.equal(s.rates.requestsPerSecond, 4.1);
  assert.equal(s.rates.rejectionsPerSecond, 1.1);
  assert.deepEqual(s.rates.byCode, { EXTENSION_NOT_ALLOWED: 1, UPSTREAM_TIMEOUT: 0.1 });
  assert.deepEqual(s.totals.byOutcome, { error: 1, forwarded: 30, rejected: 10 });
  assert.equal(s.uptimeSeconds, 20);

  now += 5_000;
  board.finished(request({ outcome: 'rejected', status: 429, code: 'RATE_LIMITED' }));
  s = board.snapshot();
  assert.equal(s.rates.requestsPerSecond, 4.2, 'still inside the window');

  now += 6_000; // the first burst is now 11 s old: out of the window
  s = board.snapshot();
  assert.equal(s.rates.requestsPerSecond, 0.1);
  assert.deepEqual(s.rates.byCode, { RATE_LIMITED: 0.1 });
  assert.deepEqual(s.totals.byCode, { EXTENSION_NOT_ALLOWED: 10, RATE_LIMITED: 1, UPSTREAM_TIMEOUT: 1 });
  assert.equal(s.totals.requests, 42);

  now += 60_000;
  assert.equal(board.snapshot().rates.requestsPerSecond, 0, 'stale slots never count again');
});

test('a young process averages over its uptime', () => {
  let now = 5_000_000;
  const board = new StatusBoard({ windowSeconds: 60, now: () => now });
  now += 2_000;
  for (let i = 0; i < 4; i++) board.finished(request({}));
  const s = board.snapshot();
  assert.equal(s.rateWindowSeconds, 2);
  assert.equal(s.rates.requestsPerSecond, 2);
});

test('in-flight per route; passthrough and unmatched finishes never go negative', () => {
  const board = new StatusBoard();
  board.started('upload');
  board.started('upload');
  board.finished(request({}));
  board.finished(request({ route: null, outcome: 'passthrough' }));
  board.finished(request({ route: 'bulk' }));
  assert.deepEqual(board.snapshot().inflight, { upload: 1 });
});

test('the ring keeps the last 100 rejections newest first, with report-only would-be rejections', () => {
  const board = new StatusBoard();
  for (let i = 0; i < 250; i++) board.finished(request({ id: String(i), route: null, outcome: 'rejected', status: 400, code: 'MALFORMED_REQUEST' }));
  board.finished(request({ id: 'ro', wouldReject: 'CONTENT_MISMATCH', filename: 'x.png' }));
  board.finished(request({ id: 'plain' }));
  const recent = board.recent();
  assert.equal(recent.length, 100);
  assert.deepEqual(recent.slice(0, 3).map((r) => r.id), ['ro', '249', '248']);
  assert.equal(recent[0]!.outcome, 'report-only');
  assert.equal(recent[0]!.code, 'CONTENT_MISMATCH');
  assert.equal(recent[0]!.status, 200);
  assert.equal(recent[1]!.route, 'passthrough');
  assert.equal(recent[99]!.id, '151');
});

test('client-supplied text is made printable and short; codes are bounded', () => {
  assert.equal(displayText('a\u0000b\r\nc\u202ed\u2028e'), 'a\uFFFDb\uFFFD\uFFFDc\uFFFDd\uFFFDe');
  assert.equal(displayText('x'.repeat(500)).length, 160);
  assert.ok(displayText('x'.repeat(500)).endsWith('…'));
  const board = new StatusBoard();
  board.finished(request({ outcome: 'rejected', status: 400, code: '<img src=x>', filename: 'n\u0007.php', ip: 'i'.repeat(100) }));
  const [entry] = board.recent();
  assert.equal(entry!.code, 'OTHER');
  assert.equal(entry!.filename, 'n\uFFFD.php');
  assert.equal(entry!.ip.length, 64);
  assert.deepEqual(board.snapshot().totals.byCode, { OTHER: 1 });
});
