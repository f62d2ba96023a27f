// A raw-socket uploader for refused uploads: it can tell *when* the guard answered relative to what
// the client had sent, which node:http cannot (it hides when the head went out, and stops writing
// the body once a response arrives).
//
// It writes the request head, the fields and the file part's header in one write, notes the time,
// then keeps streaming the file's bytes (with backpressure) while reading the response. The figure
// is the time from that first write to the first bytes of the status line.

import { connect } from 'node:net';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { CONTENT_TYPE } from './multipart.mjs';

/**
 * Sends `body` (from multipartBody: prefix + afterPrefix()) to POST 127.0.0.1:port/path.
 * Resolves {
 *   status, code        the answer's status and JSON `code` (or its first bytes);
 *   msToStatus          file part header written -> status line received;
 *   msFromContent       first bytes of the file's content written -> status line received;
 *   headFlushed         the head went to the kernel synchronously (else msToStatus is an upper bound);
 *   sentBeforeStatus    body bytes the client had written when the status arrived;
 *   sent, contentLength body bytes written in all, and how many there were to write;
 *   error               a socket error before the answer was complete (null if none)
 * }.
 */
export function timedRefusal(port, body, { path = '/upload', timeoutMs = 30_000 } = {}) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.setNoDelay(true); // no Nagle delay between our writes and the wire
    const state = { headAt: null, contentAt: null, statusAt: null, headFlushed: false, sent: 0, sentBeforeStatus: null, error: null };
    const response = { chunks: [], length: 0, done: false };
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(report(state, response, body.contentLength));
    };
    const timer = setTimeout(() => {
      state.error ??= `no complete answer within ${timeoutMs} ms`;
      finish();
    }, timeoutMs);

    socket.on('data', (chunk) => {
      if (state.statusAt === null) {
        state.statusAt = performance.now();
        state.sentBeforeStatus = state.sent;
      }
      response.chunks.push(chunk);
      response.length += chunk.length;
      if (responseComplete(response)) finish();
    });
    // EPIPE/ECONNRESET after the answer is the guard closing a refused connection: expected.
    socket.on('error', (err) => {
      if (state.statusAt === null) state.error ??= err.message;
    });
    socket.on('close', finish);
    socket.once('connect', () => {
      void stream(socket, body, port, path, state, () => finished).catch((err) => {
        state.error ??= err.message;
        finish();
      });
    });
  });
}

/** Head + prefix in one write, then the rest of the body until it is all out or the socket is done. */
async function stream(socket, body, port, path, state, stopped) {
  const head = Buffer.from(
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: ${CONTENT_TYPE}\r\nContent-Length: ${body.contentLength}\r\nConnection: close\r\n\r\n`,
  );
  socket.write(Buffer.concat([head, body.prefix]));
  // writableLength 0: libuv wrote it all to the kernel inside write(), so "now" is when it left.
  state.headAt = performance.now();
  state.headFlushed = socket.writableLength === 0;
  state.sent = body.prefix.length;
  for (const chunk of body.afterPrefix()) {
    if (stopped() || socket.destroyed || !socket.writable) return;
    const flushedAll = socket.write(chunk);
    state.contentAt ??= performance.now();
    state.sent += chunk.length;
    // Wait for room, or at least let the loop run: the response's 'data' must be timed when it
    // arrives, not after a long run of writes that the kernel happened to absorb.
    if (!flushedAll) await drainedOrClosed(socket);
    else await yieldToLoop();
  }
}

function drainedOrClosed(socket) {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/** True once the head and Content-Length bytes of body have arrived. */
function responseComplete(response) {
  const text = Buffer.concat(response.chunks).toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end));
  return length !== null && text.length - end - 4 >= Number(length[1]);
}

function report(state, response, contentLength) {
  const text = Buffer.concat(response.chunks).toString('utf8');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  const bodyText = text.slice(text.indexOf('\r\n\r\n') + 4);
  let code = bodyText.slice(0, 60);
  try {
    code = JSON.parse(bodyText).code ?? code;
  } catch {
    // not JSON: keep the first bytes
  }
  const since = (t) => (t !== null && state.statusAt !== null ? state.statusAt - t : null);
  return {
    status: status ? Number(status[1]) : null,
    code: status ? code : null,
    msToStatus: since(state.headAt),
    msFromContent: since(state.contentAt),
    headFlushed: state.headFlushed,
    sentBeforeStatus: state.sentBeforeStatus,
    sent: state.sent,
    contentLength,
    error: status ? null : (state.error ?? 'no answer'),
  };
}
