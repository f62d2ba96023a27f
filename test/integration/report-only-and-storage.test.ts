// Two operator switches on an upload route, against the real guard and a recording upstream:
// - reportOnly: every request reaches the upstream byte-for-byte as sent, and the verdict the
//   guard would have given is reported (log line / observers) as `wouldReject`;
// - storage: uploads are refused with 507 STORAGE_FULL while the watched volume is below minFree,
//   and the free bytes are reported to observers (the metrics gauge).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FinishedRequest, RequestObserver } from '../../src/observe/request-observer.ts';
import type { GuardServer } from '../../src/server/guard-server.ts';
import { startGuard } from '../helpers/guard-in-process.ts';
import { buildMultipart } from '../helpers/multipart-builder.ts';
import { rawRequest, type RawResponse } from '../helpers/raw-http.ts';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/recording-upstream.ts';
import { pngBytes, sha256 } from '../helpers/samples.ts';

class RecordingObserver implements RequestObserver {
  finishedRequests: FinishedRequest[] = [];
  storageSamples: number[] = [];
  finished(request: FinishedRequest): void {
    this.finishedRequests.push({ ...request });
  }
  storageFree(bytes: number): void {
    this.storageSamples.push(bytes);
  }
  async next(count: number): Promise<FinishedRequest[]> {
    const deadline = Date.now() + 5000;
    while (this.finishedRequests.length < count) {
      if (Date.now() > deadline) throw new Error(`only ${this.finishedRequests.length} requests finished`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return this.finishedRequests.splice(0, count);
  }
}

let upstream: RecordingUpstream;
let guard: GuardServer;
let port: number;
const observer = new RecordingObserver();

before(async () => {
  upstream = await startRecordingUpstream();
  ({ guard, port } = await startGuard(`
listen: 127.0.0.1:0
admin: false
upstream: { url: "${upstream.url}" }
apiKeys: [{ name: ci, key: the-key }]
routes:
  - { name: shadow, path: /shadow, methods: [POST], policy: shadow }
policies:
  shadow: { allow: [png], reportOnly: true }
`, { observers: [observer] }));
});

after(async () => {
  await guard.close();
  await upstream.stop();
});

function post(path: string, body: Buffer, contentType: string, extra = '', toPort = port): Promise<RawResponse> {
  const head = `POST ${path} HTTP/1.1\r\nHost: guard\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\n${extra}\r\n`;
  return rawRequest(toPort, Buffer.concat([Buffer.from(head, 'latin1'), body]));
}

describe('reportOnly', () => {
  test('a disguised PHP file is forwarded unchanged and reported as CONTENT_MISMATCH', async () => {
    upstream.clear();
    const form = buildMultipart([
      { name: 'note', data: 'hello' },
      { name: 'file', filename: 'cat.png', contentType: 'image/png', data: Buffer.from('<?php system($_GET["c"]); ?>') },
    ]);
    const response = await post('/shadow', form.body, form.contentType);
    assert.equal(response.status, 200);
    const [received] = await upstream.waitForRequests(1);
    // exactly what the client sent: the original boundary and bytes, not a canonical body
    assert.equal(received!.headers['content-type'], form.contentType);
    assert.equal(received!.sha256, sha256(form.body));
    const [line] = await observer.next(1);
    assert.equal(line!.outcome, 'forwarded');
    assert.equal(line!.wouldReject, 'CONTENT_MISMATCH');
  });

  test('a verdict deep in a large body (parsed in batches) is reported too', async () => {
    upstream.clear();
    const polyglot = Buffer.concat([pngBytes(3 * 1024 * 1024), Buffer.from('<?php system($_GET["c"]); ?>')]);
    const form = buildMultipart([{ name: 'file', filename: 'big.png', contentType: 'image/png', data: polyglot }]);
    assert.equal((await post('/shadow', form.body, form.contentType)).status, 200);
    const [received] = await upstream.waitForRequests(1);
    assert.equal(received!.sha256, sha256(form.body));
    const [line] = await observer.next(1);
    assert.equal(line!.wouldReject, 'CONTENT_MISMATCH');
  });

  test('a clean PNG is forwarded with no verdict; its file is reported', async () => {
    upstream.clear();
    const form = buildMultipart([{ name: 'file', filename: 'My holiday.png', contentType: 'image/png', data: pngBytes(100_000) }]);
    assert.equal((await post('/shadow', form.body, form.contentType)).status, 200);
    const [received] = await upstream.waitForRequests(1);
    assert.equal(received!.sha256, sha256(form.body));
    const [line] = await observer.next(1);
    assert.equal(line!.wouldReject, undefined);
    assert.equal(line!.files?.[0]?.filename, 'My_holiday.png');
  });

  test('head-level verdicts are reported too: a .php name, a non-multipart body', async () => {
    upstream.clear();
    const php = buildMultipart([{ name: 'file', filename: 'shell.php', data: '<?php echo 1;' }]);
    assert.equal((await post('/shadow', php.body, php.contentType)).status, 200);
    assert.equal((await post('/shadow', Buffer.from('{"a":1}'), 'application/json')).status, 200);
    await upstream.waitForRequests(2);
    const lines = await observer.next(2);
    assert.deepEqual(
      lines.map((l) => l.wouldReject),
      ['EXTENSION_NOT_ALLOWED', 'UNSUPPORTED_MEDIA_TYPE'],
    );
  });
});

describe('storage floor', () => {
  let storageDir: string;
  let fullGuard: GuardServer;
  let fullPort: number;
  before(async () => {
    storageDir = mkdtempSync(join(tmpdir(), 'storage-watch-'));
    ({ guard: fullGuard, port: fullPort } = await startGuard(`
listen: 127.0.0.1:0
admin: false
upstream: { url: "${upstream.url}" }
storage: { path: "${storageDir}", minFree: 1000000GiB }
routes: [{ name: full, path: /full, methods: [POST], policy: images }]
policies: { images: { allow: [png] } }
`, { observers: [observer] }));
  });
  after(async () => {
    await fullGuard.close();
    rmSync(storageDir, { recursive: true, force: true });
  });

  test('below minFree, uploads get 507 STORAGE_FULL and the upstream sees nothing', async () => {
    upstream.clear();
    const form = buildMultipart([{ name: 'file', filename: 'a.png', contentType: 'image/png', data: pngBytes(10) }]);
    const response = await post('/full', form.body, form.contentType, '', fullPort);
    assert.equal(response.status, 507);
    assert.equal(JSON.parse(response.body.toString()).code, 'STORAGE_FULL');
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(upstream.requests.length, 0);
    await observer.next(1);
  });

  test('the free bytes of the watched volume reach the observers', () => {
    assert.ok(observer.storageSamples.length >= 1);
    assert.ok(observer.storageSamples[0]! > 0);
  });
});
