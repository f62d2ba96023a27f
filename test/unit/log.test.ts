import assert from 'node:assert/strict';
import { test } from 'node:test';
import { logEvent, logRequest, type RequestLogLine } from '../../src/observe/log.ts';

function line(id: string): RequestLogLine {
  return { id, route: 'upload', ip: '127.0.0.1', method: 'POST', path: '/upload', outcome: 'forwarded', status: 200, bytes: 1, ms: 0 };
}

/**
 * The log's writes to stdout while `run` runs and for one event-loop turn after, write by write
 * (the test runner's own output, which is not JSON lines, is passed on).
 */
async function capture(run: (writes: string[]) => void): Promise<string[]> {
  const writes: string[] = [];
  const original = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((chunk: string, ...rest: unknown[]) => {
    if (String(chunk).startsWith('{"time"')) writes.push(String(chunk));
    else return (original as (...args: unknown[]) => boolean)(chunk, ...rest);
    return true;
  }) as typeof process.stdout.write;
  try {
    run(writes);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
  } finally {
    process.stdout.write = original;
  }
  return writes;
}

test('request lines of one turn go out in one write, in order, each a JSON object with time first', async () => {
  await capture(() => logRequest(line('earlier')));
  await new Promise((r) => setTimeout(r, 5)); // a stamp left from that earlier millisecond would show
  const before = Date.now();
  const writes = await capture(() => {
    for (let i = 0; i < 50; i++) logRequest(line(`r${i}`));
  });
  const after = Date.now();
  assert.equal(writes.length, 1);
  const lines = writes[0]!.split('\n');
  assert.equal(lines.pop(), '', 'every line ends with a newline');
  assert.equal(lines.length, 50);
  lines.forEach((text, i) => {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    assert.equal(Object.keys(parsed)[0], 'time');
    const time = Date.parse(String(parsed.time));
    assert.ok(time >= before && time <= after, `time ${String(parsed.time)} is the time of writing`);
    assert.deepEqual({ ...parsed, time: undefined }, { time: undefined, ...line(`r${i}`) });
  });
});

test('an event is written at once, after the request lines before it; a large backlog does not wait for the turn', async () => {
  const writes = await capture((writes) => {
    logRequest(line('before'));
    logEvent('draining', { signal: 'SIGTERM' });
    assert.equal(writes.length, 1, 'written before the turn ends');
    for (let i = 0; i < 2000; i++) logRequest(line(`bulk${i}`));
    assert.ok(writes.length >= 2, 'a backlog of 64 KiB and more is written without waiting');
  });
  const all = writes.join('').trim().split('\n').map((t) => JSON.parse(t) as Record<string, unknown>);
  assert.equal(all[0]!.id, 'before');
  assert.equal(all[1]!.msg, 'draining');
  assert.equal(all[1]!.signal, 'SIGTERM');
  assert.deepEqual(all.slice(2).map((l) => l.id), Array.from({ length: 2000 }, (_, i) => `bulk${i}`));
});
