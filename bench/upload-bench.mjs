#!/usr/bin/env node
// upload-guard benchmark (`npm run bench`; bench/README.md says how to read it).
//
// On loopback, one target at a time, against a sink upstream in its own process:
//   A. one big PNG upload (BENCH_BIG_MIB, default 1024 MiB): MB/s, idle and peak RSS of the proxy
//   B. many 16 KiB PNG uploads (BENCH_SMALL_N, default 2000; BENCH_CONCURRENCY, default 16): req/s, p50/p99
//   C. refused uploads through the guard: what reached the upstream (must be nothing)
// Targets: direct to the sink, a plain undici pipe, nginx (if installed), guard spool, guard stream.
// It is a benchmark, not a test: failed bars are printed loudly, the exit code is 0 unless something
// crashed (a target died or the bench itself threw).

import { Agent } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { percentile, runConcurrent, upload } from './lib/client.mjs';
import { MIN_PNG_SIZE, inMemory, multipartBody } from './lib/multipart.mjs';
import { cpuSeconds, crashReport, killAllNow, rssBytes, sampleRss, stopAll, stopChild } from './lib/processes.mjs';
import { NGINX, PROJECT, startGuard, startNginx, startPlainPipe, startSink } from './lib/targets.mjs';

const MiB = 1024 * 1024;

function envInt(name, fallback) {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

const BIG_MIB = envInt('BENCH_BIG_MIB', 1024);
const SMALL_N = envInt('BENCH_SMALL_N', 2000);
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 16);
const SMALL_BYTES = 16 * 1024;
const REFUSED_BYTES = 1 * MiB;
const RSS_BAR = 64 * MiB;
const BIG_LABEL = BIG_MIB % 1024 === 0 ? `${BIG_MIB / 1024}GiB` : `${BIG_MIB}MiB`;

// ---- bodies ---------------------------------------------------------------------------------------

const BIG_BODY = multipartBody({ fields: { note: 'upload-bench' }, filename: 'big.png', content: 'png', size: BIG_MIB * MiB });
const SMALL_BODY = inMemory(multipartBody({ fields: { note: 'upload-bench' }, filename: 'small.png', content: 'png', size: Math.max(SMALL_BYTES, MIN_PNG_SIZE) }));

/** Scenario C: `bar` cases must leave the upstream untouched; the other one is informational. */
const REFUSED_CASES = [
  { name: 'shell.php', expect: 'EXTENSION_NOT_ALLOWED', bar: true, body: inMemory(multipartBody({ filename: 'shell.php', content: 'php', size: REFUSED_BYTES })) },
  { name: 'fake.png (text)', expect: 'CONTENT_MISMATCH', bar: true, body: inMemory(multipartBody({ filename: 'fake.png', content: 'text', size: REFUSED_BYTES })) },
  {
    // A field before the bad file: stream mode may already have opened the upstream request for the
    // field (SPEC allows it, as long as the request is aborted and never completes).
    name: 'field + fake.png',
    expect: 'CONTENT_MISMATCH',
    bar: false,
    body: inMemory(multipartBody({ fields: { note: 'upload-bench' }, filename: 'fake.png', content: 'text', size: REFUSED_BYTES })),
  },
];

// ---- targets --------------------------------------------------------------------------------------

const TARGETS = [
  { name: 'direct', start: (ctx) => ({ port: ctx.sink.port, child: null }) },
  { name: 'plain pipe', start: (ctx) => startPlainPipe(ctx.sink.port) },
  { name: 'nginx', available: () => existsSync(NGINX), start: (ctx) => startNginx(ctx.sink.port, ctx.tmp) },
  { name: 'guard spool', guard: true, start: (ctx) => startGuard('spool', ctx.sink.port, ctx.tmp) },
  { name: 'guard stream', guard: true, start: (ctx) => startGuard('stream', ctx.sink.port, ctx.tmp) },
].filter((t) => !process.env.BENCH_TARGETS || process.env.BENCH_TARGETS.split(',').includes(t.name));

