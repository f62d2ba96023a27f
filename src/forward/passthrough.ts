// Everything that is not a guarded upload goes through http-proxy-3 untouched, WebSocket
// upgrades included (ecosystem.md §1: always attach an error listener, tie stalled upgrades to
// the client socket so neither side is left half-open).

import { Agent as HttpAgent, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import { createProxyServer } from 'http-proxy-3';
import { GuardError } from '../errors.js';

export type PassthroughErrorHandler = (err: GuardError, req: IncomingMessage, res: ServerResponse) => void;

export class Passthrough {
  private readonly proxy: ReturnType<typeof createProxyServer>;
  private readonly agent: HttpAgent;

  constructor(target: URL, timeoutMs: number, onError: PassthroughErrorHandler) {
    // Without an agent http-proxy-3 opens a new upstream connection per request (agent: false,
    // Connection: close): a TCP handshake per GET and a pile of TIME_WAIT sockets.
    const options = { keepAlive: true, maxFreeSockets: 64 };
    this.agent = target.protocol === 'https:' ? new HttpsAgent(options) : new HttpAgent(options);
    this.proxy = createProxyServer({ target: target.origin, xfwd: true, ws: true, proxyTimeout: timeoutMs, agent: this.agent });
    this.proxy.on('error', (err: unknown, req: IncomingMessage, resOrSocket: ServerResponse | Socket) => {
      if ('writeHead' in resOrSocket) {
        const message = err instanceof Error ? err.message : '';
        const code = /timeout|timed out/i.test(message) ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_UNAVAILABLE';
        onError(new GuardError(code), req, resOrSocket);
      } else {
        resOrSocket.destroy();
      }
    });
    this.proxy.on('proxyReqWs', (proxyReq, _req, socket) => socket.once('close', () => proxyReq.destroy()));
  }

  web(req: IncomingMessage, res: ServerResponse): void {
    this.proxy.web(req, res);
  }

  upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.once('end', () => socket.destroy());
    this.proxy.ws(req, socket, head);
  }

  close(): void {
    this.proxy.close();
    this.agent.destroy();
  }
}
