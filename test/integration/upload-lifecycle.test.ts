// The lifecycle edges of a request through the real guard (in-process, real sockets, no mocks):
// WebSocket passthrough, the client-side body idle timeout (408), client aborts (nothing reaches
// the upstream complete, no spool descriptor is left open), how each mode frames what it forwards
// even for tiny bodies, and upstream failures (502/504) with their spool cleanup.
//
// upload-path.test.ts already covers: clean uploads in both modes (chunked vs exact length for a
// ~300 KB body), every policy refusal in both modes, head admission and path-routed uploads.
// Nothing here repeats those.
//
// Spool descriptors are looked for in /proc/self/fd: node --test runs this file in its own
// process and the guard runs in it, so a temp file the guard still holds shows up here as a link
// to "<spoolDir>/spool-… (deleted)" (spool files are unlinked right after they are created).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loadConfigText } from '../../src/config/load.ts';
import { GuardServer } from '../../src/server/guard-server.ts';
import { buildMultipart, parseMultipart } from '../helpers/multipart-builder.ts';
import { rawRequest, type RawResponse } from '../helpers/raw-http.ts';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.ts';
import { pngBytes, sha256 } from '../helpers/samples.ts';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const SPOOL_THRESHOLD = 64 * 1024;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const tempDirs: string[] = [];
after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  assert.deepEqual(closedByGc, [], 'a FileHandle was left for the garbage collector to close');
});

// A spool FileHandle nobody closed is closed by V8's garbage collector sooner or later, with this
// warning; without looking for it, a leaked descriptor could vanish from /proc/self/fd and pass.
const closedByGc: string[] = [];
let gcReported = 0;
process.on('warning', (warning) => {
  if (/on garbage collection/i.test(warning.message)) closedByGc.push(warning.message);
});

/** No descriptor under dir, nothing in it, and none was closed by the garbage collector. */
async function assertSpoolClean(dir: string, what: string): Promise<void> {
  await waitFor(`${what}: the spool descriptor to be closed`, () => openFilesUnder(dir).length === 0);
  assert.deepEqual(readdirSync(dir), [], `${what}: nothing left in spoolDir`);
  await sleep(100); // the GC warning is emitted on a later turn of the event loop
  const fresh = closedByGc.slice(gcReported);
  gcReported = closedByGc.length;
  assert.deepEqual(fresh, [], `${what}: the spool's FileHandle was never closed, the garbage collector did it`);
}

function freshSpoolDir(): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'ug-lifecycle-spool-')));
  tempDirs.push(dir);
  return dir;
}

/** Targets of this process's open descriptors that point into dir (spool files show as "… (deleted)"). */
function openFilesUnder(dir: string): string[] {
  const found: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // closed between readdir and readlink (readdir's own descriptor, for one)
    }
    if (target.startsWith(`${dir}/`)) found.push(target);
  }
  return found;
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** The YAML of a guard with a spool route (/upload) and a stream route (/stream). */
function guardYaml(upstreamUrl: string, spoolDir: string, opts: { bodyIdle?: string; upstreamTimeout?: string } = {}): string {
  const policy = `allow: [png], maxFileSize: 16MiB, maxRequestSize: 16MiB, maxFields: 5, spoolDir: "${spoolDir}", spoolMemoryThreshold: ${SPOOL_THRESHOLD}`;
  return `
listen: 127.0.0.1:0
admin: false
upstream: { url: "${upstreamUrl}", timeout: ${opts.upstreamTimeout ?? '30s'} }
timeouts: { headers: 30s, bodyIdle: ${opts.bodyIdle ?? '30s'} }
routes:
  - { name: spooled, path: /upload, methods: [POST], policy: spooled }
  - { name: streamed, path: /stream, methods: [POST], policy: streamed }
policies:
  spooled: { ${policy}, mode: spool }
  streamed: { ${policy}, mode: stream }
`;
}

