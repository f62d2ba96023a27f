// Sends a SPEC rejection. While the client may still be sending, the answer carries
// Connection: close and the socket closes lingeringly, as nginx does: the write side is shut
// after the response, what still arrives is read and dropped for a bounded time and byte count,
// then the socket is destroyed. Closing at once would reset the connection and clients such as
// curl would report the reset instead of the error.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { type GuardError, rejectionBody } from '../errors.js';

const LINGER_TOTAL_MS = 5_000;
const LINGER_IDLE_MS = 1_000;
const LINGER_MAX_BYTES = 16 * 1024 * 1024;

export function sendRejection(req: IncomingMessage, res: ServerResponse, err: GuardError, requestId: string, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = rejectionBody(err, requestId);
  const bodyStillComing = !req.complete;
  if (bodyStillComing) lingerAfterResponse(req.socket);
  res.writeHead(err.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': requestId,
    ...(bodyStillComing ? { connection: 'close' } : {}),
    ...extraHeaders,
  });
  res.end(body);
}

/**
 * Sockets answered with Connection: close. Node's parser keeps reading while the answer goes out
 * and emits requests pipelined behind the refused one; those must be dropped, never handled.
 */
const closingSockets = new WeakSet<Socket>();

export function isClosing(socket: Socket): boolean {
  return closingSockets.has(socket);
}

/** Replaces Node's "destroy right after the response" with a bounded lingering close. */
function lingerAfterResponse(socket: Socket): void {
  closingSockets.add(socket);
  const patched = socket as Socket & { destroySoon: () => void };
  patched.destroySoon = () => {
    socket.end();
    let dropped = 0;
    const stop = (): void => {
      clearTimeout(total);
      socket.destroy();
    };
    const total = setTimeout(stop, LINGER_TOTAL_MS);
    let idle = setTimeout(stop, LINGER_IDLE_MS);
    socket.on('data', (chunk: Buffer) => {
      dropped += chunk.length;
      clearTimeout(idle);
      idle = setTimeout(stop, LINGER_IDLE_MS);
      if (dropped > LINGER_MAX_BYTES) stop();
    });
    socket.once('end', stop);
    socket.once('close', () => {
      clearTimeout(total);
      clearTimeout(idle);
    });
    socket.resume();
  };
}
