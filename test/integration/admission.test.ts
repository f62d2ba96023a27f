// Admission on an upload route, against the real guard and a recording upstream, over raw
// sockets: API keys (401, Bearer, stripping), per-IP / per-key / byte buckets (429 with
// Retry-After and RateLimit headers), forged X-Forwarded-For, bans (403), and Expect:
// 100-continue answered with the refusal instead of "100 Continue".

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { GuardServer } from '../../src/server/guard-server.ts';
import { startGuard } from '../helpers/guard-in-process.ts';
import { buildMultipart } from '../helpers/multipart-builder.ts';
import { rawRequest, type RawResponse } from '../helpers/raw-http.ts';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/recording-upstream.ts';
import { pngBytes } from '../helpers/samples.ts';

let upstream: RecordingUpstream;
let guard: GuardServer;
let port: number;

// Rates of 1/hour: nothing refills during a test, so every count below is exact.
before(async () => {
  upstream = await startRecordingUpstream();
  ({ guard, port } = await startGuard(`
listen: 127.0.0.1:0
admin: false
upstream: { url: "${upstream.url}" }
trustProxy: [127.0.0.1/32]
apiKeys:
  - { name: alice, key: alice-secret-key }
  - { name: bob, key: bob-secret-key }
stripApiKey: true
routes:
  - { name: limited, path: /limited, methods: [POST], policy: limited }
  - { name: keyed, path: /keyed, methods: [POST], policy: keyed }
  - { name: bytes, path: /bytes, methods: [POST], policy: bytes }
  - { name: banned, path: /banned, methods: [POST], policy: banned }
  - { name: streamed, path: /streamed, methods: [POST], policy: streamed }
policies:
  limited: { allow: [png], rateLimit: { rate: 1/hour, burst: 3 } }
  keyed: { allow: [png], requireApiKey: true, keyRateLimit: { rate: 1/hour, burst: 2 } }
  bytes: { allow: [png], uploadRate: { rate: 1KiB/hour, burst: 600KiB }, mode: spool }
  banned: { allow: [png], ban: { after: 2, within: 1m, for: 10m } }
  streamed: { allow: [png], uploadRate: { rate: 1KiB/hour, burst: 600KiB }, mode: stream }
`));
});

after(async () => {
  await guard.close();
  await upstream.stop();
});

interface UploadOptions {
  path: string;
  headers?: Record<string, string>;
  filename?: string;
  data?: Buffer;
  expectContinue?: boolean;
}

function uploadRequest(opts: UploadOptions): { head: Buffer; body: Buffer } {
  const form = buildMultipart([{ name: 'file', filename: opts.filename ?? 'a.png', contentType: 'image/png', data: opts.data ?? pngBytes(64) }]);
  const lines = [`POST ${opts.path} HTTP/1.1`, 'Host: guard.test', `Content-Type: ${form.contentType}`, `Content-Length: ${form.body.length}`];
  for (const [name, value] of Object.entries(opts.headers ?? {})) lines.push(`${name}: ${value}`);
  if (opts.expectContinue) lines.push('Expect: 100-continue');
  return { head: Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body: form.body };
}

function upload(opts: UploadOptions): Promise<RawResponse> {
  const { head, body } = uploadRequest(opts);
  return rawRequest(port, Buffer.concat([head, body]), { stopWritingOnResponse: true });
}

function codeOf(response: RawResponse): string {
  return (JSON.parse(response.body.toString('utf8')) as { code: string }).code;
}

function forwardedTo(path: string): number {
  return upstream.requests.filter((r) => r.url === path && r.complete).length;
}

