// Admission benchmark (issue "Admission control"): what the rate-limit path costs, and what the
// guard's memory does under a flood of distinct client IPs.
//
// One guard process, in-memory store at its default bound (maxTrackedClients 100,000), behind a
// "trusted proxy" (this script, via X-Forwarded-For) so every request can claim its own client.
// 1. Cost: the same requests through a route with rateLimit and one without, side by side:
//    a) head-only refusals (415 after admission: measures admission alone),
//    b) small valid uploads to a sink (the path users run).
// 2. Flood: BENCH_FLOOD_IPS (default 1,000,000) requests from distinct IPv4 clients; the guard's
//    RSS is sampled before, during and after.
//
// Run: npm run build && node bench/admission-bench.mjs   (env BENCH_N, BENCH_FLOOD_IPS, BENCH_CONCURRENCY)

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { HEAP_FLAGS } from '../dist/lifecycle/heap-flags.js';

const N = Number(process.env.BENCH_N ?? 20_000);
const FLOOD_IPS = Number(process.env.BENCH_FLOOD_IPS ?? 1_000_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const CLI = new URL('../dist/cli.js', import.meta.url).pathname;

function rssMiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024;
}

/** The upstream: reads and discards, answers a small JSON. In this process: it is not measured. */
async function startSink() {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('{"ok":true}'));
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

async function startGuard(sinkPort, dir) {
  const config = join(dir, 'guard.yaml');
  writeFileSync(
    config,
    `listen: 127.0.0.1:0
admin: false
upstream: { url: "http://127.0.0.1:${sinkPort}" }
trustProxy: [127.0.0.1/32]
routes:
  - { name: limited, path: /limited, methods: [POST], policy: limited }
  - { name: open, path: /open, methods: [POST], policy: open }
policies:
  limited: { allow: [png], rateLimit: { rate: 1000/s, burst: 1000000 } }
  open: { allow: [png] }
`,
  );
  // Log lines go to /dev/null: the bench measures the proxy, not the terminal.
  const child = spawn(process.execPath, [...HEAP_FLAGS, CLI, 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk) => {
      text += chunk;
      const match = /"msg":"listening".*?"listen":"[^"]*:(\d+)"/.exec(text);
      if (match) {
        child.stdout.off('data', onData);
        child.stdout.resume();
        resolve(Number(match[1]));
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => reject(new Error(`guard exited ${code}`)));
  });
  return { child, port };
}

function pngUpload() {
  const png = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex'), Buffer.alloc(1024)]);
  const boundary = 'benchboundary';
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`),
    png,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

/** Sends `count` requests with `concurrency` in flight; returns req/s, p50/p99 ms and statuses. */
async function drive(pool, count, concurrency, makeRequest) {
  const latencies = new Float64Array(count);
  const statuses = new Map();
  let next = 0;
  const started = performance.now();
  async function worker() {
    while (next < count) {
      const i = next++;
      const t0 = performance.now();
      const { statusCode, body } = await pool.request(makeRequest(i));
      await body.dump();
      latencies[i] = performance.now() - t0;
      statuses.set(statusCode, (statuses.get(statusCode) ?? 0) + 1);
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort();
  return {
    rps: count / seconds,
    p50: latencies[Math.floor(count * 0.5)],
    p99: latencies[Math.floor(count * 0.99)],
    statuses: Object.fromEntries(statuses),
  };
}

function ipOf(i) {
  // 10.0.0.0/8 gives 16M distinct clients
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

function headOnly(path) {
  return (i) => ({ path, method: 'POST', headers: { 'content-type': 'text/plain', 'content-length': '0', 'x-forwarded-for': ipOf(i) } });
}

function smallUpload(path, upload) {
  return (i) => ({ path, method: 'POST', headers: { 'content-type': upload.contentType, 'x-forwarded-for': ipOf(i % 50_000) }, body: upload.body });
}

function row(name, result, base) {
  const ratio = base ? (result.rps / base.rps).toFixed(2) : '1.00';
  return `${name.padEnd(36)} ${result.rps.toFixed(0).padStart(8)} req/s  x${ratio.padEnd(5)} p50 ${result.p50.toFixed(2).padStart(6)} ms  p99 ${result.p99.toFixed(2).padStart(7)} ms  ${JSON.stringify(result.statuses)}`;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'admission-bench-'));
  const sink = await startSink();
  const guard = await startGuard(sink.address().port, dir);
  const pool = new Pool(`http://127.0.0.1:${guard.port}`, { connections: CONCURRENCY, pipelining: 1 });
  try {
    console.log(`admission bench: node ${process.version}, ${N} requests per row, concurrency ${CONCURRENCY}`);
    const idle = rssMiB(guard.child.pid);
    // warm-up so the JIT and the pools are in the same state for every row
    await drive(pool, 2000, CONCURRENCY, headOnly('/open'));
    await drive(pool, 2000, CONCURRENCY, headOnly('/limited'));
    const upload = pngUpload();
    const headOpen = await drive(pool, N, CONCURRENCY, headOnly('/open'));
    const headLimited = await drive(pool, N, CONCURRENCY, headOnly('/limited'));
    const uploadOpen = await drive(pool, N, CONCURRENCY, smallUpload('/open', upload));
    const uploadLimited = await drive(pool, N, CONCURRENCY, smallUpload('/limited', upload));
    console.log('\n1. cost of the rate-limit path (same guard, same run)');
    console.log(row('415 refusal, no rateLimit', headOpen));
    console.log(row('415 refusal, rateLimit (take first)', headLimited, headOpen));
    console.log(row('1 KiB PNG upload, no rateLimit', uploadOpen));
    console.log(row('1 KiB PNG upload, rateLimit', uploadLimited, uploadOpen));

    console.log(`\n2. flood of ${FLOOD_IPS.toLocaleString('en')} distinct client IPs (memory store, default bound 100,000)`);
    console.log(`guard RSS idle (before any request): ${idle.toFixed(1)} MiB`);
    const before = rssMiB(guard.child.pid);
    console.log(`guard RSS before the flood:          ${before.toFixed(1)} MiB`);
    const step = Math.min(FLOOD_IPS, 250_000);
    let peak = before;
    for (let done = 0; done < FLOOD_IPS; done += step) {
      const offset = 1_000_000 + done; // distinct from every IP used above (those are < 1,000,000)
      const result = await drive(pool, Math.min(step, FLOOD_IPS - done), CONCURRENCY, (i) => headOnly('/limited')(offset + i));
      const rss = rssMiB(guard.child.pid);
      peak = Math.max(peak, rss);
      console.log(`  after ${(done + step).toLocaleString('en').padStart(9)} IPs: RSS ${rss.toFixed(1)} MiB, ${result.rps.toFixed(0)} req/s`);
    }
    console.log(`guard RSS after the flood: ${rssMiB(guard.child.pid).toFixed(1)} MiB (peak ${peak.toFixed(1)}, +${(peak - before).toFixed(1)} over before)`);
  } finally {
    await pool.close();
    guard.child.kill('SIGKILL');
    sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