async function startGuard(yaml: string): Promise<{ guard: GuardServer; port: number; stop: () => Promise<void> }> {
  const loaded = loadConfigText(yaml);
  assert.ok('config' in loaded, JSON.stringify(loaded));
  const guard = new GuardServer(loaded.config);
  const { port } = await guard.listen();
  return {
    guard,
    port,
    stop: async () => {
      guard.server.closeAllConnections();
      await guard.close();
    },
  };
}

function requestHead(path: string, contentType: string, contentLength: number, extra = ''): Buffer {
  return Buffer.from(`POST ${path} HTTP/1.1\r\nHost: guard.test\r\nContent-Type: ${contentType}\r\nContent-Length: ${contentLength}\r\n${extra}\r\n`, 'latin1');
}

function json(res: RawResponse): { code?: string; requestId?: string; error?: string } {
  try {
    return JSON.parse(res.body.toString('utf8')) as { code?: string; requestId?: string };
  } catch {
    assert.fail(`response body is not JSON: status ${res.status}, ${JSON.stringify(res.raw.toString('latin1').slice(0, 500))}`);
  }
}

/** A PNG upload large enough to spill over the spool threshold many times. */
function largeUpload(bytes = 4 * 1024 * 1024): { body: Buffer; contentType: string } {
  return buildMultipart([
    { name: 'title', data: 'a holiday picture' },
    { name: 'file', filename: 'big.png', contentType: 'image/png', data: pngBytes(bytes) },
  ]);
}

/** A client that sends what it is told, when it is told, and records everything it receives. */
interface SlowClient {
  write(bytes: Buffer): Promise<void>;
  destroy(): void;
  /** Resolves with every byte received once the connection is closed (by either side). */
  closed: Promise<Buffer>;
}

function openClient(port: number): Promise<SlowClient> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', () => undefined); // EPIPE / ECONNRESET after the guard answered: recorded as a close
    const closed = new Promise<Buffer>((done) => socket.once('close', () => done(Buffer.concat(received))));
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve({
        write: (bytes) => new Promise<void>((done) => socket.write(bytes, () => done())),
        destroy: () => socket.destroy(),
        closed,
      });
    });
  });
}

function parseRawResponse(raw: Buffer): { status: number; headers: Record<string, string>; body: Buffer } {
  const end = raw.indexOf('\r\n\r\n');
  assert.ok(end > 0, `no complete response head in ${JSON.stringify(raw.toString('latin1').slice(0, 300))}`);
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = Number(headers['content-length'] ?? raw.length - end - 4);
  return { status: Number(lines[0]!.split(' ')[1]), headers, body: raw.subarray(end + 4, end + 4 + length) };
}

// ---- 1. WebSocket passthrough ----------------------------------------------------------------

/** One RFC 6455 frame as sent by a client (masked) or a server (unmasked); payloads < 126 bytes. */
function wsFrame(text: string, mask: Buffer | null): Buffer {
  const payload = Buffer.from(text, 'utf8');
  assert.ok(payload.length < 126);
  const head = Buffer.from([0x81, (mask ? 0x80 : 0) | payload.length]);
  if (!mask) return Buffer.concat([head, payload]);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([head, mask, masked]);
}

/** Parses one complete short frame from the start of buf; null while incomplete. */
function readWsFrame(buf: Buffer): { fin: boolean; opcode: number; masked: boolean; text: string; size: number } | null {
  if (buf.length < 2) return null;
  const masked = (buf[1]! & 0x80) !== 0;
  const length = buf[1]! & 0x7f;
  assert.ok(length < 126, 'test frames are short');
  const start = 2 + (masked ? 4 : 0);
  if (buf.length < start + length) return null;
  let payload = buf.subarray(start, start + length);
  if (masked) {
    const mask = buf.subarray(2, 6);
    payload = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  }
  return { fin: (buf[0]! & 0x80) !== 0, opcode: buf[0]! & 0x0f, masked, text: payload.toString('utf8'), size: start + length };
}

interface WsUpstream {
  port: number;
  upgrades: Array<{ url: string; headers: IncomingHttpHeaders }>;
  /** Frames the upstream received (after unmasking), with whether they were masked. */
  frames: Array<{ text: string; masked: boolean }>;
  stop(): Promise<void>;
}

