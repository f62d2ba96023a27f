// Requests no upload route matches: the guard in this process in front of a node:http upstream
// that answers as each test needs. What goes up and what comes back must be the client's and the
// upstream's own, except the hop-by-hop headers and the X-Forwarded-* / X-Request-Id the guard sets.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import type { GuardServer } from '../../src/server/guard-server.ts';
import { startGuard } from '../helpers/guard-in-process.ts';
import { buildMultipart } from '../helpers/multipart-builder.ts';
import { pngBytes } from '../helpers/samples.ts';

interface Seen { method: string; url: string; rawHeaders: string[]; body: Buffer; socket: Socket }
type Answer = (req: IncomingMessage, res: ServerResponse, seen: Seen) => void;

let upstream: Server;
let upstreamPort = 0;
let answer: Answer = (_req, res) => res.end('ok');
const seen: Seen[] = [];
let guard: GuardServer;
let port = 0;

before(async () => {
  upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    const entry: Seen = { method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, body: Buffer.alloc(0), socket: req.socket };
    seen.push(entry);
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      entry.body = Buffer.concat(chunks);
      answer(req, res, entry);
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  upstreamPort = (upstream.address() as { port: number }).port;
  ({ guard, port } = await startGuard(`
listen: 127.0.0.1:0
admin: false
trustProxy: [127.0.0.2/32]
upstream: { url: "http://127.0.0.1:${upstreamPort}", timeout: 30s }
routes:
  - { name: upload, path: /upload, methods: [POST], policy: images }
  - { name: upload-stream, path: /upload-stream, methods: [POST], policy: streamed }
policies: { images: { allow: [png] }, streamed: { allow: [png], mode: stream } }
`));
});

after(async () => {
  await guard.close();
  upstream.closeAllConnections();
  upstream.close();
});

/** One request to the guard over a raw socket (Connection: close); the whole answer as bytes. */
function exchange(head: string, body: Buffer = Buffer.alloc(0), localAddress = '127.0.0.1'): Promise<Buffer> {
  return request(port, head, body, localAddress);
}

function request(guardPort: number, head: string, body: Buffer = Buffer.alloc(0), localAddress = '127.0.0.1'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port: guardPort, host: '127.0.0.1', localAddress });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    // no half-close: node:http would take the FIN for a client that left
    socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  });
}

function split(answer: Buffer): { statusLine: string; headers: string[]; body: Buffer } {
  const end = answer.indexOf('\r\n\r\n');
  const lines = answer.subarray(0, end).toString('latin1').split('\r\n');
  return { statusLine: lines[0]!, headers: lines.slice(1), body: answer.subarray(end + 4) };
}

function pairs(rawHeaders: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < rawHeaders.length; i += 2) out.push([rawHeaders[i]!.toLowerCase(), rawHeaders[i + 1]!]);
  return out;
}

test('a GET goes up with its end-to-end headers in order and comes back with status, reason phrase, headers and body as sent', async () => {
  seen.length = 0;
  const payload = randomBytes(3000);
  answer = (_req, res) => {
    res.writeHead(299, 'Quite Fine', [['X-Up', 'a'], ['Set-Cookie', 'one=1'], ['Set-Cookie', 'two=2'], ['Content-Length', String(payload.length)], ['Keep-Alive', 'timeout=5']]);
    res.end(payload);
  };
  const reply = split(
    await exchange(
      'GET /static/app.js?v=1 HTTP/1.1\r\nHost: files.example\r\nAccept: */*\r\nX-Multi: 1\r\nConnection: close, X-Hop\r\nX-Hop: dropped\r\n' +
        'X-Multi: 2\r\nTE: trailers\r\nProxy-Authorization: Basic Zm9v\r\nX-Forwarded-Host: spoofed.example\r\nX-Request-Id: given-id-1\r\n\r\n',
    ),
  );
  assert.equal(reply.statusLine, 'HTTP/1.1 299 Quite Fine');
  const headers = reply.headers.map((h) => h.toLowerCase());
  assert.ok(headers.includes('x-up: a'));
  assert.deepEqual(headers.filter((h) => h.startsWith('set-cookie')), ['set-cookie: one=1', 'set-cookie: two=2']);
  assert.ok(!headers.some((h) => h.startsWith('keep-alive')), 'hop-by-hop Keep-Alive is not relayed');
  assert.deepEqual(reply.body, payload);

  const up = seen[0]!;
  assert.equal(up.method, 'GET');
  assert.equal(up.url, '/static/app.js?v=1');
  const sent = pairs(up.rawHeaders);
  const value = (name: string): string[] => sent.filter(([n]) => n === name).map(([, v]) => v);
  assert.deepEqual(value('host'), ['files.example']);
  assert.deepEqual(value('accept'), ['*/*']);
  assert.deepEqual(value('x-multi'), ['1', '2'], 'repeated headers keep their order');
  for (const hop of ['x-hop', 'te', 'proxy-authorization']) assert.deepEqual(value(hop), [], hop);
  assert.deepEqual(value('x-forwarded-for'), ['127.0.0.1']);
  assert.deepEqual(value('x-forwarded-proto'), ['http']);
  assert.deepEqual(value('x-forwarded-host'), [], 'an untrusted client does not set X-Forwarded-Host');
  assert.deepEqual(value('x-request-id'), ['given-id-1']);
});

