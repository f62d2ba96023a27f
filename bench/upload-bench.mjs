#!/usr/bin/env node
// upload-guard benchmark (`npm run bench`; bench/README.md says how to read it).
//
// On loopback, one target at a time, against a sink upstream in its own process, in this order
// (so the big upload's memory is measured on a process that has already served traffic):
//   B. many 16 KiB PNG uploads (BENCH_SMALL_N, default 2000; BENCH_CONCURRENCY, default 64): req/s, p50/p99
//   G. many small GETs on a non-upload path (BENCH_GET_N, default 20000; same concurrency): pass-through req/s
//   A. one big PNG upload (BENCH_BIG_MIB, default 1024 MiB): MB/s, idle and peak RSS of the proxy
//   C. refused uploads through the guard, 16 KiB and 64 MiB: what reached the upstream (must be
//      nothing), and how fast the refusal came (raw socket client, lib/raw-client.mjs)
// Every target is measured in BENCH_REPEAT rounds (default 3, interleaved: round 1 on every target,
// then round 2, ...), each on a fresh process; tables show the median.
// Targets: direct to the sink, a plain undici pipe, nginx (if installed), and the guard in spool and
// stream mode with one process and with `workers: 2`.
// It is a benchmark, not a test: failed bars are printed loudly, the exit code is 0 unless something
// crashed (a target died or the bench itself threw).

import { spawnSync } from 'node:child_process';
import { Agent } from 'node:http';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadClient, percentile, runConcurrent, upload } from './lib/client.mjs';
import { MIN_PNG_SIZE, inMemory, multipartBody } from './lib/multipart.mjs';
import { crashReport, killAllNow, killLeftovers, processTree, sampleRss, stopAll, stopChild, treeCpuSeconds, treeRss, treeRssAnon } from './lib/processes.mjs';
import { timedRefusal } from './lib/raw-client.mjs';
import { summarize } from './lib/stats.mjs';
import { HEAP_FLAGS, NGINX, PROJECT, startGuard, startNginx, startPlainPipe, startSink } from './lib/targets.mjs';

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
const GET_N = envInt('BENCH_GET_N', 20_000);
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 64);
const REPEAT = envInt('BENCH_REPEAT', 3);
const SMALL_BYTES = 16 * 1024;
const REFUSED_BIG_BYTES = 64 * MiB;
const GET_PATH = '/static/x';
const BIG_LABEL = BIG_MIB % 1024 === 0 ? `${BIG_MIB / 1024}GiB` : `${BIG_MIB}MiB`;

/** The performance issue's bars. */
const BARS = {
  mbpsVsDirect: { stream: 0.7, spool: 0.5 },
  peakRss: 100 * MiB, // absolute, per process, during the big upload
  rssGrowth: 64 * MiB, // peak minus idle (issue 2: memory bounded whatever the upload size)
  smallRpsVsNginx: 0.5,
  smallP99VsNginx: 2,
  getRpsVsNginx: 0.6,
  refusedMs: 50,
};

// ---- bodies ---------------------------------------------------------------------------------------

const BIG_BODY = multipartBody({ fields: { note: 'upload-bench' }, filename: 'big.png', content: 'png', size: BIG_MIB * MiB });
const SMALL_BODY = inMemory(multipartBody({ fields: { note: 'upload-bench' }, filename: 'small.png', content: 'png', size: Math.max(SMALL_BYTES, MIN_PNG_SIZE) }));

/**
 * Scenario C. `bar` cases must leave the upstream untouched and be answered within BARS.refusedMs
 * of the file part's header; the other one is informational. Bodies are generators (not inMemory):
 * the raw client needs them split at the file part's header.
 */
const REFUSED_CASES = [
  { name: 'shell.php', size: SMALL_BYTES, content: 'php', expect: 'EXTENSION_NOT_ALLOWED', bar: true },
  { name: 'fake.png (text)', filename: 'fake.png', size: SMALL_BYTES, content: 'text', expect: 'CONTENT_MISMATCH', bar: true },
  // A field before the bad file: stream mode may already have opened the upstream request for the
  // field (SPEC allows it, as long as the request is aborted and never completes).
  { name: 'field + fake.png', filename: 'fake.png', size: SMALL_BYTES, content: 'text', fields: { note: 'upload-bench' }, expect: 'CONTENT_MISMATCH', bar: false },
  { name: 'shell.php', size: REFUSED_BIG_BYTES, content: 'php', expect: 'EXTENSION_NOT_ALLOWED', bar: true },
  { name: 'fake.png (text)', filename: 'fake.png', size: REFUSED_BIG_BYTES, content: 'text', expect: 'CONTENT_MISMATCH', bar: true },
].map((c) => ({
  ...c,
  label: `${c.name} ${bytesText(c.size)}`,
  body: multipartBody({ fields: c.fields, filename: c.filename ?? c.name, content: c.content, size: c.size }),
}));