/** A node:http upstream that speaks just enough RFC 6455: the handshake, then echoes text frames. */
async function startWsUpstream(): Promise<WsUpstream> {
  const upgrades: WsUpstream['upgrades'] = [];
  const frames: WsUpstream['frames'] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' });
    res.end('upgrade required');
  });
  server.on('upgrade', (req, socket: Socket, head: Buffer) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    upgrades.push({ url: req.url ?? '', headers: req.headers });
    const key = req.headers['sec-websocket-key'];
    if (typeof key !== 'string' || !/websocket/i.test(req.headers.upgrade ?? '')) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    let pending = Buffer.from(head);
    const onData = (chunk: Buffer): void => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const frame = readWsFrame(pending);
        if (!frame) return;
        pending = pending.subarray(frame.size);
        frames.push({ text: frame.text, masked: frame.masked });
        if (frame.opcode === 0x1) socket.write(wsFrame(`echo:${frame.text}`, null));
      }
    };
    socket.on('data', onData);
    if (pending.length > 0) onData(Buffer.alloc(0));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    upgrades,
    frames,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

test('WebSocket upgrade on a non-upload path passes through: 101 with the right accept key, frames both ways, path normalised', async () => {
  const upstream = await startWsUpstream();
  const { port, stop } = await startGuard(guardYaml(`http://127.0.0.1:${upstream.port}`, freshSpoolDir()));
  // upgraded connections are the server's no more: a failed assertion must not leave one open
  const clients: Socket[] = [];
  try {
    for (const [target, expectedPath] of [
      ['/ws', '/ws'],
      ['//ws', '/ws'],
      ['/chat/../ws?room=1', '/ws?room=1'],
    ] as const) {
      const before = upstream.upgrades.length;
      const key = randomBytes(16).toString('base64');
      const socket = connect(port, '127.0.0.1');
      clients.push(socket);
      socket.on('error', () => undefined);
      let received = Buffer.alloc(0);
      const waitReceived = (what: string, done: (buf: Buffer) => boolean): Promise<void> =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`${target}: timed out waiting for ${what}; got ${JSON.stringify(received.toString('latin1'))}`)), 10_000);
          const check = (): void => {
            if (!done(received)) return;
            clearTimeout(timer);
            socket.off('data', onData);
            socket.off('close', onClose);
            resolve();
          };
          const onData = (chunk: Buffer): void => {
            received = Buffer.concat([received, chunk]);
            check();
          };
          const onClose = (): void => {
            clearTimeout(timer);
            reject(new Error(`${target}: connection closed waiting for ${what}; got ${JSON.stringify(received.toString('latin1'))}`));
          };
          socket.on('data', onData);
          socket.once('close', onClose);
          check();
        });
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(
        `GET ${target} HTTP/1.1\r\nHost: guard.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nX-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Host: spoofed.example\r\n\r\n`,
      );
      await waitReceived('the 101 response head', (buf) => buf.includes('\r\n\r\n'));
      const headEnd = received.indexOf('\r\n\r\n');
      const head = received.subarray(0, headEnd).toString('latin1');
      assert.match(head, /^HTTP\/1\.1 101 /, `${target}: ${head}`);
      const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head)?.[1];
      assert.equal(accept, createHash('sha1').update(key + WS_GUID).digest('base64'), `${target}: Sec-WebSocket-Accept`);
      assert.match(head, /\r\nupgrade:\s*websocket/i);
      received = received.subarray(headEnd + 4);

      socket.write(wsFrame('hello through the guard', randomBytes(4)));
      await waitReceived('the echoed frame', (buf) => readWsFrame(buf) !== null);
      const echo = readWsFrame(received)!;
      assert.deepEqual({ fin: echo.fin, opcode: echo.opcode, masked: echo.masked, text: echo.text }, { fin: true, opcode: 1, masked: false, text: 'echo:hello through the guard' });

      assert.equal(upstream.upgrades.length, before + 1, `${target}: exactly one upgrade reached the upstream`);
      assert.equal(upstream.upgrades[before]!.url, expectedPath, `${target}: the upstream sees the normalised path`);
      assert.equal(upstream.upgrades[before]!.headers['sec-websocket-key'], key);
      // X-Forwarded-* by the rule of every forwarded request (forwarded-headers.ts): the loopback
      // client is a trusted proxy by default, so its chain is kept and extended, and nothing else added
      assert.equal(upstream.upgrades[before]!.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
      assert.equal(upstream.upgrades[before]!.headers['x-forwarded-proto'], 'http');
      assert.equal(upstream.upgrades[before]!.headers['x-forwarded-host'], 'spoofed.example');
      assert.equal(upstream.upgrades[before]!.headers['x-forwarded-port'], undefined);
      assert.match(String(upstream.upgrades[before]!.headers['x-request-id']), /^[0-9a-f-]{36}$/);
      assert.deepEqual(upstream.frames.at(-1), { text: 'hello through the guard', masked: true }, 'the client frame arrives unchanged (still masked)');
      socket.destroy();
    }
  } finally {
    for (const client of clients) client.destroy();
    await stop();
    await upstream.stop();
  }
});

