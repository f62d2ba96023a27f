// Rolling changes safely, at the GuardServer level: drain (SIGTERM) lets an upload in flight
// finish while new connections are refused, and gives up after drainTimeout; applyConfig (reload)
// changes what new requests get while a request in flight keeps the policy it started with.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadConfigText } from '../../src/config/load.ts';
import type { CompiledConfig } from '../../src/config/types.ts';
import { GuardServer } from '../../src/server/guard-server.ts';
import { buildMultipart } from '../helpers/multipart-builder.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/recording-upstream.ts';
import { gifBytes, pngBytes } from '../helpers/samples.ts';
import { connectionRefused } from '../helpers/net.ts';

let upstream: RecordingUpstream;
before(async () => {
  upstream = await startRecordingUpstream();
});
after(async () => {
  await upstream.stop();
});

function config(allow: string, drainTimeout = '10s'): CompiledConfig {
  const loaded = loadConfigText(`
listen: 127.0.0.1:0
admin: false
drainTimeout: ${drainTimeout}
upstream: { url: "${upstream.url}" }
routes: [{ name: upload, path: /upload, methods: [POST], policy: images }]
policies: { images: { allow: [${allow}] } }
`);
  assert.ok('config' in loaded, JSON.stringify(loaded));
  return loaded.config;
}

function uploadPieces(filename: string, data: Buffer): [Buffer, Buffer] {
  const form = buildMultipart([{ name: 'file', filename, contentType: 'application/octet-stream', data }]);
  const head = Buffer.from(`POST /upload HTTP/1.1\r\nHost: guard\r\nContent-Type: ${form.contentType}\r\nContent-Length: ${form.body.length}\r\n\r\n`, 'latin1');
  const whole = Buffer.concat([head, form.body]);
  const cut = head.length + 2000;
  return [whole.subarray(0, cut), whole.subarray(cut)];
}

describe('drain', () => {
  test('an upload in flight finishes, new connections are refused, drain resolves true', async () => {
    const guard = new GuardServer(config('png'));
    const { port } = await guard.listen();
    upstream.clear();
    // the client sends half, pauses 1.5 s (drain starts meanwhile), then the rest
    const pending = rawRequest(port, uploadPieces('a.png', pngBytes(50_000)), { delayBetweenMs: 1500 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const drained = guard.drain();
    assert.equal(guard.isDraining, true);
    assert.equal(await connectionRefused(port), true, 'new connections are refused while draining');
    const response = await pending;
    assert.equal(response.status, 200);
    assert.equal(response.headers.connection, 'close');
    assert.equal(await drained, true);
    const [received] = await upstream.waitForRequests(1);
    assert.equal(received!.complete, true);
  });

  test('past drainTimeout a stalled upload is cut off and drain resolves false', async () => {
    const guard = new GuardServer(config('png', '300ms'));
    const { port } = await guard.listen();
    upstream.clear();
    const stalled = rawRequest(port, uploadPieces('a.png', pngBytes(50_000)), { delayBetweenMs: 5_000, timeoutMs: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = Date.now();
    assert.equal(await guard.drain(), false);
    const response = await stalled;
    assert.equal(response.closedByServer, true);
    assert.ok(Date.now() - started < 15_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(upstream.requests.filter((r) => r.complete).length, 0, 'the cut-off upload never reached the upstream complete');
  });
});

describe('reload (applyConfig)', () => {
  test('new requests get the new policy; an upload in flight keeps the one it started with', async () => {
    const guard = new GuardServer(config('png'));
    const { port } = await guard.listen();
    try {
      const inFlight = rawRequest(port, uploadPieces('old.png', pngBytes(50_000)), { delayBetweenMs: 800 });
      await new Promise((resolve) => setTimeout(resolve, 300));
      await guard.applyConfig(config('gif'));
      const [gifHead, gifRest] = uploadPieces('new.gif', Buffer.concat([gifBytes(), Buffer.alloc(3000)]));
      assert.equal((await rawRequest(port, Buffer.concat([gifHead, gifRest]))).status, 200, 'gif allowed after reload');
      const [pngHead, pngRest] = uploadPieces('late.png', pngBytes(10));
      const refused = await rawRequest(port, Buffer.concat([pngHead, pngRest]));
      assert.equal(refused.status, 400, 'png refused after reload');
      assert.equal((await inFlight).status, 200, 'the png upload that started before the reload passes');
    } finally {
      await guard.close();
    }
  });
});
