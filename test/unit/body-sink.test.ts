// StreamSink and its ChunkQueue: backpressure, order, the end, and failures on either side.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setImmediate as tick } from 'node:timers/promises';
import { test } from 'node:test';
import { StreamSink } from '../../src/forward/body-sink.ts';
import { ChunkQueue } from '../../src/forward/chunk-queue.ts';
import type { Upstream, UpstreamRequest } from '../../src/forward/upstream.ts';
import { GuardError } from '../../src/errors.ts';

test('a slow upstream reader: every byte arrives in order, the writer never runs more than the high-water mark ahead', async () => {
  let readBytes = 0;
  let maxAhead = 0;
  let written = 0;
  const received: Buffer[] = [];
  // an upstream that reads one chunk per event-loop turn: the writer waits again and again
  const slowReader = {
    start(request: UpstreamRequest) {
      const response = (async () => {
        for await (const chunk of request.body as AsyncIterable<Buffer>) {
          received.push(chunk);
          readBytes += chunk.length;
          await tick();
        }
        return { statusCode: 200, statusMessage: undefined, headers: {}, relay: () => undefined };
      })();
      return { response, abort: () => undefined };
    },
  } as unknown as Upstream;
  const sink = new StreamSink(slowReader, { method: 'POST', path: '/upload', headers: {} });
  const chunks = Array.from({ length: 400 }, (_, i) => randomBytes(1 + ((i * 7919) % (96 * 1024))));
  for (const chunk of chunks) {
    await sink.write(chunk);
    written += chunk.length;
    maxAhead = Math.max(maxAhead, written - readBytes);
  }
  assert.equal((await sink.complete()).statusCode, 200);
  assert.deepEqual(Buffer.concat(received), Buffer.concat(chunks));
  assert.ok(maxAhead <= 1024 * 1024 + 96 * 1024, `the writer ran ${maxAhead} bytes ahead of the reader`);
});

test('an upstream that fails mid-body: the waiting writer gets the upstream failure, not a hang', async () => {
  const failing = {
    start(request: UpstreamRequest) {
      const response = (async () => {
        const iterator = (request.body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
        await iterator.next();
        await iterator.return?.(undefined); // undici stops reading when the request fails
        throw new GuardError('UPSTREAM_UNAVAILABLE');
      })();
      response.catch(() => undefined);
      return { response, abort: () => undefined };
    },
  } as unknown as Upstream;
  const sink = new StreamSink(failing, { method: 'POST', path: '/upload', headers: {} });
  await assert.rejects(
    (async () => {
      for (let i = 0; i < 100; i++) await sink.write(Buffer.alloc(256 * 1024));
    })(),
    (err: unknown) => err instanceof GuardError && err.code === 'UPSTREAM_UNAVAILABLE',
  );
});

test('ChunkQueue: queued chunks come out joined and in order; the end after them; destroy reaches reader and writer', async () => {
  const queue = new ChunkQueue(10);
  assert.equal(queue.push(Buffer.from('abc')), true);
  assert.equal(queue.push(Buffer.from('defgh')), true);
  assert.equal(queue.push(Buffer.from('ij')), false, 'full at 10 bytes');
  let roomGiven = false;
  const room = queue.room().then(() => (roomGiven = true));
  const reader = queue[Symbol.asyncIterator]();
  const first = await reader.next();
  assert.equal(first.value?.toString(), 'abcdefghij');
  await room;
  assert.ok(roomGiven, 'taking the queue makes room');
  queue.push(Buffer.from('k'));
  queue.end();
  assert.equal((await reader.next()).value?.toString(), 'k');
  assert.equal((await reader.next()).done, true);

  const broken = new ChunkQueue(4);
  broken.push(Buffer.from('12345'));
  const waiting = broken.room();
  broken.destroy(new Error('gone'));
  await waiting; // released, not left hanging
  assert.equal(broken.closed, true);
  await assert.rejects(broken[Symbol.asyncIterator]().next(), /gone/);
});