// ---- 2. 408 REQUEST_TIMEOUT ------------------------------------------------------------------

test('a client that stalls mid-body gets 408 REQUEST_TIMEOUT; spool mode never contacts the upstream', async () => {
  const upstream = await startRecordingUpstream();
  const { port, stop } = await startGuard(guardYaml(upstream.url, freshSpoolDir(), { bodyIdle: '300ms' }));
  try {
    const { body, contentType } = largeUpload(1024 * 1024);
    // Headers and a third of the body, then nothing: the connection stays open, the body never completes.
    const res = await rawRequest(port, [Buffer.concat([requestHead('/upload', contentType, body.length), body.subarray(0, body.length / 3)])], { timeoutMs: 15_000 });
    assert.equal(res.timedOut, false, 'the guard answered the stalled client');
    assert.equal(res.status, 408, res.raw.toString('latin1').slice(0, 500));
    const answer = json(res);
    assert.equal(answer.code, 'REQUEST_TIMEOUT');
    assert.ok(answer.requestId);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.match(res.headers.connection ?? '', /close/i, 'the body was still due: Connection: close');
    await sleep(200);
    assert.equal(upstream.connections, 0, 'spool mode: the upstream was never contacted');
    assert.equal(upstream.requests.length, 0);
  } finally {
    await stop();
    await upstream.stop();
  }
});

test('stream mode: a client that stalls mid-body gets 408 REQUEST_TIMEOUT and the started upstream request is aborted', async () => {
  const upstream = await startRecordingUpstream();
  const { port, stop } = await startGuard(guardYaml(upstream.url, freshSpoolDir(), { bodyIdle: '500ms' }));
  try {
    const { body, contentType } = largeUpload(1024 * 1024);
    const client = await openClient(port);
    // The field and well over the 64 KiB sniff window of the file: enough for the guard to start
    // the upstream request.
    await client.write(Buffer.concat([requestHead('/stream', contentType, body.length), body.subarray(0, 256 * 1024)]));
    // Keep the body trickling (well inside the idle limit) until the upstream request has begun,
    // so the test is about aborting a started request; then stall.
    let sent = 256 * 1024;
    const trickle = (async () => {
      while (upstream.requests.length === 0 && sent < body.length / 2) {
        await sleep(50);
        await client.write(body.subarray(sent, sent + 1));
        sent++;
      }
    })();
    await waitFor('the upstream request to start', () => upstream.requests.length > 0);
    await trickle;
    let timer: NodeJS.Timeout | undefined;
    const raw = await Promise.race([client.closed, new Promise<null>((resolve) => (timer = setTimeout(resolve, 15_000, null)))]);
    clearTimeout(timer);
    assert.ok(raw !== null, 'the guard answered and closed the stalled connection');
    const res = parseRawResponse(raw);
    assert.equal(res.status, 408, raw.toString('latin1').slice(0, 500));
    const answer = JSON.parse(res.body.toString('utf8')) as { code: string; requestId: string };
    assert.equal(answer.code, 'REQUEST_TIMEOUT');
    assert.ok(answer.requestId);
    const [forwarded] = await upstream.waitForRequests(1, 10_000);
    assert.equal(forwarded!.complete, false, 'the upstream request never completed');
    assert.equal(forwarded!.aborted, true, 'the upstream request was aborted');
    assert.equal(forwarded!.headers['transfer-encoding'], 'chunked');
    assert.equal(upstream.requests.length, 1);
  } finally {
    await stop();
    await upstream.stop();
  }
});