// ---- scenarios ------------------------------------------------------------------------------------

/** A few uploads first so lazy set-up (JIT, upstream pool sockets) is not billed to the measurement. */
async function warmUp(port) {
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  const results = await runConcurrent(40, 4, () => upload(port, SMALL_BODY, { agent, timeoutMs: 30_000 }));
  agent.destroy();
  const bad = results.find((r) => r.error || r.status !== 200);
  if (bad) throw new Error(`warm-up upload failed: ${bad.error?.message ?? `${bad.status} ${bad.body}`}`);
}

/** Scenario A: one big upload, RSS sampled every 50 ms, CPU from /proc before and after. */
async function bigUpload(port, pid, sink) {
  await sink.reset();
  const idleRss = pid ? rssBytes(pid) : null;
  const cpuBefore = pid ? cpuSeconds(pid) : null;
  const sampler = pid ? sampleRss(pid) : null;
  const started = performance.now();
  let answer;
  let rss;
  try {
    answer = await upload(port, BIG_BODY, { timeoutMs: 15 * 60_000 });
  } finally {
    rss = sampler?.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  const stats = await sink.stats();
  return {
    status: answer.status,
    answer: answer.status === 200 ? undefined : answer.body.slice(0, 200),
    seconds,
    mbps: BIG_BODY.contentLength / 1e6 / seconds,
    sentBytes: BIG_BODY.contentLength,
    sink: { started: stats.started, completed: stats.completed, bytes: stats.bytes, framing: stats.last?.framing ?? null },
    idleRss,
    peakRss: rss?.peak ?? null,
    rssSamples: rss?.samples ?? 0,
    cpu: pid ? cpuSeconds(pid) - cpuBefore : null,
  };
}

/** Scenario B: SMALL_N uploads, CONCURRENCY at a time over keep-alive sockets. */
async function smallUploads(port, sink) {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  // open the pool's sockets before the clock starts
  await runConcurrent(CONCURRENCY * 2, CONCURRENCY, () => upload(port, SMALL_BODY, { agent }));
  await sink.reset();
  const started = performance.now();
  const results = await runConcurrent(SMALL_N, CONCURRENCY, () => upload(port, SMALL_BODY, { agent, timeoutMs: 30_000 }));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  await sleep(100); // let the sink count the last bodies' 'end'
  const stats = await sink.stats();
  const ok = results.filter((r) => !r.error && r.status === 200);
  const failed = results.filter((r) => r.error || r.status !== 200);
  const latencies = ok.map((r) => r.ms).sort((a, b) => a - b);
  return {
    ok: ok.length,
    failures: failed.length,
    firstFailure: failed.length ? (failed[0].error?.message ?? `${failed[0].status} ${failed[0].body.slice(0, 200)}`) : undefined,
    rps: ok.length / seconds,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    sink: { started: stats.started, completed: stats.completed, framing: stats.framing },
  };
}

/** Scenario C: each refused case on a fresh connection; the sink's counters say what leaked. */
async function refusedUploads(port, sink) {
  const out = [];
  for (const c of REFUSED_CASES) {
    await sink.reset();
    let status = null;
    let code = null;
    try {
      const answer = await upload(port, c.body, { timeoutMs: 30_000 });
      status = answer.status;
      code = safeJson(answer.body)?.code ?? answer.body.slice(0, 60);
    } catch (err) {
      code = `client error: ${err.message}`;
    }
    await sleep(500); // a leak would arrive after the client got its answer
    const stats = await sink.stats();
    out.push({ case: c.name, bar: c.bar, expect: c.expect, status, code, sink: { started: stats.started, completed: stats.completed, bytes: stats.bytes } });
  }
  return out;
}

function safeJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Starts a target, runs every scenario against it, stops it: one proxy at a time on the CPUs. */
async function measureTarget(target, ctx) {
  const row = { name: target.name, guard: Boolean(target.guard) };
  if (target.available && !target.available()) return { ...row, missing: 'not installed' };
  let child = null;
  try {
    const started = await target.start(ctx);
    child = started.child;
    row.pid = child?.pid ?? null;
    await warmUp(started.port);
    await sleep(500); // let the warm-up's garbage settle before "idle" is read
    log(`  ${target.name}: ${BIG_LABEL} upload...`);
    row.big = await bigUpload(started.port, child?.pid, ctx.sink);
    log(`  ${target.name}: ${SMALL_N} x 16KiB uploads...`);
    row.small = await smallUploads(started.port, ctx.sink);
    if (target.guard) {
      log(`  ${target.name}: refused uploads...`);
      row.refused = await refusedUploads(started.port, ctx.sink);
    }
  } catch (err) {
    // A dead proxy shows up first as a client ECONNRESET; give its exit a moment to be seen so
    // the report says "crashed" with its last output rather than just the reset.
    if (child) await Promise.race([child.exited, sleep(1_000)]);
    row.error = (child && crashReport(child)) ?? err.stack ?? String(err);
  } finally {
    if (child) {
      const crash = crashReport(child);
      if (crash && !row.error) row.error = crash;
      await stopChild(child);
      if (child.stderr.length > 0) row.stderr = child.stderr;
    }
  }
  return row;
}

// ---- report ---------------------------------------------------------------------------------------

const mib = (bytes) => (bytes === null || bytes === undefined ? '-' : (bytes / MiB).toFixed(1));
const fixed = (n, digits) => (n === null || n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits));
const ratio = (n, base) => (n && base ? `${(n / base).toFixed(2)}x` : '-');

