// A stand-in upstream for tests: a node:http server on 127.0.0.1:0 that records every request it
// receives (method, target, raw header pairs, body bytes or their sha256 + length, whether the body
// completed or the connection died mid-body) and answers as the test tells it to: 200 JSON by
// default, or a given status, a delay, no answer at all, or a destroyed socket (502/504 tests).

import { createHash, type Hash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  httpVersion: string;
  /** Header pairs exactly as received, in order, names in their original case. */
  rawHeaders: Array<[string, string]>;
  /** Node's parsed headers (lower-case names), for convenience. */
  headers: IncomingHttpHeaders;
  /** The whole body while it is at most keepBodiesUpTo bytes; null once it grew larger. */
  body: Buffer | null;
  /** Body bytes received so far (all of them, once settled). */
  bodyLength: number;
  /** sha256 (hex) of the body bytes received; set once the request settled. */
  sha256: string | null;
  /** The body ended as framed (Content-Length reached or last chunk seen). */
  complete: boolean;
  /** The connection closed or reset before the body ended. */
  aborted: boolean;
  /** Date.now() when the request head arrived. */
  startedAt: number;
  /** Date.now() when the body completed or the request was aborted; null while in progress. */
  settledAt: number | null;
  /** Resolves once complete or aborted. */
  settled: Promise<void>;
}

/** How the upstream answers. */
export interface UpstreamBehaviour {
  /**
   * respond (default): read the whole body, wait delayMs, answer.
   * early: answer at once when the head arrives (like Werkzeug's 413), keep draining the body.
   * hang: read the whole body, never answer (the socket stays open until stop()).
   * destroy: read the whole body, wait delayMs, destroy the socket without answering.
   * destroy-immediately: destroy the socket as soon as the head arrives.
   */
  mode?: 'respond' | 'early' | 'hang' | 'destroy' | 'destroy-immediately';
  /** Default 200. */
  status?: number;
  headers?: Record<string, string>;
  /** Default: `{"ok":true,"received":<body bytes>}` as application/json. */
  body?: string | Buffer;
  delayMs?: number;
}

export interface RecordingUpstreamOptions {
  /** Bodies up to this many bytes are kept whole; larger ones only as sha256 + length. Default 8 MiB. */
  keepBodiesUpTo?: number;
  /** Fixed behaviour, or chosen per request (it sees the request as recorded so far: head only). */
  behaviour?: UpstreamBehaviour | ((request: RecordedRequest) => UpstreamBehaviour);
}

export interface RecordingUpstream {
  port: number;
  /** http://127.0.0.1:<port> */
  url: string;
  /** Every request received, in arrival order. */
  requests: RecordedRequest[];
  /** TCP connections accepted so far (a spool-mode rejection must leave this unchanged). */
  readonly connections: number;
  /** Errors Node's HTTP parser reported (malformed heads, EOF in the middle of a body); the
   *  upstream answers 400 to those where the socket is still writable. */
  clientErrors: Array<{ code: string; message: string }>;
  /** Change how later requests are answered. */
  setBehaviour(behaviour: RecordingUpstreamOptions['behaviour']): void;
  /** Resolves with the first n requests once all of them have settled; rejects after timeoutMs (default 5000). */
  waitForRequests(n: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  /** Forget recorded requests (connections are kept). */
  clear(): void;
  /** Destroys every open connection (hanging ones included) and closes the server. */
  stop(): Promise<void>;
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function startRecordingUpstream(opts: RecordingUpstreamOptions = {}): Promise<RecordingUpstream> {
  const keepBodiesUpTo = opts.keepBodiesUpTo ?? 8 * 1024 * 1024;
  let behaviour = opts.behaviour;
  const requests: RecordedRequest[] = [];
  const clientErrors: RecordingUpstream['clientErrors'] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const waiters = new Set<() => void>();
  const notify = (): void => {
    for (const waiter of [...waiters]) waiter();
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const rawHeaders: Array<[string, string]> = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) rawHeaders.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
    let settle!: () => void;
    const record: RecordedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      httpVersion: req.httpVersion,
      rawHeaders,
      headers: req.headers,
      body: Buffer.alloc(0),
      bodyLength: 0,
      sha256: null,
      complete: false,
      aborted: false,
      startedAt: Date.now(),
      settledAt: null,
      settled: new Promise<void>((resolve) => (settle = resolve)),
    };
    requests.push(record);
    const chosen = (typeof behaviour === 'function' ? behaviour(record) : behaviour) ?? {};
    const mode = chosen.mode ?? 'respond';

    const hash: Hash = createHash('sha256');
    let chunks: Buffer[] | null = [];
    const finish = (complete: boolean): void => {
      if (record.settledAt !== null) return;
      record.complete = complete;
      record.aborted = !complete;
      record.body = chunks === null ? null : Buffer.concat(chunks);
      record.sha256 = hash.digest('hex');
      record.settledAt = Date.now();
      settle();
      notify();
    };
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      record.bodyLength += chunk.length;
      if (chunks !== null) {
        if (record.bodyLength <= keepBodiesUpTo) chunks.push(chunk);
        else chunks = null;
      }
    });
    req.on('end', () => finish(true));
    req.on('error', () => finish(false));
    req.on('close', () => finish(req.complete));

    const answer = (): void => {
      if (res.destroyed || res.headersSent) return;
      const body = chosen.body ?? JSON.stringify({ ok: true, received: record.bodyLength });
      const headers = chosen.body === undefined ? { 'content-type': 'application/json', ...chosen.headers } : { ...chosen.headers };
      res.writeHead(chosen.status ?? 200, headers);
      res.end(body);
    };

    if (mode === 'destroy-immediately') {
      req.socket.destroy();
      return;
    }
    if (mode === 'early') answer();
    // Notified at the first listed settlement: either the body ended, or the request died.
    void record.settled.then(async () => {
      if (!record.complete || mode === 'hang' || mode === 'early') return;
      if (chosen.delayMs) await delay(chosen.delayMs);
      if (mode === 'destroy') req.socket.destroy();
      else answer();
    });
    notify();
  });
  // No server-side timeouts: tests decide how long things take (1 GiB uploads, hanging upstreams).
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.keepAliveTimeout = 5_000;
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    clientErrors.push({ code: err.code ?? 'UNKNOWN', message: err.message });
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
    notify();
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    get connections() {
      return connections;
    },
    clientErrors,
    setBehaviour(next) {
      behaviour = next;
    },
    waitForRequests(n: number, timeoutMs = 5000): Promise<RecordedRequest[]> {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const first = requests.slice(0, n);
          if (first.length === n && first.every((r) => r.settledAt !== null)) {
            done();
            resolve(first);
          }
        };
        const timer = setTimeout(() => {
          done();
          const state = requests.map((r) => `${r.method} ${r.url} ${r.settledAt === null ? 'in progress' : r.complete ? 'complete' : 'aborted'} (${r.bodyLength} bytes)`);
          reject(new Error(`recording upstream: wanted ${n} settled request(s) within ${timeoutMs} ms, have ${requests.length}: ${JSON.stringify(state)}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    clear() {
      requests.length = 0;
    },
    stop(): Promise<void> {
      return new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      });
    },
  };
}