// ---- 3. Client abort ------------------------------------------------------------------------

test('spool mode: a client that aborts mid-upload leaves no spool descriptor or file behind and nothing reaches the upstream', async () => {
  const upstream = await startRecordingUpstream();
  const spoolDir = freshSpoolDir();
  const { port, stop } = await startGuard(guardYaml(upstream.url, spoolDir));
  try {
    assert.deepEqual(openFilesUnder(spoolDir), []);
    const { body, contentType } = largeUpload();
    const client = await openClient(port);
    await client.write(Buffer.concat([requestHead('/upload', contentType, body.length), body.subarray(0, body.length / 2)]));
    // The body is far over the memory threshold: the guard now holds an unlinked temp file.
    // (Between open and unlink the link has no " (deleted)" yet: wait for the settled state.)
    await waitFor('the spool to spill into an unlinked temp file', () => openFilesUnder(spoolDir).some((t) => t.endsWith(' (deleted)')));
    const held = openFilesUnder(spoolDir);
    assert.equal(held.length, 1, JSON.stringify(held));
    assert.match(held[0]!, /\/spool-[0-9a-f]+ \(deleted\)$/, 'the temp file is unlinked while open');
    client.destroy();
    await client.closed;
    await assertSpoolClean(spoolDir, 'after the client abort');
    assert.equal(upstream.connections, 0, 'the upstream was never contacted');
    assert.equal(upstream.requests.length, 0);
  } finally {
    await stop();
    await upstream.stop();
  }
});

test('stream mode: a client that aborts mid-upload makes the guard abort the upstream request', async () => {
  const upstream = await startRecordingUpstream();
  const { port, stop } = await startGuard(guardYaml(upstream.url, freshSpoolDir()));
  try {
    const { body, contentType } = largeUpload();
    const client = await openClient(port);
    await client.write(Buffer.concat([requestHead('/stream', contentType, body.length), body.subarray(0, body.length / 2)]));
    await waitFor('the upstream to receive part of the body', () => (upstream.requests[0]?.bodyLength ?? 0) > 0);
    client.destroy();
    const [forwarded] = await upstream.waitForRequests(1, 10_000);
    assert.equal(forwarded!.complete, false, 'the upstream request never completed');
    assert.equal(forwarded!.aborted, true, 'the upstream saw the request die mid-body');
    assert.ok(forwarded!.bodyLength < body.length, 'less than the whole body was forwarded');
    assert.equal(upstream.requests.length, 1);
  } finally {
    await stop();
    await upstream.stop();
  }
});

// ---- 4. How each mode frames what it forwards ----------------------------------------------

