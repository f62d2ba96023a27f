// StreamSink under constant backpressure: waiting for 'drain' must not leave listeners behind
// (they piled up one pair per wait, ~16,000 for 1 GiB, and stalled the loop when removed).

import assert from 'node:assert/strict';
import type { PassThrough } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { test } from 'node:test';
import { StreamSink } from '../../src/forward/body-sink.ts';
import type { Upstream, UpstreamRequest } from '../../src/forward/upstream.ts';

test('a slow upstream reader: 2,000 backpressure waits leave no listeners behind', async () => {
  // an upstream that reads one chunk per event-loop turn: every write waits for 'drain'
  const slowReader = {
    async send(request: UpstreamRequest) {
      for await (const _ of request.body as AsyncIterable<Buffer>) await tick();
      return { statusCode: 200, headers: {}, body: null };
    },
  } as unknown as Upstream;
  const sink = new StreamSink(slowReader, { method: 'POST', path: '/upload', headers: {} });
  const chunk = Buffer.alloc(64 * 1024);
  for (let i = 0; i < 2000; i++) await sink.write(chunk);
  const body = (sink as unknown as { body: PassThrough }).body;
  assert.ok(body.listenerCount('close') < 10, `close listeners: ${body.listenerCount('close')}`);
  assert.ok(body.listenerCount('error') < 10, `error listeners: ${body.listenerCount('error')}`);
  assert.equal((await sink.complete()).statusCode, 200);
});