describe('per-IP request bucket', () => {
  test('burst 3 lets three uploads through, the fourth gets 429 with Retry-After and RateLimit headers', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await upload({ path: '/limited' })).status);
    assert.deepEqual(statuses, [200, 200, 200]);
    const refused = await upload({ path: '/limited' });
    assert.equal(refused.status, 429);
    assert.equal(codeOf(refused), 'RATE_LIMITED');
    // 1 token per hour: the next one is an hour away
    assert.ok(Number(refused.headers['retry-after']) > 3000, refused.headers['retry-after']);
    assert.equal(refused.headers['ratelimit-policy'], '"ip";q=3;w=10800');
    assert.match(refused.headers.ratelimit ?? '', /^"ip";r=0;t=\d+$/);
    await upstream.waitForRequests(upstream.requests.length);
    assert.equal(forwardedTo('/limited'), 3);
  });

  test('a forged X-Forwarded-For from an untrusted peer changes nothing', async () => {
    // The guard listens on 127.0.0.1, trusted: go through a peer address that is not trusted.
    // 127.0.0.2 reaches the same loopback listener but is outside 127.0.0.1/32.
    const { head, body } = uploadRequest({ path: '/limited', headers: { 'X-Forwarded-For': '203.0.113.9' } });
    const fromUntrusted = await rawRequest(port, Buffer.concat([head, body]), { host: '127.0.0.1', stopWritingOnResponse: true });
    // from the trusted peer, XFF names a fresh client: its own bucket, so it passes
    assert.equal(fromUntrusted.status, 200);
    const spoofer = uploadRequest({ path: '/limited', headers: { 'X-Forwarded-For': '203.0.113.10' } });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const response = await rawRequest(port, Buffer.concat([spoofer.head, spoofer.body]), { stopWritingOnResponse: true, localAddress: '127.0.0.2' });
      statuses.push(response.status);
    }
    // 127.0.0.2 is not trusted: its XFF is ignored and it is limited as itself (burst 3)
    assert.deepEqual(statuses, [200, 200, 200, 429]);
  });

  test('behind a trusted proxy, each X-Forwarded-For client has its own bucket', async () => {
    for (const client of ['198.51.100.1', '198.51.100.2']) {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await upload({ path: '/limited', headers: { 'X-Forwarded-For': `10.9.9.9, ${client}` } })).status);
      assert.deepEqual(statuses, [200, 200, 200, 429], client);
    }
  });
});

describe('forwarded headers', () => {
  test('X-Forwarded-Proto and -For are believed from a trusted proxy only', async () => {
    upstream.clear();
    const headers = { 'X-Forwarded-Proto': 'https', 'X-Forwarded-For': '192.0.2.40' };
    const { head, body } = uploadRequest({ path: '/banned', headers });
    assert.equal((await rawRequest(port, Buffer.concat([head, body]))).status, 200);
    assert.equal((await rawRequest(port, Buffer.concat([head, body]), { localAddress: '127.0.0.2' })).status, 200);
    const [trusted, untrusted] = await upstream.waitForRequests(2);
    assert.equal(trusted!.headers['x-forwarded-proto'], 'https');
    assert.equal(trusted!.headers['x-forwarded-for'], '192.0.2.40, 127.0.0.1');
    assert.equal(untrusted!.headers['x-forwarded-proto'], 'http');
    assert.equal(untrusted!.headers['x-forwarded-for'], '127.0.0.2');
  });
});

describe('API keys', () => {
  test('a missing or wrong key is 401; the key never reaches the upstream (stripApiKey)', async () => {
    assert.equal(codeOf(await upload({ path: '/keyed', headers: { 'X-Forwarded-For': '192.0.2.50' } })), 'UNAUTHORIZED');
    assert.equal(codeOf(await upload({ path: '/keyed', headers: { 'X-API-KEY': 'alice-secret-kez', 'X-Forwarded-For': '192.0.2.50' } })), 'UNAUTHORIZED');
    upstream.clear();
    const ok = await upload({ path: '/keyed', headers: { 'X-API-KEY': 'alice-secret-key', 'X-Forwarded-For': '192.0.2.51' } });
    assert.equal(ok.status, 200);
    const bearer = await upload({ path: '/keyed', headers: { Authorization: 'Bearer bob-secret-key', 'X-Forwarded-For': '192.0.2.52' } });
    assert.equal(bearer.status, 200);
    const [first, second] = await upstream.waitForRequests(2);
    assert.equal(first!.headers['x-api-key'], undefined);
    assert.equal(second!.headers.authorization, undefined);
  });

  test('the per-key bucket holds across client addresses', async () => {
    // alice spent 1 of 2 above; one more passes from anywhere, then 429 scope key
    const a = await upload({ path: '/keyed', headers: { 'X-API-KEY': 'alice-secret-key', 'X-Forwarded-For': '192.0.2.60' } });
    const b = await upload({ path: '/keyed', headers: { 'X-API-KEY': 'alice-secret-key', 'X-Forwarded-For': '192.0.2.61' } });
    assert.equal(a.status, 200);
    assert.equal(b.status, 429);
    assert.equal(codeOf(b), 'RATE_LIMITED');
    assert.equal(b.headers['ratelimit-policy'], '"key";q=2;w=7200');
    // bob's bucket is separate
    assert.equal((await upload({ path: '/keyed', headers: { 'X-API-KEY': 'bob-secret-key', 'X-Forwarded-For': '192.0.2.62' } })).status, 200);
  });
});