test('X-Forwarded-* from a trusted proxy are kept and extended; from anyone else replaced by the peer', async () => {
  seen.length = 0;
  answer = (_req, res) => res.end('ok');
  const head = 'GET /page HTTP/1.1\r\nHost: h\r\nConnection: close\r\nX-Forwarded-For: 198.51.100.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\n\r\n';
  await exchange(head, undefined, '127.0.0.2');
  await exchange(head, undefined, '127.0.0.1');
  const [trusted, untrusted] = seen.map((s) => Object.fromEntries(pairs(s.rawHeaders)));
  assert.equal(trusted!['x-forwarded-for'], '198.51.100.7, 127.0.0.2');
  assert.equal(trusted!['x-forwarded-proto'], 'https');
  assert.equal(trusted!['x-forwarded-host'], 'public.example');
  assert.equal(untrusted!['x-forwarded-for'], '127.0.0.1');
  assert.equal(untrusted!['x-forwarded-proto'], 'http');
  assert.equal(untrusted!['x-forwarded-host'], undefined);
  assert.match(untrusted!['x-request-id'] ?? '', /^[0-9a-f-]{36}$/, 'a request without an id gets one');
});

test('request bodies go up byte for byte, with Content-Length or chunked', async () => {
  seen.length = 0;
  answer = (_req, res, s) => res.end(createHash('sha256').update(s.body).digest('hex'));
  const body = randomBytes(3 * 1024 * 1024 + 17);
  const sha = createHash('sha256').update(body).digest('hex');
  const withLength = split(await exchange(`PUT /api/blob HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n`, body));
  assert.equal(withLength.body.toString(), sha);
  const chunked = Buffer.concat([Buffer.from(`${(100).toString(16)}\r\n`), body.subarray(0, 100), Buffer.from(`\r\n${(body.length - 100).toString(16)}\r\n`), body.subarray(100), Buffer.from('\r\n0\r\n\r\n')]);
  const withChunks = split(await exchange('POST /api/blob HTTP/1.1\r\nHost: h\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n', chunked));
  assert.equal(withChunks.body.toString(), sha);
  assert.equal(Object.fromEntries(pairs(seen[0]!.rawHeaders))['content-length'], String(body.length));
  assert.equal(Object.fromEntries(pairs(seen[0]!.rawHeaders))['content-type'], 'application/octet-stream');
});

test('a client that stops reading holds the upstream back; what it reads later is complete', async () => {
  const total = 64 * 1024 * 1024;
  const block = randomBytes(1024 * 1024);
  let upstreamSocket: Socket | null = null;
  answer = (_req, res) => {
    upstreamSocket = res.socket;
    res.writeHead(200, { 'content-length': String(total) });
    let sent = 0;
    const more = (): void => {
      while (sent < total) {
        sent += block.length;
        if (!res.write(block)) return void res.once('drain', more);
      }
      res.end();
    };
    more();
  };
  const socket = connect(port, '127.0.0.1');
  socket.write('GET /big HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
  socket.pause();
  // let whatever buffering there is fill up
  for (let i = 0; i < 50 && upstreamSocket === null; i++) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 500));
  const pushedWhilePaused = (upstreamSocket as Socket | null)?.bytesWritten ?? 0;
  assert.ok(pushedWhilePaused < total / 2, `the upstream pushed ${pushedWhilePaused} bytes to a client that read nothing`);
  const hash = createHash('sha256');
  let received = 0;
  let headDone = false;
  let pending = Buffer.alloc(0);
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (c: Buffer) => {
      if (!headDone) {
        pending = Buffer.concat([pending, c]);
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) return;
        headDone = true;
        c = pending.subarray(end + 4);
      }
      received += c.length;
      hash.update(c);
    });
    socket.on('close', () => resolve());
    socket.on('error', reject);
    socket.resume();
  });
  assert.equal(received, total);
  const expected = createHash('sha256');
  for (let i = 0; i < total / block.length; i++) expected.update(block);
  assert.equal(hash.digest('hex'), expected.digest('hex'));
});

