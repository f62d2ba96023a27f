// The bench's upstream: reads and discards every request body, counting what arrived, and answers
// 200 with a small JSON body (GET /static/...: a fixed 200-byte text body, the "small static file"
// of the pass-through workload). Started by upload-bench.mjs as its own process (so its CPU and memory
// never mix with the measured proxy's); the parent reads and resets the counters over IPC.
//
//   node bench/sink-server.mjs PORT

import { createServer } from 'node:http';

const port = Number(process.argv[2]);

function freshStats() {
  // connections: TCP connections opened to the sink, to tell a keep-alive proxy from one that
  // opens a connection per request
  return { connections: 0, started: 0, completed: 0, aborted: 0, bytes: 0, framing: { chunked: 0, length: 0, none: 0 }, last: null };
}
let stats = freshStats();

/** What a small static file answer looks like: 200 bytes, like a tiny CSS or icon. */
const STATIC_BODY = Buffer.alloc(200, 'upload-guard bench static body\n');

/** How the request body was framed on the wire: what a WSGI upstream would care about. */
function framingOf(req) {
  if (req.headers['transfer-encoding'] !== undefined) return 'chunked';
  if (req.headers['content-length'] !== undefined) return 'length';
  return 'none';
}

const server = createServer({ requestTimeout: 0, keepAliveTimeout: 5_000 }, (req, res) => {
  // A reset while this request runs must not move its bytes into the next phase's counters.
  const phase = stats;
  const record = { framing: framingOf(req), contentLength: req.headers['content-length'] ?? null, bytes: 0, complete: false };
  phase.started++;
  phase.framing[record.framing]++;
  req.on('data', (chunk) => {
    record.bytes += chunk.length;
    phase.bytes += chunk.length;
  });
  req.on('end', () => {
    record.complete = true;
    phase.completed++;
    phase.last = record;
    if (req.method === 'GET' && req.url.startsWith('/static/')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': STATIC_BODY.length });
      res.end(STATIC_BODY);
      return;
    }
    const body = JSON.stringify({ ok: true, bytes: record.bytes });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  req.on('close', () => {
    if (!record.complete) {
      phase.aborted++;
      phase.last = record;
    }
  });
});

server.on('connection', () => stats.connections++);

process.on('message', (message) => {
  if (message === 'reset') stats = freshStats();
  process.send({ stats });
});
// The parent went away (even by SIGKILL): do not outlive it.
process.on('disconnect', () => process.exit(0));

server.listen(port, '127.0.0.1');