function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join(' | ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-+-'), ...rows.map(line)].join('\n');
}

function mainTable(rows) {
  const direct = rows.find((r) => r.name === 'direct');
  const header = ['target', `${BIG_LABEL} MB/s`, 'ratio vs direct', 'idle RSS MiB', 'peak RSS MiB', 'peak-idle', '16KiB req/s', 'p99 ms', 'ratio vs direct'];
  return table(
    header,
    rows.map((r) => {
      if (r.missing) return [r.name, r.missing, '', '', '', '', '', '', ''];
      if (!r.big && !r.small) return [r.name, 'ERROR (see below)', '', '', '', '', '', '', ''];
      const b = r.big ?? {};
      const s = r.small ?? {};
      const grew = b.peakRss && b.idleRss ? b.peakRss - b.idleRss : null;
      return [r.name, fixed(b.mbps, 1), ratio(b.mbps, direct?.big?.mbps), mib(b.idleRss), mib(b.peakRss), mib(grew), fixed(s.rps, 0), fixed(s.p99, 1), ratio(s.rps, direct?.small?.rps)];
    }),
  );
}

function detailTable(rows) {
  const header = [
    'target', `${BIG_LABEL} status`, 'sent MiB', 'sink MiB', 'sink framing', 'proxy CPU s', 'RSS samples', '16KiB ok', 'p50 ms', 'sink got', 'sink framing (16KiB)',
  ];
  const framing = (f) => Object.entries(f ?? {}).filter(([, n]) => n > 0).map(([k, n]) => `${k}:${n}`).join(' ') || '-';
  return table(
    header,
    rows.filter((r) => r.big || r.small).map((r) => {
      const b = r.big ?? {};
      const s = r.small ?? {};
      return [r.name, b.status ?? '-', mib(b.sentBytes), mib(b.sink?.bytes), b.sink?.framing ?? '-', fixed(b.cpu, 1), b.rssSamples || '-', `${s.ok ?? '-'}/${SMALL_N}`, fixed(s.p50, 1), s.sink?.completed ?? '-', framing(s.sink?.framing)];
    }),
  );
}

