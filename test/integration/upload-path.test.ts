// The real guard (built dist/) in front of a real upstream process-local server that records
// every byte it receives; raw sockets where bytes matter.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { loadConfigText } from '../../src/config/load.ts';
import { GuardServer } from '../../src/server/guard-server.ts';

interface Recorded { url: string; headers: Record<string, string | string[] | undefined>; body: Buffer; complete: boolean }
const recorded: Recorded[] = [];
let upstream: Server;
let guard: GuardServer;
let port = 0;

before(async () => {
  upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    const entry: Recorded = { url: req.url ?? '', headers: req.headers, body: Buffer.alloc(0), complete: false };
    recorded.push(entry);
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      entry.body = Buffer.concat(chunks);
      entry.complete = true;
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const upstreamPort = (upstream.address() as { port: number }).port;
  const loaded = loadConfigText(`
listen: 127.0.0.1:0
admin: false
upstream: { url: "http://127.0.0.1:${upstreamPort}" }
routes:
  - { name: upload, path: /upload, methods: [POST], policy: images }
  - { name: stream, path: /stream, methods: [POST], policy: streamed }
policies:
  images: { allow: [png, jpg], maxFileSize: 1MiB, maxRequestSize: 2MiB, maxFields: 3 }
  streamed: { allow: [png, jpg], maxFileSize: 1MiB, maxRequestSize: 2MiB, maxFields: 3, mode: stream }
`);
  assert.ok('config' in loaded, JSON.stringify(loaded));
  guard = new GuardServer(loaded.config);
  port = (await guard.listen()).port;
});

after(async () => {
  await guard.close();
  upstream.close();
});

function png(extra: Buffer): Buffer {
  // A complete 1x1 PNG; the extra bytes after IEND make the file as large as a test needs.
  const onePixel = '89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b550000000a49444154789c636000000002000148afa4710000000049454e44ae426082';
  return Buffer.concat([Buffer.from(onePixel, 'hex'), extra]);
}

function multipart(parts: string[], boundary = 'XyZ'): Buffer {
  return Buffer.from(`${parts.map((p) => `--${boundary}\r\n${p}\r\n`).join('')}--${boundary}--\r\n`, 'latin1');
}