// ---- targets --------------------------------------------------------------------------------------

const guardTarget = (mode, workers) => ({
  name: workers === 1 ? `guard ${mode}` : `guard ${mode} (${workers} workers)`,
  guard: { mode, workers },
  start: (ctx) => startGuard({ mode, workers }, ctx.sink.port, ctx.tmp),
});

const TARGETS = [
  { name: 'direct', start: (ctx) => ({ port: ctx.sink.port, child: null }) },
  { name: 'plain pipe', start: (ctx) => startPlainPipe(ctx.sink.port) },
  { name: 'plain pipe (malloc tuned)', start: (ctx) => startPlainPipe(ctx.sink.port, { tunedMalloc: true }) },
  { name: 'nginx', available: () => existsSync(NGINX), start: (ctx) => startNginx(ctx.sink.port, ctx.tmp) },
  guardTarget('spool', 1),
  guardTarget('stream', 1),
  guardTarget('spool', 2),
  guardTarget('stream', 2),
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

/** Scenario A: one big upload; RSS of the process tree sampled every 50 ms, CPU from /proc before and after. */
async function bigUpload(port, pid, sink) {
  await sink.reset();
  const idleRss = pid ? treeRss(pid) : null;
  const idleRssAnon = pid ? treeRssAnon(pid) : null;
  const cpuBefore = pid ? treeCpuSeconds(pid) : null;
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
    idleRssAnon,
    peakRss: rss?.peak ?? null,
    peakRssSingle: rss?.peakSingle ?? null,
    growth: rss && idleRss ? rss.peak - idleRss : null,
    processes: rss?.processes ?? null,
    rssSamples: rss?.samples ?? 0,
    cpu: pid ? treeCpuSeconds(pid) - cpuBefore : null,
  };
}

/**
 * n requests, CONCURRENCY at a time over keep-alive connections, `send(client)` making one: req/s,
 * p50/p99 latency, and the sink's count of what reached it.
 */
async function loadTest(port, sink, n, send) {
  const client = loadClient(port, CONCURRENCY);
  // open the pool's connections (and the proxy's upstream ones) before the clock starts
  await runConcurrent(CONCURRENCY * 2, CONCURRENCY, () => send(client));
  await sink.reset();
  const started = performance.now();
  const results = await runConcurrent(n, CONCURRENCY, () => send(client));
  const seconds = (performance.now() - started) / 1000;
  await client.close();
  await sleep(100); // let the sink count the last bodies' 'end'
  const stats = await sink.stats();
  const ok = results.filter((r) => !r.error && r.status === 200);
  const failed = results.filter((r) => r.error || r.status !== 200);
  const latencies = ok.map((r) => r.ms).sort((a, b) => a - b);
  return {
    n,
    ok: ok.length,
    failures: failed.length,
    firstFailure: failed.length ? (failed[0].error?.message ?? `${failed[0].status} ${failed[0].body.slice(0, 200)}`) : undefined,
    rps: ok.length / seconds,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    sink: { connections: stats.connections, started: stats.started, completed: stats.completed, framing: stats.framing },
  };
}

/** Scenario B: 16 KiB uploads. */
const smallUploads = (port, sink) => loadTest(port, sink, SMALL_N, (client) => client.upload(SMALL_BODY));

/** Scenario G: small GETs the guard passes through untouched (no route matches GET_PATH). */
const smallGets = (port, sink) => loadTest(port, sink, GET_N, (client) => client.get(GET_PATH));

/** Scenario C: each refused case once, on a fresh connection; the sink's counters say what leaked. */
async function refusedUploads(port, sink) {
  const out = [];
  for (const c of REFUSED_CASES) {
    await sink.reset();
    const answer = await timedRefusal(port, c.body);
    await sleep(500); // a leak would arrive after the client got its answer
    const stats = await sink.stats();
    out.push({ ...answer, sinkStarted: stats.started, sinkBytes: stats.bytes, sinkCompleted: stats.completed });
  }
  return out;
}