function refusedTable(rows) {
  const lines = [];
  for (const r of rows) for (const c of r.refused ?? []) lines.push([r.name, c.case, c.status ?? '-', c.code, c.sink.started, c.sink.bytes, c.sink.completed]);
  return table(['target', 'refused upload (1 MiB)', 'status', 'code', 'upstream requests started', 'upstream bytes', 'upstream completed'], lines);
}

/** pass: true, false, or null for SKIP (a target this run did not include, e.g. BENCH_TARGETS). */
function check(name, pass, detail) {
  return { name, pass, detail };
}

/** The bars of the issue, then sanity checks that the numbers above mean what they say. */
function checks(rows) {
  const by = (name) => rows.find((r) => r.name === name);
  const out = [];
  for (const name of ['guard spool', 'guard stream']) {
    const b = by(name)?.big;
    const grew = b?.peakRss && b?.idleRss ? b.peakRss - b.idleRss : null;
    const pass = by(name) ? grew !== null && grew < RSS_BAR : null;
    out.push(check(`${name}: peak RSS < idle + 64 MiB during the ${BIG_LABEL} upload`, pass, grew === null ? 'did not run' : `peak-idle = ${mib(grew)} MiB`));
  }
  const stream = by('guard stream')?.big?.mbps;
  const plain = by('plain pipe')?.big?.mbps;
  const compared = by('guard stream') && by('plain pipe') ? stream !== undefined && plain !== undefined && stream >= plain : null;
  out.push(check('guard stream MB/s >= plain pipe MB/s', compared, `${fixed(stream, 1)} vs ${fixed(plain, 1)} MB/s`));
  for (const r of rows.filter((row) => row.guard)) {
    for (const c of r.refused ?? []) {
      if (c.bar) out.push(check(`${r.name}: refused ${c.case} -> 0 bytes upstream`, c.sink.bytes === 0, `${c.sink.bytes} bytes, ${c.sink.started} upstream requests started`));
    }
    if (!r.refused) out.push(check(`${r.name}: refused uploads -> 0 bytes upstream`, false, 'did not run'));
  }
  out.push(...sanityChecks(rows));
  return out;
}

function sanityChecks(rows) {
  const out = [];
  for (const r of rows.filter((row) => !row.missing)) {
    const b = r.big;
    const bytesOk = b && b.sink.completed === 1 && Math.abs(b.sink.bytes - b.sentBytes) <= 4096;
    out.push(check(`(sanity) ${r.name}: ${BIG_LABEL} upload answered 200, sink got one request of ~the bytes sent`, Boolean(b && b.status === 200 && bytesOk), b ? `status ${b.status}, sink ${b.sink.completed} complete, ${b.sink.bytes} of ${b.sentBytes} bytes` : 'did not run'));
    const s = r.small;
    out.push(check(`(sanity) ${r.name}: all ${SMALL_N} small uploads answered 200 and reached the sink`, Boolean(s && s.failures === 0 && s.sink.completed === SMALL_N), s ? `${s.ok} ok, ${s.failures} failed${s.firstFailure ? ` (first: ${s.firstFailure})` : ''}, sink completed ${s.sink.completed}` : 'did not run'));
  }
  // SPEC "On the wire": spool forwards with an exact Content-Length, stream with chunked encoding.
  for (const [name, want] of [['guard spool', 'length'], ['guard stream', 'chunked']]) {
    const r = rows.find((row) => row.name === name);
    if (!r?.big || !r?.small) continue;
    const small = r.small.sink.framing;
    const allWant = small[want] === r.small.sink.started && r.big.sink.framing === want;
    out.push(check(`(SPEC) ${name}: upstream sees ${want === 'length' ? 'Content-Length' : 'chunked'} framing (big and 16 KiB bodies)`, allWant, `big: ${r.big.sink.framing}; 16KiB: ${JSON.stringify(small)}`));
  }
  for (const r of rows.filter((row) => row.guard && row.refused)) {
    for (const c of r.refused.filter((x) => !x.bar)) {
      out.push(check(`(SPEC) ${r.name}: ${c.case} -> no complete request upstream`, c.sink.completed === 0, `${c.sink.started} started, ${c.sink.bytes} bytes, ${c.sink.completed} completed`));
    }
    for (const c of r.refused) {
      out.push(check(`(sanity) ${r.name}: ${c.case} answered 400 ${c.expect}`, c.status === 400 && c.code === c.expect, `${c.status} ${c.code}`));
    }
  }
  return out;
}

