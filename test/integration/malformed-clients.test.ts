// Slow and malformed clients against the real guard and a recording upstream, over raw sockets:
// request smuggling shapes, oversized heads, slow heads and trickled bodies get SPEC JSON
// answers and never reach the upstream; pipelined requests are answered in order.

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

before(async () => {
  upstream = await startRecordingUpstream();
  ({ guard, port } = await startGuard(`
listen: 127.0.0.1:0
admin: false
upstream: { url: "${upstream.url}" }
timeouts: { headers: 1s, bodyIdle: 1500ms, request: 3s }
headerLimits: { maxSize: 8KiB, maxCount: 40 }
routes: [{ name: upload, path: /upload, methods: [POST], policy: images }]
policies: { images: { allow: [png] } }
`));
});

after(async () => {
  await guard.close();
  await upstream.stop();
});

const form = buildMultipart([{ name: 'file', filename: 'a.png', contentType: 'image/png', data: pngBytes(100) }]);

function uploadBytes(extraHeaders = '', body: Buffer = form.body, lengthHeader = `Content-Length: ${form.body.length}\r\n`): Buffer {
  return Buffer.concat([Buffer.from(`POST /upload HTTP/1.1\r\nHost: guard\r\nContent-Type: ${form.contentType}\r\n${lengthHeader}${extraHeaders}\r\n`, 'latin1'), body]);
}

function codeOf(response: RawResponse): string {
  assert.equal(response.headers['content-type'], 'application/json', response.raw.toString('latin1').slice(0, 300));
  return (JSON.parse(response.body.toString()) as { code: string }).code;
}

async function nothingForwarded(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 150));
  assert.deepEqual(
    upstream.requests.filter((r) => r.complete).map((r) => r.url),
    [],
  );
}

describe('request smuggling shapes are refused with JSON and never forwarded', () => {
  const chunked = (body: Buffer): Buffer => Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
  const cases: Array<[string, Buffer]> = [
    ['Transfer-Encoding with Content-Length', uploadBytes('Transfer-Encoding: chunked\r\n', chunked(form.body))],
    ['two different Content-Lengths', uploadBytes(`Content-Length: ${form.body.length + 5}\r\n`)],
    ['Content-Length with a sign', uploadBytes('', form.body, `Content-Length: +${form.body.length}\r\n`)],
    ['Transfer-Encoding: chunked, identity', uploadBytes('Transfer-Encoding: chunked, identity\r\n', chunked(form.body), '')],
    ['obsolete line folding', uploadBytes('X-Folded: a\r\n b\r\n')],
    ['a bad chunk size', uploadBytes('Transfer-Encoding: chunked\r\n', Buffer.from('zz\r\nabc\r\n0\r\n\r\n'), '')],
    ['a space before the colon', uploadBytes('Transfer-Encoding : chunked\r\n')],
    ['a bare LF in the head', Buffer.from(`POST /upload HTTP/1.1\nHost: guard\nContent-Length: 0\n\n`)],
  ];
  for (const [name, bytes] of cases) {
    test(name, async () => {
      upstream.clear();
      const response = await rawRequest(port, bytes);
      assert.equal(response.status, 400, response.raw.toString('latin1').slice(0, 200));
      assert.equal(codeOf(response), 'MALFORMED_REQUEST');
      await nothingForwarded();
    });
  }

  test('the same shapes on a passthrough path are refused too (the upstream parses them differently)', async () => {
    upstream.clear();
    const smuggle = Buffer.from('POST /other HTTP/1.1\r\nHost: guard\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: guard\r\n\r\n');
    const response = await rawRequest(port, smuggle);
    assert.equal(response.status, 400);
    assert.equal(codeOf(response), 'MALFORMED_REQUEST');
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(upstream.requests.length, 0);
  });
});

describe('head limits', () => {
  test('a head over maxSize gets 431 HEADERS_TOO_LARGE', async () => {
    upstream.clear();
    const response = await rawRequest(port, uploadBytes(`X-Big: ${'a'.repeat(10_000)}\r\n`));
    assert.equal(response.status, 431);
    assert.equal(codeOf(response), 'HEADERS_TOO_LARGE');
    await nothingForwarded();
  });

  test('more header fields than maxCount gets 431 HEADERS_TOO_LARGE', async () => {
    upstream.clear();
    const many = Array.from({ length: 50 }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
    const response = await rawRequest(port, uploadBytes(many));
    assert.equal(response.status, 431);
    assert.equal(codeOf(response), 'HEADERS_TOO_LARGE');
    await nothingForwarded();
  });
});

describe('slow clients', () => {
  test('a head that never completes gets 408 REQUEST_TIMEOUT', async () => {
    const response = await rawRequest(port, Buffer.from('POST /upload HTTP/1.1\r\nHost: guard\r\n'), { timeoutMs: 10_000 });
    assert.equal(response.status, 408);
    assert.equal(codeOf(response), 'REQUEST_TIMEOUT');
  });

  test('a body trickled just inside bodyIdle is cut off by the whole-request timeout', async () => {
    upstream.clear();
    const bytes = uploadBytes();
    const headEnd = bytes.indexOf('\r\n\r\n') + 4;
    // the head, then one byte per second: never idle for 1.5 s, but past the 3 s request limit
    const pieces = [bytes.subarray(0, headEnd), ...Array.from({ length: 8 }, (_, i) => bytes.subarray(headEnd + i, headEnd + i + 1))];
    const started = Date.now();
    const response = await rawRequest(port, pieces, { delayBetweenMs: 1000, timeoutMs: 20_000, stopWritingOnResponse: true });
    assert.equal(response.status, 408, response.raw.toString('latin1').slice(0, 200));
    assert.equal(codeOf(response), 'REQUEST_TIMEOUT');
    assert.ok(Date.now() - started < 8_000, 'cut off before the client finished trickling');
    await nothingForwarded();
  });
});

describe('pipelining', () => {
  test('two uploads pipelined in one write are both forwarded and answered in order', async () => {
    upstream.clear();
    const twice = Buffer.concat([uploadBytes('X-Order: 1\r\n'), uploadBytes('X-Order: 2\r\n')]);
    const answers = await pipelined(twice, 2);
    assert.deepEqual(answers, [200, 200]);
    const received = await upstream.waitForRequests(2);
    assert.deepEqual(
      received.map((r) => r.headers['x-order']),
      ['1', '2'],
    );
  });

  test('an upload pipelined behind a refused one is never forwarded', async () => {
    upstream.clear();
    const bad = buildMultipart([{ name: 'file', filename: 'shell.php', data: '<?php' }]);
    const refusedFirst = Buffer.concat([
      Buffer.from(`POST /upload HTTP/1.1\r\nHost: guard\r\nContent-Type: ${bad.contentType}\r\nContent-Length: ${bad.body.length}\r\n\r\n`),
      bad.body,
      uploadBytes(),
    ]);
    const answers = await pipelined(refusedFirst, 2);
    assert.deepEqual(answers, [400]);
    await nothingForwarded();
  });
});

/** Writes the bytes at once and collects the statuses of up to `max` responses until the server closes. */
async function pipelined(bytes: Buffer, max: number): Promise<number[]> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const statuses = (): number[] => [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1])).slice(0, max);
    const done = (): void => {
      socket.destroy();
      resolve(statuses());
    };
    const timer = setTimeout(done, 5000);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (statuses().length >= max) {
        clearTimeout(timer);
        setTimeout(done, 100);
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(statuses());
    });
    socket.on('error', () => undefined);
    socket.write(bytes);
  });
}