async function raw(path: string, body: Buffer, contentType = 'multipart/form-data; boundary=XyZ', extraHeaders = ''): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ status: Number(text.slice(9, 12)), text });
    });
    socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\n${extraHeaders}\r\n`);
    socket.write(body);
  });
}

test('a clean upload reaches the upstream re-serialised, content byte-identical, fields in order', async () => {
  const before = recorded.length;
  const payload = png(randomBytes(300_000));
  const body = Buffer.concat([
    Buffer.from('--XyZ\r\nContent-Disposition: form-data; name="title"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name="file"; filename="../../My cat.png"\r\nContent-Type: text/html\r\nX-Extra: 1\r\n\r\n', 'latin1'),
    payload,
    Buffer.from('\r\n--XyZ\r\nContent-Disposition: form-data; name="after"\r\n\r\nw\u00e9\r\n--XyZ--\r\n', 'latin1'),
  ]);
  for (const path of ['/upload', '/stream']) {
    const res = await raw(path, body);
    assert.equal(res.status, 200, res.text);
  }
  for (const got of recorded.slice(before)) {
    const text = got.body.toString('latin1');
    const boundary = /boundary=(\S+)/.exec(String(got.headers['content-type']))![1]!;
    assert.notEqual(boundary, 'XyZ');
    assert.doesNotMatch(text, /X-Extra|text\/html/);
    assert.match(text, /name="file"; filename="My_cat.png"\r\nContent-Type: image\/png\r\n\r\n/);
    assert.ok(text.indexOf('name="title"') < text.indexOf('name="file"') && text.indexOf('name="file"') < text.indexOf('name="after"'));
    assert.ok(got.body.includes(Buffer.from('\r\n\r\nw\u00e9\r\n', 'latin1')), 'field bytes unchanged');
    const start = got.body.indexOf('\r\n\r\n', got.body.indexOf('filename="My_cat.png"')) + 4;
    const fileBytes = got.body.subarray(start, start + payload.length);
    assert.equal(createHash('sha256').update(fileBytes).digest('hex'), createHash('sha256').update(payload).digest('hex'));
    assert.equal(got.body.subarray(start + payload.length, start + payload.length + 4).toString(), '\r\n--');
  }
  assert.equal(recorded[before]!.headers['content-length'], String(recorded[before]!.body.length), 'spool forwards an exact length');
  assert.equal(recorded[before + 1]!.headers['transfer-encoding'], 'chunked', 'stream mode forwards chunked');
});

const refusals: Array<[string, Buffer, string, number]> = [
  ['extension', multipart(['Content-Disposition: form-data; name="file"; filename="shell.php"\r\n\r\n<?php ?>']), 'EXTENSION_NOT_ALLOWED', 400],
  ['disguised', multipart(['Content-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nGIF89a<?php system($_GET[1]); ?>']), 'CONTENT_MISMATCH', 400],
  ['empty name', multipart(['Content-Disposition: form-data; name="file"; filename="...."\r\n\r\nx']), 'EXTENSION_NOT_ALLOWED', 400],
  ['padding after delimiter', Buffer.from('--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--XyZ \t\r\nContent-Disposition: form-data; name="file"; filename="s.php"\r\n\r\nx\r\n--XyZ--\r\n'), 'MALFORMED_MULTIPART', 400],
  ['silently skipped part', multipart(['Content-Disposition: attachment; name="file"; filename="s.php"\r\n\r\n<?php', 'Content-Disposition: form-data; name="a"\r\n\r\nv']), 'MALFORMED_MULTIPART', 400],
  ['no close delimiter', Buffer.from('--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\nv'), 'MALFORMED_MULTIPART', 400],
  ['LF-only framing', Buffer.from('--XyZ\nContent-Disposition: form-data; name="file"; filename="s.php"\n\nx\n--XyZ--\n'), 'MALFORMED_MULTIPART', 400],
  ['too many fields', multipart(['a', 'b', 'c', 'd'].map((n) => `Content-Disposition: form-data; name="${n}"\r\n\r\nv`)), 'TOO_MANY_PARTS', 413],
  ['file too large', multipart([`Content-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n${png(randomBytes(1024 * 1024 + 10)).toString('latin1')}`]), 'FILE_TOO_LARGE', 413],
];

for (const [name, body, code, status] of refusals) {
  test(`refused: ${name} → ${code}, the upstream never sees a complete request`, async () => {
    for (const path of ['/upload', '/stream']) {
      const before = recorded.length;
      const res = await raw(path, body);
      assert.equal(res.status, status, res.text);
      const json = JSON.parse(res.text.slice(res.text.indexOf('\r\n\r\n') + 4)) as { code: string; requestId: string };
      assert.equal(json.code, code);
      assert.ok(json.requestId);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(recorded.slice(before).filter((r) => r.complete).length, 0, `${path}: upstream got a complete request`);
    }
  });
}

test('head admission: Content-Length over the limit and non-multipart bodies are refused before the body', async () => {
  const big = await raw('/upload', Buffer.alloc(10), 'multipart/form-data; boundary=XyZ', '');
  assert.equal(big.status, 400); // 10 bytes of NUL is no multipart body
  const res = await new Promise<string>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.on('close', () => resolve(text));
    socket.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 999999999\r\nExpect: 100-continue\r\n\r\n');
  });
  assert.match(res, /^HTTP\/1\.1 413/);
  assert.doesNotMatch(res, /100 Continue/);
  assert.match(res, /REQUEST_TOO_LARGE/);
  const text = await raw('/upload', Buffer.from('a=b'), 'application/x-www-form-urlencoded');
  assert.equal(text.status, 415);
  assert.match(text.text, /UNSUPPORTED_MEDIA_TYPE/);
});

test('routes match the normalised path; ambiguous paths are refused; others pass through', async () => {
  const body = multipart(['Content-Disposition: form-data; name="file"; filename="shell.php"\r\n\r\nx']);
  for (const path of ['/%75pload', '//upload', '/a/../upload', 'http://evil/upload']) {
    const res = await raw(path, body);
    assert.equal(res.status, 400, path);
    assert.match(res.text, /EXTENSION_NOT_ALLOWED/, path);
  }
  const ambiguous = await raw('/upload%2F..', body);
  assert.equal(ambiguous.status, 400);
  assert.match(ambiguous.text, /MALFORMED_REQUEST/);
  const before = recorded.length;
  const passed = await raw('/elsewhere', body);
  assert.equal(passed.status, 200);
  assert.deepEqual(recorded[before]!.body, body, 'passthrough forwards the bytes unchanged');
});