describe('byte budget (uploadRate)', () => {
  for (const path of ['/bytes', '/streamed']) {
    test(`${path}: an upload that overdraws the budget is cut off mid-body and never reaches the upstream complete; the next is refused on its head`, async () => {
      const client = { 'X-Forwarded-For': path === '/bytes' ? '192.0.2.70' : '192.0.2.71' };
      upstream.clear();
      assert.equal((await upload({ path, headers: client, data: pngBytes(200 * 1024) })).status, 200);
      const big = await upload({ path, headers: client, data: pngBytes(1024 * 1024) });
      assert.equal(big.status, 429);
      assert.equal(codeOf(big), 'RATE_LIMITED');
      assert.match(big.headers['ratelimit-policy'] ?? '', /^"bytes";q=614400;w=\d+$/);
      const next = await upload({ path, headers: client, data: pngBytes(10) });
      assert.equal(next.status, 429);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const complete = upstream.requests.filter((r) => r.complete);
      assert.equal(complete.length, 1, 'only the first upload reached the upstream complete');
    });
  }
});

describe('bans', () => {
  test('two rejections within a minute earn a 403 IP_BANNED, even for a clean upload', async () => {
    const client = { 'X-Forwarded-For': '192.0.2.80' };
    assert.equal(codeOf(await upload({ path: '/banned', headers: client, filename: 'shell.php' })), 'EXTENSION_NOT_ALLOWED');
    assert.equal((await upload({ path: '/banned', headers: client })).status, 200);
    assert.equal(codeOf(await upload({ path: '/banned', headers: client, filename: 'x.png', data: Buffer.from('<?php system($_GET[1]);') })), 'CONTENT_MISMATCH');
    const banned = await upload({ path: '/banned', headers: client });
    assert.equal(banned.status, 403);
    assert.equal(codeOf(banned), 'IP_BANNED');
    assert.ok(Number(banned.headers['retry-after']) > 500);
    // another client is not affected
    assert.equal((await upload({ path: '/banned', headers: { 'X-Forwarded-For': '192.0.2.81' } })).status, 200);
  });
});

describe('Expect: 100-continue', () => {
  test('a refused head is answered with the refusal, never "100 Continue", and the body is never needed', async () => {
    const { head } = uploadRequest({ path: '/keyed', headers: { 'X-Forwarded-For': '192.0.2.90' }, expectContinue: true });
    // Send the head only: a client waiting for 100 Continue has not sent its body.
    const response = await rawRequest(port, head, { timeoutMs: 5000 });
    assert.equal(response.status, 401);
    assert.deepEqual(response.informational, []);
    const limited = uploadRequest({ path: '/limited', headers: { 'X-Forwarded-For': '198.51.100.1' }, expectContinue: true });
    const refused = await rawRequest(port, limited.head, { timeoutMs: 5000 });
    assert.equal(refused.status, 429);
    assert.deepEqual(refused.informational, []);
  });

  test('an admitted head gets 100 Continue, then the upload goes through', async () => {
    const { head, body } = uploadRequest({ path: '/limited', headers: { 'X-Forwarded-For': '192.0.2.91' }, expectContinue: true });
    const response = await rawRequest(port, [head, body], { delayBetweenMs: 300 });
    assert.deepEqual(response.informational.map((i) => i.status), [100]);
    assert.equal(response.status, 200);
  });
});
