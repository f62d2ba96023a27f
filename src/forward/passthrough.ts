// Everything that is not a guarded upload passes through untouched. Plain requests go through an
// undici pool of their own (no connection limit, as a node:http Agent: slow downloads must not
// queue uploads) with a dispatch handler that writes the answer straight to the client
// (upstream-exchange.ts). WebSocket upgrades go through http-proxy-3 (ecosystem.md §1: always
// attach an error listener, tie stalled upgrades to the client socket so neither side is left
// half-open). Both carry the X-Forwarded-* of forwarded-headers.ts, like uploads.
//
// Why not http-proxy-3 for plain requests too: its node:http client cost the guard 0.28-0.35 ms
// of CPU per small GET against 0.14-0.18 ms this way (GETs at 64 connections, /proc ticks, the two
// builds alternating), and GETs are most of the traffic in front of an upload service.

import { Agent as HttpAgent, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { createProxyServer } from 'http-proxy-3';
import type { Pool } from 'undici';
import { GuardError } from '../errors.js';
import { clientResponseHeaders, isSetByGuard, passthroughRequestHeaders } from './hop-by-hop.js';
import { upstreamFailure, upstreamPool } from './upstream.js';
import { UpstreamExchange } from './upstream-exchange.js';

export type PassthroughErrorHandler = (err: GuardError, req: IncomingMessage, res: ServerResponse) => void;

export class Passthrough {
  private readonly pool: Pool;
  private readonly onError: PassthroughErrorHandler;
  private readonly proxy: ReturnType<typeof createProxyServer>;
  private readonly agent: HttpAgent;

  constructor(target: URL, timeoutMs: number, onError: PassthroughErrorHandler) {
    this.pool = upstreamPool(target, timeoutMs, null);
    this.onError = onError;
    // Without an agent http-proxy-3 opens a new upstream connection per upgrade (agent: false).
    const options = { keepAlive: true, maxFreeSockets: 64 };
    this.agent = target.protocol === 'https:' ? new HttpsAgent(options) : new HttpAgent(options);
    this.proxy = createProxyServer({ target: target.origin, xfwd: false, ws: true, proxyTimeout: timeoutMs, agent: this.agent });
    this.proxy.on('error', (_err: unknown, _req: IncomingMessage, socket: ServerResponse | Socket) => socket.destroy());
    this.proxy.on('proxyReqWs', (proxyReq, _req, socket) => socket.once('close', () => proxyReq.destroy()));
  }

  /**
   * Forwards `req` with its own body and relays the answer. `extraHeaders` (X-Forwarded-*,
   * X-Request-Id) replace whatever the client sent under those names. `body` is the request body
   * when something else reads `req` too (reportOnly): undici starts reading only once it has a
   * connection, so it needs a copy that waits for it.
   */
  web(req: IncomingMessage, res: ServerResponse, extraHeaders: Record<string, string>, body: Readable = req): void {
    const headers = passthroughRequestHeaders(req.rawHeaders);
    Object.assign(headers, extraHeaders);
    // the upstream sees the Host the client asked for, as with a transparent proxy
    if (req.headers.host !== undefined) headers.host = req.headers.host;
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    const exchange = new UpstreamExchange();
    exchange.abortWhenClosed(res);
    exchange.send(this.pool, { method: req.method ?? 'GET', path: req.url ?? '/', headers, body: hasBody ? body : null });
    exchange.answer.then(
      (answer) => {
        if (res.destroyed) return;
        try {
          res.writeHead(answer.statusCode, answer.statusMessage, clientResponseHeaders(answer.headers));
        } catch {
          // a header node:http will not write (it validates what undici parsed more leniently)
          exchange.abort(new Error('unwritable answer head'));
          this.onError(new GuardError('UPSTREAM_UNAVAILABLE'), req, res);
          return;
        }
        exchange.relay(res);
      },
      (err: unknown) => {
        if (!res.destroyed && !res.headersSent) this.onError(upstreamFailure(err), req, res);
      },
    );
  }

  /** A WebSocket (or other) upgrade; `extraHeaders` as for web(). */
  upgrade(req: IncomingMessage, socket: Socket, head: Buffer, extraHeaders: Record<string, string>): void {
    // http-proxy-3 sends req.headers: the client's X-Forwarded-* and X-Request-Id give way to ours
    for (const name of Object.keys(req.headers)) if (isSetByGuard(name)) delete req.headers[name];
    Object.assign(req.headers, extraHeaders);
    socket.once('end', () => socket.destroy());
    this.proxy.ws(req, socket, head);
  }

  async close(): Promise<void> {
    this.proxy.close();
    this.agent.destroy();
    await this.pool.close();
  }
}
