// The "plain pipe" baseline: a node:http server that forwards every request to the upstream with
// undici, body piped straight through, no parsing and no checks. It uses the same undici Pool
// settings as the guard's Upstream (src/forward/upstream.ts), so the difference between the two
// rows of the bench is what the guard's checks cost, not a different HTTP client. It runs with the
// guard's V8 settings too: the heap flags on its command line (lib/targets.mjs) and the ones the
// guard sets at start (applyRuntimeHeapFlags, src/lifecycle/heap-flags.ts).
//
//   node bench/plain-proxy.mjs PORT UPSTREAM_PORT

import { createServer } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Pool } from 'undici';
import { applyRuntimeHeapFlags } from '../dist/lifecycle/heap-flags.js';

applyRuntimeHeapFlags();

const port = Number(process.argv[2]);
const upstreamPort = Number(process.argv[3]);

const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, {
  connections: 64,
  pipelining: 1,
  keepAliveTimeout: 1_000,
  headersTimeout: 60_000,
  bodyTimeout: 60_000,
});

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'host']);

function forwardHeaders(headers) {
  const out = {};
  for (const [name, value] of Object.entries(headers)) if (!HOP_BY_HOP.has(name) && value !== undefined) out[name] = value;
  return out;
}

async function forward(req, res) {
  try {
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    const answer = await pool.request({
      method: req.method,
      path: req.url,
      headers: forwardHeaders(req.headers),
      body: hasBody ? req : null,
    });
    res.writeHead(answer.statusCode, forwardHeaders(answer.headers));
    await pipeline(answer.body, res);
  } catch {
    if (res.headersSent) res.destroy();
    else res.writeHead(502, { 'content-type': 'application/json' }).end('{"error":"upstream failed"}');
  }
}

createServer({ requestTimeout: 0 }, (req, res) => void forward(req, res)).listen(port, '127.0.0.1');
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