/**
 * One round on one target: start a fresh process, warm it up, run B, G, A (and C for the guard),
 * stop it. A fresh process per round keeps "RSS after load" comparable between rounds.
 */
async function measureRound(target, ctx) {
  const round = { load: loadavg()[0] };
  let child = null;
  let tree = [];
  try {
    const started = await target.start(ctx);
    child = started.child;
    tree = child ? processTree(child.pid) : [];
    await warmUp(started.port);
    log(`  ${target.name}: ${SMALL_N} x 16KiB uploads, ${GET_N} x GET ${GET_PATH}, ${BIG_LABEL} upload${target.guard ? ', refused uploads' : ''}  (load ${loadText(loadavg())})`);
    round.small = await smallUploads(started.port, ctx.sink);
    round.gets = await smallGets(started.port, ctx.sink);
    await sleep(500); // let the load's garbage settle before "idle" is read
    round.big = await bigUpload(started.port, child?.pid, ctx.sink);
    if (target.guard) round.refused = await refusedUploads(started.port, ctx.sink);
  } catch (err) {
    // A dead proxy shows up first as a client ECONNRESET; give its exit a moment to be seen so
    // the report says "crashed" with its last output rather than just the reset.
    if (child) await Promise.race([child.exited, sleep(1_000)]);
    round.error = (child && crashReport(child)) ?? err.stack ?? String(err);
  } finally {
    if (child) {
      const crash = crashReport(child);
      if (crash && !round.error) round.error = crash;
      await stopChild(child);
      // cluster workers normally exit with their primary; make sure none is left on the CPUs
      killLeftovers(tree.slice(1));
      if (child.stderr.length > 0) round.stderr = child.stderr;
    }
  }
  return round;
}

/** A target's rounds as one row: each scenario summarised over the rounds that got that far. */
function rowOf(target, rounds) {
  const row = { name: target.name, guard: target.guard ?? null, loadPerRound: rounds.map((r) => r.load) };
  const over = (scenario) => {
    const runs = rounds.map((r) => r[scenario]).filter(Boolean);
    return runs.length ? summarize(runs) : undefined;
  };
  row.small = over('small');
  row.gets = over('gets');
  row.big = over('big');
  if (target.guard && rounds.some((r) => r.refused)) {
    row.refused = REFUSED_CASES.map((c, i) => ({
      case: c.label,
      bar: c.bar,
      expect: c.expect,
      ...summarize(rounds.filter((r) => r.refused).map((r) => r.refused[i])),
    }));
  }
  const errors = rounds.map((r, i) => r.error && `round ${i + 1}: ${r.error}`).filter(Boolean);
  if (errors.length) row.error = errors.join('\n');
  const stderr = rounds.find((r) => r.stderr)?.stderr;
  if (stderr) row.stderr = stderr;
  return row;
}

// ---- figures --------------------------------------------------------------------------------------

const by = (rows, name) => rows.find((r) => r.name === name);
/** The median of one figure of one scenario, or null when the target or scenario did not run. */
const med = (row, scenario, field) => row?.[scenario]?.median?.[field] ?? null;
const ratioOf = (n, base) => (typeof n === 'number' && typeof base === 'number' && base > 0 ? n / base : null);

/** 16 KiB, 64 MiB, 1.5 MiB: sizes as people say them. */
function bytesText(bytes) {
  if (bytes === null || bytes === undefined) return '-';
  if (bytes >= MiB) return `${Number((bytes / MiB).toFixed(1))} MiB`;
  return `${Number((bytes / 1024).toFixed(1))} KiB`;
}
const mib = (bytes) => (bytes === null || bytes === undefined ? '-' : (bytes / MiB).toFixed(1));
const fixed = (n, digits) => (n === null || n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits));
const times = (r) => (r === null ? '-' : `${r.toFixed(2)}x`);
const spread = (summary, field, digits) => (summary ? `${fixed(summary.min[field], digits)}..${fixed(summary.max[field], digits)}` : '-');

// ---- report ---------------------------------------------------------------------------------------

