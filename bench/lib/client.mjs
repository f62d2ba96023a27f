// The load generator: node:http uploads with an exact Content-Length, written with backpressure so
// the client never buffers more than the socket asks for.

import { request } from 'node:http';
import { CONTENT_TYPE } from './multipart.mjs';

/** Resolves on 'drain', or on 'close' so a destroyed request never leaves the writer hanging. */
function drained(req) {
  return new Promise((resolve) => {
    const done = () => {
      req.off('drain', done);
      req.off('close', done);
      resolve();
    };
    req.on('drain', done);
    req.on('close', done);
  });
}

/** Writes the body until it is done or `stop()` says the server has already answered. */
async function writeBody(req, chunks, stop) {
  for (const chunk of chunks) {
    if (stop() || req.destroyed) return;
    if (!req.write(chunk)) await drained(req);
  }
  if (!req.destroyed) req.end();
}

/**
 * POSTs one multipart body to 127.0.0.1:port/path.
 * Resolves { status, body, ms } once the response has been read; an early answer (a rejection
 * sent while the body is still being written) counts as the answer, and the rest is not sent.
 */
export function upload(port, body, { path = '/upload', agent = false, timeoutMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let response = null;
    let settled = false;
    const req = request({
      host: '127.0.0.1',
      port,
      path,
      method: 'POST',
      agent,
      headers: { 'content-type': CONTENT_TYPE, 'content-length': String(body.contentLength) },
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const settle = (err, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(value);
    };
    req.on('response', (res) => {
      response = res;
      const parts = [];
      res.on('data', (chunk) => parts.push(chunk));
      res.on('end', () => {
        const answer = { status: res.statusCode, body: Buffer.concat(parts).toString(), ms: performance.now() - started };
        // An early answer leaves the request body unfinished: that socket must not be reused.
        if (!req.writableFinished) req.destroy();
        settle(null, answer);
      });
      res.on('error', settle);
    });
    // EPIPE/ECONNRESET after the server answered early is expected (lingering close ended).
    req.on('error', (err) => {
      if (response === null) settle(err);
    });
    writeBody(req, body.chunks(), () => response !== null).catch((err) => req.destroy(err));
  });
}

/** Runs `task(i)` for i in [0, n) with at most `concurrency` in flight; returns the results in order. */
export async function runConcurrent(n, concurrency, task) {
  const results = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      try {
        results[i] = await task(i);
      } catch (err) {
        results[i] = { error: err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return results;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}
