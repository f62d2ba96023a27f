// The load generators: node:http uploads with an exact Content-Length, written with backpressure so
// the client never buffers more than the socket asks for (the big upload, warm-up), and an undici
// pool for the request-rate workloads.

import { request } from 'node:http';
import { Pool } from 'undici';
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

/**
 * The client of the request-rate workloads (16 KiB uploads, GETs): an undici Pool with one
 * keep-alive connection per concurrent request. It costs about half the CPU per request of
 * node:http's client, and on a 2-core machine the client's CPU is taken from the proxy's: with
 * node:http the fast targets (nginx, direct) were capped by the client and every ratio looked better
 * than it was. Each method resolves { status, body, bytes, ms }.
 */
export function loadClient(port, connections) {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections, pipelining: 1, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const timed = async (options) => {
    const started = performance.now();
    const answer = await pool.request(options);
    const body = Buffer.from(await answer.body.arrayBuffer());
    return { status: answer.statusCode, body: answer.statusCode === 200 ? '' : body.toString(), bytes: body.length, ms: performance.now() - started };
  };
  return {
    /** POSTs an inMemory() multipart body. */
    upload: (body, path = '/upload') =>
      timed({ method: 'POST', path, headers: { 'content-type': CONTENT_TYPE, 'content-length': String(body.contentLength) }, body: body.buffer }),
    get: (path) => timed({ method: 'GET', path }),
    close: () => pool.destroy(),
  };
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