test('stream mode forwards chunked even for a tiny body; spool mode forwards it with an exact Content-Length', async () => {
  const upstream = await startRecordingUpstream();
  const { port, stop } = await startGuard(guardYaml(upstream.url, freshSpoolDir()));
  try {
    const tinyPng = pngBytes();
    const bodies = {
      'one field': buildMultipart([{ name: 'title', data: 'hi' }]),
      'one small file': buildMultipart([{ name: 'file', filename: 'tiny.png', contentType: 'image/png', data: tinyPng }]),
    };
    for (const [what, { body, contentType }] of Object.entries(bodies)) {
      for (const path of ['/stream', '/upload']) {
        upstream.clear();
        const res = await rawRequest(port, [requestHead(path, contentType, body.length), body], { timeoutMs: 15_000 });
        assert.equal(res.status, 200, `${what} ${path}: ${res.raw.toString('latin1').slice(0, 500)}`);
        const [got] = await upstream.waitForRequests(1, 10_000);
        assert.ok(got!.complete, `${what} ${path}: the upstream got the whole body`);
        const parts = parseMultipart(got!.body!, String(got!.headers['content-type']));
        if (what === 'one field') assert.deepEqual(parts.map((p) => [p.name, p.data.toString()]), [['title', 'hi']]);
        else assert.equal(sha256(parts[0]!.data), sha256(tinyPng), `${what} ${path}: file bytes unchanged`);
        const framing = got!.rawHeaders.filter(([name]) => /^(content-length|transfer-encoding)$/i.test(name)).map(([name, value]) => `${name.toLowerCase()}: ${value}`);
        if (path === '/stream') assert.deepEqual(framing, ['transfer-encoding: chunked'], `${what}: stream mode must forward chunked`);
        else assert.deepEqual(framing, [`content-length: ${got!.bodyLength}`], `${what}: spool mode must forward an exact Content-Length`);
      }
    }
  } finally {
    await stop();
    await upstream.stop();
  }
});

// ---- 5. Upstream failures --------------------------------------------------------------------

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function expectUpstreamFailure(
  port: number,
  spoolDir: string,
  status: number,
  code: string,
  upstream: RecordingUpstream | null,
): Promise<void> {
  // Large enough that spool mode spills into a temp file before it forwards.
  const { body, contentType } = largeUpload(512 * 1024);
  for (const path of ['/upload', '/stream']) {
    const res = await rawRequest(port, [requestHead(path, contentType, body.length), body], { timeoutMs: 30_000 });
    assert.equal(res.status, status, `${path}: ${res.raw.toString('latin1').slice(0, 500)}`);
    const answer = json(res);
    assert.equal(answer.code, code, path);
    assert.ok(answer.requestId, path);
    assert.equal(res.headers['content-type'], 'application/json', path);
    await assertSpoolClean(spoolDir, `${path}: after ${code}`);
  }
  if (upstream) {
    const seen = await upstream.waitForRequests(2, 10_000);
    assert.equal(seen.length, 2);
  }
}

test('upstream refusing connections → 502 UPSTREAM_UNAVAILABLE in both modes, spool cleaned up', async () => {
  const spoolDir = freshSpoolDir();
  const { port, stop } = await startGuard(guardYaml(`http://127.0.0.1:${await closedPort()}`, spoolDir));
  try {
    await expectUpstreamFailure(port, spoolDir, 502, 'UPSTREAM_UNAVAILABLE', null);
  } finally {
    await stop();
  }
});

test('upstream that never answers → 504 UPSTREAM_TIMEOUT in both modes (small upstream.timeout), spool cleaned up', async () => {
  const upstream = await startRecordingUpstream({ behaviour: { mode: 'hang' } });
  const spoolDir = freshSpoolDir();
  const { port, stop } = await startGuard(guardYaml(upstream.url, spoolDir, { upstreamTimeout: '1s' }));
  try {
    await expectUpstreamFailure(port, spoolDir, 504, 'UPSTREAM_TIMEOUT', upstream);
  } finally {
    await stop();
    await upstream.stop();
  }
});

test('upstream that resets the connection after reading the body → 502 UPSTREAM_UNAVAILABLE in both modes, spool cleaned up', async () => {
  const upstream = await startRecordingUpstream({ behaviour: { mode: 'destroy' } });
  const spoolDir = freshSpoolDir();
  const { port, stop } = await startGuard(guardYaml(upstream.url, spoolDir));
  try {
    await expectUpstreamFailure(port, spoolDir, 502, 'UPSTREAM_UNAVAILABLE', upstream);
  } finally {
    await stop();
    await upstream.stop();
  }
});