function log(text) {
  process.stdout.write(`${text}\n`);
}

function printReport(rows, results) {
  log('');
  log(mainTable(rows));
  log('');
  log('details');
  log(detailTable(rows));
  if (rows.some((r) => r.refused)) {
    log('');
    log(refusedTable(rows));
  }
  for (const r of rows.filter((row) => row.stderr)) log(`\nstderr of ${r.name} (first lines):\n  ${r.stderr.join('\n  ')}`);
  for (const r of rows.filter((row) => row.error)) log(`\nERROR ${r.name}:\n${r.error}`);
  log('');
  log('checks');
  for (const c of results) log(`  ${c.pass === null ? 'SKIP' : c.pass ? 'PASS' : 'FAIL'}  ${c.name}  (${c.detail})`);
  const failed = results.filter((c) => c.pass === false);
  if (failed.length > 0) {
    log('');
    log('!'.repeat(78));
    log(`!!! ${failed.length} of ${results.length} checks FAILED:`);
    for (const c of failed) log(`!!!   ${c.name}  (${c.detail})`);
    log('!'.repeat(78));
  } else {
    log(`\nall ${results.filter((c) => c.pass).length} checks passed`);
  }
}

function saveResults(rows, results) {
  const dir = join(PROJECT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  const settings = { bigMiB: BIG_MIB, smallN: SMALL_N, concurrency: CONCURRENCY, node: process.version, cpus: cpus().length };
  writeFileSync(file, `${JSON.stringify({ settings, rows, checks: results }, null, 2)}\n`);
  return file;
}

// ---- main -----------------------------------------------------------------------------------------

async function main(ctx) {
  log(`upload-guard bench: node ${process.version}, ${cpus().length} CPUs, load average ${loadavg().map((n) => n.toFixed(2)).join(' ')}`);
  log(`A: one ${BIG_LABEL} PNG (${BIG_BODY.contentLength} bytes with framing)  B: ${SMALL_N} x 16 KiB PNG, concurrency ${CONCURRENCY}  C: refused 1 MiB uploads (guard)`);
  ctx.sink = await startSink();
  const rows = [];
  for (const target of TARGETS) {
    log(`${target.name}:`);
    rows.push(await measureTarget(target, ctx));
    const sinkCrash = crashReport(ctx.sink.child);
    if (sinkCrash) throw new Error(sinkCrash);
  }
  const results = checks(rows);
  printReport(rows, results);
  log(`\nresults saved to ${saveResults(rows, results)}`);
  log(`load average at the end: ${loadavg().map((n) => n.toFixed(2)).join(' ')}`);
  return rows.some((r) => r.error) ? 1 : 0;
}

const ctx = { tmp: mkdtempSync(join(tmpdir(), 'upload-guard-bench-')), sink: null };
const removeTmp = () => rmSync(ctx.tmp, { recursive: true, force: true });
// Last resort for paths that skip the finally below (uncaught errors, process.exit elsewhere).
process.on('exit', () => {
  killAllNow();
  removeTmp();
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    log(`\n${signal}: stopping children, removing ${ctx.tmp}`);
    void stopAll().finally(() => process.exit(130));
  });
}

try {
  process.exitCode = await main(ctx);
} catch (err) {
  log(`\nBENCH CRASHED: ${err.stack ?? err}`);
  process.exitCode = 1;
} finally {
  await stopAll();
  removeTmp();
}