test('a client that goes away mid-answer closes the upstream request', async () => {
  let upstreamSocket: Socket | null = null;
  answer = (_req, res) => {
    upstreamSocket = res.socket;
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first part');
    // never ends: only the guard giving up can close this
  };
  const socket = connect(port, '127.0.0.1');
  socket.write('GET /slow HTTP/1.1\r\nHost: h\r\n\r\n');
  await new Promise<void>((resolve) => socket.once('data', () => resolve()));
  socket.destroy();
  const closed = await new Promise<boolean>((resolve) => {
    // well inside upstream.timeout (30 s), which would close it too
    const timer = setTimeout(() => resolve(false), 5000);
    (upstreamSocket as unknown as Socket).once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  assert.ok(closed, 'the upstream connection of an abandoned answer was closed');
});

test('upstream too slow → 504 UPSTREAM_TIMEOUT; an answer cut short after its head → the client connection is cut', async () => {
  answer = () => undefined; // never answers
  const { guard: impatient, port: impatientPort } = await startGuard(`
listen: 127.0.0.1:0
admin: false
upstream: { url: "http://127.0.0.1:${upstreamPort}", timeout: 1s }
routes: [{ name: upload, path: /upload, methods: [POST], policy: images }]
policies: { images: { allow: [png] } }
`);
  try {
    const timedOut = split(await request(impatientPort, 'GET /hang HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'));
    assert.match(timedOut.statusLine, /^HTTP\/1\.1 504 /);
    assert.equal(JSON.parse(timedOut.body.toString()).code, 'UPSTREAM_TIMEOUT');
  } finally {
    await impatient.close();
  }

  answer = (_req, res) => {
    res.writeHead(200, { 'content-length': '100' });
    res.write('only part of it');
    setTimeout(() => res.socket?.destroy(), 50);
  };
  const cut = await exchange('GET /cut HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
  const { statusLine, body } = split(cut);
  assert.equal(statusLine, 'HTTP/1.1 200 OK');
  assert.ok(body.length < 100, 'the client does not get a complete-looking answer');
});

test('upstream refusing connections → 502 UPSTREAM_UNAVAILABLE', async () => {
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
  const deadPort = (closed.address() as { port: number }).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const { guard: other, port: otherPort } = await startGuard(`
listen: 127.0.0.1:0
admin: false
upstream: { url: "http://127.0.0.1:${deadPort}" }
routes: [{ name: upload, path: /upload, methods: [POST], policy: images }]
policies: { images: { allow: [png] } }
`);
  try {
    const { statusLine, body } = split(await request(otherPort, 'GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'));
    assert.match(statusLine, /^HTTP\/1\.1 502 /);
    assert.equal(JSON.parse(body.toString()).code, 'UPSTREAM_UNAVAILABLE');
  } finally {
    await other.close();
  }
});

test('an upload route relays the upstream answer the same way: status, reason phrase, headers, body, after the whole upload', async () => {
  seen.length = 0;
  answer = (_req, res, s) => {
    const text = JSON.stringify({ bytes: s.body.length });
    res.writeHead(201, 'Stored Safely', { 'x-stored-as': 'a.png', 'content-type': 'application/json', 'content-length': String(text.length) });
    res.end(text);
  };
  for (const path of ['/upload', '/upload-stream']) {
    const { body, contentType } = buildMultipart([{ name: 'file', filename: 'a.png', contentType: 'image/png', data: pngBytes(5000) }]);
    const reply = split(await exchange(`POST ${path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\n\r\n`, body));
    assert.equal(reply.statusLine, 'HTTP/1.1 201 Stored Safely', path);
    assert.ok(reply.headers.map((h) => h.toLowerCase()).includes('x-stored-as: a.png'), path);
    assert.equal(JSON.parse(reply.body.toString()).bytes, seen.at(-1)!.body.length, path);
  }
  assert.equal(seen.length, 2);
});