/** A plain-text table, or a markdown one (for bench/README.md "Latest figures"). */
function table(header, rows, { markdown = false } = {}) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const cellsOf = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i])));
  if (markdown) {
    const line = (cells) => `| ${cellsOf(cells).join(' | ')} |`;
    return [line(header), `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
  }
  const line = (cells) => cellsOf(cells).join(' | ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-+-'), ...rows.map(line)].join('\n');
}

/** The summary: medians, ratios vs direct (throughput) and vs nginx (request rates, p99). */
function mainTable(rows, options) {
  const direct = by(rows, 'direct');
  const nginx = by(rows, 'nginx');
  const header = [
    'target', `${BIG_LABEL} MB/s`, 'vs direct', 'peak RSS MiB', '16KiB req/s', 'vs nginx', 'p99 ms', 'p99 vs nginx', 'GET req/s', 'vs nginx', 'GET p99 ms', 'vs direct',
  ];
  return table(
    header,
    rows.map((r) => {
      if (r.missing) return [r.name, r.missing, ...header.slice(2).map(() => '')];
      if (!r.big && !r.small) return [r.name, 'ERROR (see below)', ...header.slice(2).map(() => '')];
      const procs = r.big?.median?.processes > 1 ? ` (${r.big.median.processes} procs)` : '';
      return [
        r.name,
        fixed(med(r, 'big', 'mbps'), 1),
        times(ratioOf(med(r, 'big', 'mbps'), med(direct, 'big', 'mbps'))),
        `${mib(med(r, 'big', 'peakRss'))}${procs}`,
        fixed(med(r, 'small', 'rps'), 0),
        times(ratioOf(med(r, 'small', 'rps'), med(nginx, 'small', 'rps'))),
        fixed(med(r, 'small', 'p99'), 1),
        times(ratioOf(med(r, 'small', 'p99'), med(nginx, 'small', 'p99'))),
        fixed(med(r, 'gets', 'rps'), 0),
        times(ratioOf(med(r, 'gets', 'rps'), med(nginx, 'gets', 'rps'))),
        fixed(med(r, 'gets', 'p99'), 1),
        times(ratioOf(med(r, 'gets', 'rps'), med(direct, 'gets', 'rps'))),
      ];
    }),
    options,
  );
}

/** workers: 2 over workers: 1, per mode. */
function scalingTable(rows, options) {
  const lines = [];
  for (const mode of ['spool', 'stream']) {
    const one = by(rows, `guard ${mode}`);
    const two = by(rows, `guard ${mode} (2 workers)`);
    if (!one && !two) continue;
    const cells = (scenario, field, digits) => [fixed(med(one, scenario, field), digits), fixed(med(two, scenario, field), digits), times(ratioOf(med(two, scenario, field), med(one, scenario, field)))];
    lines.push([`guard ${mode}`, ...cells('small', 'rps', 0), ...cells('gets', 'rps', 0), ...cells('big', 'mbps', 1)]);
  }
  const header = ['workers 2 / workers 1', '16KiB req/s 1w', '2w', 'scaling', 'GET req/s 1w', '2w', 'scaling', `${BIG_LABEL} MB/s 1w`, '2w', 'scaling'];
  return table(header, lines, options);
}

function detailTable(rows) {
  const header = [
    'target', `${BIG_LABEL} statuses`, 'sink MiB', 'framing', 'CPU s', 'idle RSS', 'idle anon', 'peak-idle', 'largest proc', 'samples',
    '16KiB ok', 'p50 ms', 'sink got', 'conns', 'framing (16KiB)', 'GET ok', 'GET p50', 'sink got', 'conns',
  ];
  const framing = (f) => Object.entries(f ?? {}).filter(([, n]) => n > 0).map(([k, n]) => `${k}:${n}`).join(' ') || '-';
  const last = (summary) => summary?.runs.at(-1) ?? {};
  return table(
    header,
    rows.filter((r) => r.big || r.small).map((r) => {
      const b = last(r.big);
      const s = last(r.small);
      const g = last(r.gets);
      return [
        r.name,
        r.big?.runs.map((x) => x.status).join(',') ?? '-',
        mib(b.sink?.bytes),
        b.sink?.framing ?? '-',
        fixed(med(r, 'big', 'cpu'), 1),
        mib(med(r, 'big', 'idleRss')),
        mib(med(r, 'big', 'idleRssAnon')),
        mib(med(r, 'big', 'growth')),
        mib(med(r, 'big', 'peakRssSingle')),
        b.rssSamples || '-',
        `${s.ok ?? '-'}/${SMALL_N}`,
        fixed(med(r, 'small', 'p50'), 1),
        s.sink?.completed ?? '-',
        s.sink?.connections ?? '-',
        framing(s.sink?.framing),
        `${g.ok ?? '-'}/${GET_N}`,
        fixed(med(r, 'gets', 'p50'), 1),
        g.sink?.completed ?? '-',
        g.sink?.connections ?? '-',
      ];
    }),
  );
}

/** min..max over the rounds: how far to trust the medians above; with the load at each round's start. */
function spreadTable(rows) {
  const header = ['target', 'load (1 min)', `${BIG_LABEL} MB/s`, 'peak RSS MiB', '16KiB req/s', '16KiB p99 ms', 'GET req/s', 'GET p99 ms'];
  return table(
    header,
    rows.filter((r) => r.big || r.small).map((r) => [
      r.name,
      r.loadPerRound.map((n) => n.toFixed(1)).join(' '),
      spread(r.big, 'mbps', 1),
      r.big?.min.peakRss ? `${mib(r.big.min.peakRss)}..${mib(r.big.max.peakRss)}` : '-',
      spread(r.small, 'rps', 0),
      spread(r.small, 'p99', 1),
      spread(r.gets, 'rps', 0),
      spread(r.gets, 'p99', 1),
    ]),
  );
}

function refusedTable(rows, options) {
  const lines = [];
  for (const r of rows) {
    for (const c of r.refused ?? []) {
      const first = c.runs[0];
      const maxOf = (field) => Math.max(...c.runs.map((x) => x[field]));
      lines.push([
        r.name,
        c.case,
        [...new Set(c.runs.map((x) => `${x.status ?? '-'} ${x.code ?? x.error}`))].join('; '),
        fixed(c.median.msToStatus, 1),
        spread(c, 'msToStatus', 1),
        fixed(c.median.msFromContent, 1),
        `${bytesText(c.median.sentBeforeStatus)} of ${bytesText(first.contentLength)}`,
        maxOf('sinkStarted'),
        maxOf('sinkBytes'),
        maxOf('sinkCompleted'),
      ]);
    }
  }
  const header = ['target', 'refused upload', 'answer', 'ms to status', 'min..max', 'from content', 'sent before status', 'upstream started', 'upstream bytes', 'upstream completed'];
  return table(header, lines, options);
}

// ---- checks ---------------------------------------------------------------------------------------

/** pass: true, false, or null for SKIP (a target this run did not include, e.g. BENCH_TARGETS). */
function check(name, pass, detail) {
  return { name, pass, detail };
}

/**
 * `value` against `limit` ('>=' or '<'/'<='); SKIP when a baseline target is absent from this run,
 * FAIL when the measured target itself produced no figure.
 */
function barCheck(name, { value, limit, op, baselineMissing = false, show }) {
  if (baselineMissing) return check(name, null, 'baseline not measured in this run');
  if (value === null || value === undefined) return check(name, false, 'did not run');
  const pass = op === '>=' ? value >= limit : op === '<=' ? value <= limit : value < limit;
  return check(name, pass, show(value));
}

/** The issue's bars for one guard target. */
function guardBars(r, rows) {
  const direct = by(rows, 'direct');
  const nginx = by(rows, 'nginx');
  const noNginx = !nginx || Boolean(nginx.missing);
  const out = [];
  const want = BARS.mbpsVsDirect[r.guard.mode];
  const mbps = med(r, 'big', 'mbps');
  out.push(barCheck(`${r.name}: ${BIG_LABEL} MB/s >= ${want}x direct`, {
    value: ratioOf(mbps, med(direct, 'big', 'mbps')), limit: want, op: '>=', baselineMissing: !direct,
    show: (v) => `${times(v)}: ${fixed(mbps, 1)} vs ${fixed(med(direct, 'big', 'mbps'), 1)} MB/s`,
  }));
  // Per process: with workers the column sums 3 node processes, each with its own heap baseline.
  const single = med(r, 'big', 'peakRssSingle');
  const perProcess = r.guard.workers > 1 ? ' (largest process)' : '';
  out.push(barCheck(`${r.name}: peak RSS${perProcess} < ${mib(BARS.peakRss)} MiB during the ${BIG_LABEL} upload, after the 16 KiB and GET load`, {
    value: single, limit: BARS.peakRss, op: '<',
    show: (v) => `${mib(v)} MiB (max of runs ${mib(r.big.max.peakRssSingle)})${perProcess ? `, sum over ${r.big.median.processes} processes ${mib(med(r, 'big', 'peakRss'))} MiB` : ''}`,
  }));
  out.push(barCheck(`${r.name}: peak RSS < idle + ${mib(BARS.rssGrowth)} MiB during the ${BIG_LABEL} upload`, {
    value: med(r, 'big', 'growth'), limit: BARS.rssGrowth, op: '<', show: (v) => `peak-idle = ${mib(v)} MiB`,
  }));
  const smallRatio = ratioOf(med(r, 'small', 'rps'), med(nginx, 'small', 'rps'));
  out.push(barCheck(`${r.name}: 16KiB uploads req/s >= ${BARS.smallRpsVsNginx}x nginx`, {
    value: smallRatio, limit: BARS.smallRpsVsNginx, op: '>=', baselineMissing: noNginx,
    show: (v) => `${times(v)}: ${fixed(med(r, 'small', 'rps'), 0)} vs ${fixed(med(nginx, 'small', 'rps'), 0)} req/s`,
  }));
  out.push(barCheck(`${r.name}: 16KiB uploads p99 <= ${BARS.smallP99VsNginx}x nginx p99`, {
    value: ratioOf(med(r, 'small', 'p99'), med(nginx, 'small', 'p99')), limit: BARS.smallP99VsNginx, op: '<=', baselineMissing: noNginx,
    show: (v) => `${times(v)}: ${fixed(med(r, 'small', 'p99'), 1)} vs ${fixed(med(nginx, 'small', 'p99'), 1)} ms`,
  }));
  out.push(barCheck(`${r.name}: GET pass-through req/s >= ${BARS.getRpsVsNginx}x nginx`, {
    value: ratioOf(med(r, 'gets', 'rps'), med(nginx, 'gets', 'rps')), limit: BARS.getRpsVsNginx, op: '>=', baselineMissing: noNginx,
    show: (v) => `${times(v)}: ${fixed(med(r, 'gets', 'rps'), 0)} vs ${fixed(med(nginx, 'gets', 'rps'), 0)} req/s`,
  }));
  if (!r.refused) out.push(check(`${r.name}: refused uploads -> 0 bytes upstream, answered < ${BARS.refusedMs} ms`, false, 'did not run'));
  for (const c of (r.refused ?? []).filter((x) => x.bar)) {
    const leaked = Math.max(...c.runs.map((x) => x.sinkBytes));
    out.push(check(`${r.name}: refused ${c.case} -> 0 bytes upstream`, leaked === 0, `${leaked} bytes, ${Math.max(...c.runs.map((x) => x.sinkStarted))} upstream requests started (worst of ${c.runs.length})`));
    out.push(barCheck(`${r.name}: refused ${c.case} -> status within ${BARS.refusedMs} ms of the part header`, {
      value: c.median.msToStatus, limit: BARS.refusedMs, op: '<', show: (v) => `${fixed(v, 1)} ms (min..max ${spread(c, 'msToStatus', 1)})`,
    }));
  }
  return out;
}

/** The bars of the issue, then sanity checks that the numbers above mean what they say. */
function checks(rows) {
  const out = [];
  for (const r of rows.filter((row) => row.guard)) out.push(...guardBars(r, rows));
  // issue 2: the checks cost no throughput over a naive Node proxy
  const stream = by(rows, 'guard stream');
  // against the bare plain pipe, and against one whose glibc heap is not trimmed (lib/targets.mjs)
  for (const baseline of ['plain pipe', 'plain pipe (malloc tuned)']) {
    const plain = by(rows, baseline);
    out.push(barCheck(`guard stream MB/s >= ${baseline} MB/s`, {
      value: med(stream, 'big', 'mbps'), limit: med(plain, 'big', 'mbps') ?? 0, op: '>=', baselineMissing: !stream || !plain,
      show: (v) => `${fixed(v, 1)} vs ${fixed(med(plain, 'big', 'mbps'), 1)} MB/s`,
    }));
  }
  out.push(...sanityChecks(rows));
  return out;
}

function sanityChecks(rows) {
  const out = [];
  for (const r of rows.filter((row) => !row.missing)) {
    const runs = r.big?.runs ?? [];
    const bigOk = runs.length > 0 && runs.every((b) => b.status === 200 && b.sink.completed === 1 && Math.abs(b.sink.bytes - b.sentBytes) <= 4096);
    out.push(check(`(sanity) ${r.name}: every ${BIG_LABEL} upload answered 200, sink got one request of ~the bytes sent`, bigOk, runs.length ? runs.map((b) => `${b.status}/${b.sink.completed}/${b.sink.bytes}`).join(' ') : 'did not run'));
    for (const [scenario, what, n] of [['small', 'small uploads', SMALL_N], ['gets', `GETs ${GET_PATH}`, GET_N]]) {
      const loads = r[scenario]?.runs ?? [];
      const ok = loads.length > 0 && loads.every((s) => s.failures === 0 && s.sink.completed === n);
      const first = loads.find((s) => s.failures > 0);
      out.push(check(`(sanity) ${r.name}: all ${n} ${what} answered 200 and reached the sink, every run`, ok, loads.length ? `${loads.map((s) => `${s.ok} ok/${s.sink.completed} at sink`).join(', ')}${first ? ` (first failure: ${first.firstFailure})` : ''}` : 'did not run'));
    }
  }
  // SPEC "On the wire": spool forwards with an exact Content-Length, stream with chunked encoding.
  for (const r of rows.filter((row) => row.guard && row.big && row.small)) {
    const want = r.guard.mode === 'spool' ? 'length' : 'chunked';
    const allWant = r.small.runs.every((s) => s.sink.framing[want] === s.sink.started) && r.big.runs.every((b) => b.sink.framing === want);
    out.push(check(`(SPEC) ${r.name}: upstream sees ${want === 'length' ? 'Content-Length' : 'chunked'} framing (big and 16 KiB bodies)`, allWant, `big: ${r.big.runs.map((b) => b.sink.framing).join(',')}; 16KiB: ${JSON.stringify(r.small.runs.at(-1).sink.framing)}`));
  }
  for (const r of rows.filter((row) => row.guard && row.refused)) {
    for (const c of r.refused.filter((x) => !x.bar)) {
      const completed = Math.max(...c.runs.map((x) => x.sinkCompleted));
      out.push(check(`(SPEC) ${r.name}: ${c.case} -> no complete request upstream`, completed === 0, `${Math.max(...c.runs.map((x) => x.sinkStarted))} started, ${Math.max(...c.runs.map((x) => x.sinkBytes))} bytes, ${completed} completed`));
    }
    for (const c of r.refused) {
      const answers = [...new Set(c.runs.map((x) => `${x.status} ${x.code ?? x.error}`))];
      out.push(check(`(sanity) ${r.name}: ${c.case} answered 400 ${c.expect}, head flushed at once (timing valid)`, c.runs.every((x) => x.status === 400 && x.code === c.expect && x.headFlushed), `${answers.join('; ')}; head flushed: ${c.runs.map((x) => x.headFlushed).join(',')}`));
    }
  }
  return out;
}

// ---- output ---------------------------------------------------------------------------------------

function log(text) {
  process.stdout.write(`${text}\n`);
}

const loadText = (load) => load.map((n) => n.toFixed(2)).join(' ');

/** What the figures depend on besides the code: printed, saved, and pasted into the README. */
function machineFacts() {
  // nginx -v answers on stderr
  const nginx = existsSync(NGINX) ? spawnSync(NGINX, ['-v'], { encoding: 'utf8' }).stderr.trim() : 'not installed';
  return {
    date: new Date().toISOString(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    kernel: release(),
    node: process.version,
    heapFlags: HEAP_FLAGS,
    nginx: nginx.replace(/^nginx version: (nginx\/)?/, ''),
    loadStart: loadavg(),
  };
}

function printChecks(results) {
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

function printReport(rows, results) {
  log('');
  log(`medians of ${REPEAT} rounds; request rates and p99 compared with nginx, throughput with direct`);
  log(mainTable(rows));
  log('');
  log('scaling');
  log(scalingTable(rows));
  log('');
  log(`spread (min..max of ${REPEAT} rounds)`);
  log(spreadTable(rows));
  log('');
  log('details (medians; statuses and sink counts of the last round)');
  log(detailTable(rows));
  if (rows.some((r) => r.refused)) {
    log('');
    log(`refused uploads (raw socket; ms from the file part's header written to the status line read; median of ${REPEAT} rounds)`);
    log(refusedTable(rows));
  }
  for (const r of rows.filter((row) => row.stderr)) log(`\nstderr of ${r.name} (first lines):\n  ${r.stderr.join('\n  ')}`);
  for (const r of rows.filter((row) => row.error)) log(`\nERROR ${r.name}:\n${r.error}`);
  log('');
  printChecks(results);
}

/** The "Latest figures" section of bench/README.md, ready to paste. */
function markdownReport(rows, results, machine) {
  const md = { markdown: true };
  const failed = results.filter((c) => c.pass === false);
  return [
    `Run ${machine.date.slice(0, 16).replace('T', ' ')} UTC, \`${commandLine()}\`: ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memGiB} GiB RAM,`,
    `Linux ${machine.kernel}, node ${machine.node}, nginx ${machine.nginx}. Load average (1/5/15 min) ${loadText(machine.loadStart)} at the start,`,
    `${loadText(machine.loadEnd)} at the end. Medians of ${REPEAT} interleaved rounds; ${SMALL_N} x 16 KiB uploads and ${GET_N} GETs at concurrency ${CONCURRENCY}.`,
    '',
    mainTable(rows, md),
    '',
    scalingTable(rows, md),
    '',
    refusedTable(rows, md),
    '',
    failed.length === 0 ? `All ${results.length} checks passed.` : `Failed checks (${failed.length} of ${results.length}):`,
    '',
    ...failed.map((c) => `- ${c.name} (${c.detail})`),
  ].join('\n');
}

/** The env settings that differ from the defaults, for the record. */
function commandLine() {
  const env = Object.entries(process.env).filter(([k]) => k.startsWith('BENCH_')).map(([k, v]) => `${k}=${v} `).join('');
  return `${env}node bench/upload-bench.mjs`;
}

function saveResults(rows, results, machine, markdown) {
  const dir = join(PROJECT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stem = join(dir, new Date().toISOString().replace(/[:.]/g, '-'));
  const settings = { bigMiB: BIG_MIB, smallN: SMALL_N, getN: GET_N, concurrency: CONCURRENCY, repeat: REPEAT, bars: BARS };
  writeFileSync(`${stem}.json`, `${JSON.stringify({ settings, machine, rows, checks: results }, null, 2)}\n`);
  writeFileSync(`${stem}.md`, `${markdown}\n`);
  return stem;
}

// ---- main -----------------------------------------------------------------------------------------

async function main(ctx) {
  const machine = machineFacts();
  log(`upload-guard bench: node ${process.version} (proxies started with ${HEAP_FLAGS.join(' ')}), ${machine.cpus} CPUs, load average ${loadText(machine.loadStart)}`);
  log(`B: ${SMALL_N} x 16 KiB PNG, G: ${GET_N} x GET ${GET_PATH} (both at concurrency ${CONCURRENCY}), A: one ${BIG_LABEL} PNG (${BIG_BODY.contentLength} bytes with framing), C: refused 16 KiB / 64 MiB uploads (guard); ${REPEAT} rounds`);
  ctx.sink = await startSink();
  // Rounds rather than REPEAT runs in a row per target: on a shared machine the background load
  // drifts over minutes, and interleaving spreads that drift over every target instead of billing
  // it to whichever target happened to run during a busy spell.
  const available = TARGETS.filter((t) => !t.available || t.available());
  const rounds = new Map(available.map((t) => [t.name, []]));
  for (let i = 0; i < REPEAT; i++) {
    log(`round ${i + 1} of ${REPEAT}  (load average ${loadText(loadavg())})`);
    for (const target of available) {
      rounds.get(target.name).push(await measureRound(target, ctx));
      const sinkCrash = crashReport(ctx.sink.child);
      if (sinkCrash) throw new Error(sinkCrash);
    }
  }
  const rows = TARGETS.map((t) => (rounds.has(t.name) ? rowOf(t, rounds.get(t.name)) : { name: t.name, guard: t.guard ?? null, missing: 'not installed' }));
  machine.loadEnd = loadavg();
  const results = checks(rows);
  printReport(rows, results);
  const markdown = markdownReport(rows, results, machine);
  log('\nmarkdown for bench/README.md "Latest figures":\n');
  log(markdown);
  log(`\nresults saved to ${saveResults(rows, results, machine, markdown)}.{json,md}`);
  log(`load average at the end: ${loadText(machine.loadEnd)}`);
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
