// Requests Node's HTTP parser refuses before the guard sees them: malformed request lines,
// smuggling shapes (Transfer-Encoding with Content-Length, conflicting lengths, a bad chunked
// framing, obsolete line folding), heads over headerLimits.maxSize, heads or whole requests that
// took too long. Node's default answer is a bare text/plain 400; the guard answers SPEC JSON like
// every other refusal, then closes the connection. Nothing of such a request is ever forwarded.

import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { type ErrorCode, GuardError, rejectionBody } from '../errors.js';

/** The SPEC code for a parser error (err.code from llhttp / Node), or null: just drop the socket. */
export function clientErrorCode(code: string | undefined): ErrorCode | null {
  if (code === undefined || code === 'ECONNRESET' || code === 'EPIPE') return null;
  if (code === 'HPE_HEADER_OVERFLOW') return 'HEADERS_TOO_LARGE';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT') return 'REQUEST_TIMEOUT';
  return 'MALFORMED_REQUEST';
}

/** Answers on the raw socket (no request object exists) and closes it. Returns the code sent, or null. */
export function answerClientError(err: Error & { code?: string }, socket: Socket): ErrorCode | null {
  const code = clientErrorCode(err.code);
  // A response already on the wire (e.g. a request timeout mid-upload) cannot be replaced.
  const busy = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  if (code === null || !socket.writable || busy) {
    socket.destroy();
    return null;
  }
  const error = new GuardError(code);
  const body = rejectionBody(error, randomUUID());
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  // end() flushes the answer; a client that never reads must not keep the socket forever
  setTimeout(() => socket.destroy(), 1000).unref();
  return code;
}
