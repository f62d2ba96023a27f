#!/usr/bin/env node
// Time-bounded robustness fuzz of the multipart body path: crash, hang and memory, not verdicts.
//
//   npm run build && node --import tsx --expose-gc bench/fuzz-multipart.mjs
//   FUZZ_SECONDS=600 FUZZ_SEED=123 node --import tsx --expose-gc bench/fuzz-multipart.mjs
//
// Drives the built guard code (dist/: admitBodyHeaders on the head, then filterMultipart with a
// memory sink, exactly as guard-server.ts calls them) with, in turn:
//   structured  requests from the generator of the Werkzeug differential test
//               (test/helpers/multipart-fuzz.ts: valid, odd and malformed multipart)
//   mutated     such a request with 1-8 byte-level mutations (flips, inserted/deleted/duplicated
//               ranges, multipart tokens: CRLF, LF, "--", the boundary, quotes, ";", NUL...)
//   random      random bytes under a valid Content-Type
//   header      a valid body under a random or mutated Content-Type
// each fed in random chunk sizes, against a lenient policy (no content check) and a strict one
// (verifyContent: magic bytes, structure and active-content scans on every file).
//
// Findings: an exception that is not a GuardError, an uncaught exception or unhandled rejection,
// an input still undecided after FUZZ_TIMEOUT_MS (default 5000) or one that only ended by the idle
// timeout although its whole body was delivered (a hang), and a forwarded canonical body that the
// strict test parser rejects. Memory: RSS and heap after a forced GC, after a warm-up and at the
// end, and the peak RSS sampled every second. Findings are written to bench/results/fuzz-multipart-*/.
// Exit code 1 when there are findings.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { loadConfigText } from '../dist/config/load.js';
import { GuardError } from '../dist/errors.js';
import { CanonicalEncoder } from '../dist/upload/canonical-encoder.js';
import { admitBodyHeaders } from '../dist/upload/header-admission.js';
import { filterMultipart } from '../dist/upload/multipart-filter.js';
import { parseMultipart } from '../test/helpers/multipart-builder.ts';
import { generatedRequestArb, serialize } from '../test/helpers/multipart-fuzz.ts';

const SECONDS = Number(process.env.FUZZ_SECONDS ?? 60);
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const TIMEOUT_MS = Number(process.env.FUZZ_TIMEOUT_MS ?? 5000);
const IDLE_MS = 2000;
const MiB = 1024 * 1024;

if (typeof globalThis.gc !== 'function') {
  console.error('run with --expose-gc: node --import tsx --expose-gc bench/fuzz-multipart.mjs');
  process.exit(2);
}

// ------------------------------------------------------------------------------------------
// Policies

const loaded = loadConfigText(`
routes:
  - { name: lenient, path: /a, policy: lenient }
  - { name: strict, path: /b, policy: strict }
policies:
  lenient: { allow: [png, jpg, gif, txt], verifyContent: false, maxFileSize: 1MiB, maxRequestSize: 2MiB, maxFiles: 10, maxFields: 10 }
  strict: { allow: [png, jpg, jpeg, gif, pdf, docx, mp4], maxFileSize: 1MiB, maxRequestSize: 2MiB, maxFiles: 10, maxFields: 10 }
`);
if (!('config' in loaded)) throw new Error(JSON.stringify(loaded));
const POLICIES = loaded.config.routes.map((r) => r.policy);

// ------------------------------------------------------------------------------------------
// Inputs

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = mulberry32(SEED);
const int = (n) => Math.floor(random() * n);
const choose = (items) => items[int(items.length)];
const randomBytes = (n) => Buffer.from(Array.from({ length: n }, () => int(256)));

let batch = [];
let batchSeed = SEED;
function structured() {
  if (batch.length === 0) batch = fc.sample(generatedRequestArb, { numRuns: 500, seed: batchSeed++ }).map((g) => serialize(g.spec));
  return batch.pop();
}

function boundaryOf(contentType) {
  return /boundary="?([^";]+)/i.exec(contentType)?.[1] ?? 'XyZ';
}

function mutate(body, boundary) {
  const tokens = ['\r\n', '\n', '\r', '--', `--${boundary}`, `\r\n--${boundary}`, `\r\n--${boundary}--`, `\r\n--${boundary}\r\n`, '\r\n\r\n', '"', '\\', ';', '=', ' ', '\t', '\0', '\xff',
    'filename=', 'filename*=', "UTF-8''", 'name=', 'Content-Disposition: form-data; name="f"; filename="a.png"', 'Content-Type: ', '%', '\u00e9'];
  let out = body;
  for (let n = 1 + int(8); n > 0; n--) {
    const at = int(out.length + 1);
    switch (int(6)) {
      case 0: // flip a byte
        if (out.length > 0) {
          out = Buffer.from(out);
          out[int(out.length)] ^= 1 << int(8);
        }
        break;
      case 1: // insert a token
        out = Buffer.concat([out.subarray(0, at), Buffer.from(choose(tokens), 'latin1'), out.subarray(at)]);
        break;
      case 2: // delete a range
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + int(64))]);
        break;
      case 3: { // duplicate a range
        const from = int(out.length + 1);
        out = Buffer.concat([out.subarray(0, at), out.subarray(from, from + int(256)), out.subarray(at)]);
        break;
      }
      case 4: // insert random bytes
        out = Buffer.concat([out.subarray(0, at), randomBytes(1 + int(32)), out.subarray(at)]);
        break;
      case 5: // truncate
        out = out.subarray(0, at);
        break;
    }
  }
  return out;
}

const CONTENT_TYPE_PIECES = ['multipart/form-data', ';', ' ', 'boundary=', 'boundary*=', 'boundary*0=', '"', '\\', 'XyZ', 'charset=utf-8', "utf-8''", ',', '\t', '=', 'multipart/mixed', '\u00e9'];

function nextInput() {
  const kind = choose(['structured', 'mutated', 'mutated', 'random', 'header']);
  const base = structured();
  const contentType = base.contentTypes[0];
  switch (kind) {
    case 'structured':
      return { kind, contentTypes: base.contentTypes, body: base.body };
    case 'mutated':
      return { kind, contentTypes: base.contentTypes, body: mutate(base.body, boundaryOf(contentType)) };
    case 'random':
      return { kind, contentTypes: ['multipart/form-data; boundary=XyZ'], body: randomBytes(int(4096)) };
    case 'header': {
      let ct = '';
      if (random() < 0.5) for (let n = int(8); n > 0; n--) ct += choose(CONTENT_TYPE_PIECES);
      else ct = mutate(Buffer.from(contentType, 'latin1'), 'XyZ').toString('latin1').replace(/[\r\n\0]/g, '');
      return { kind, contentTypes: [ct], body: base.body };
    }
  }
}

function cut(body) {
  const pieces = [];
  // tiny pieces only for small bodies (a 200 KiB PNG byte by byte would only measure writes)
  const size = body.length > 16 * 1024 ? choose([1024, 16 * 1024, Infinity]) : choose([1, 7, 64, 1024, 16 * 1024, Infinity]);
  for (let i = 0; i < body.length; ) {
    const n = size === Infinity ? body.length : Math.max(1, int(size * 2));
    pieces.push(body.subarray(i, i + n));
    i += n;
  }
  return pieces;
}

// ------------------------------------------------------------------------------------------
// One input through the head and body checks

class MemorySink {
  chunks = [];
  length = 0;
  write(chunk) {
    this.chunks.push(chunk);
    this.length += chunk.length;
    return Promise.resolve();
  }
  complete() {
    return Promise.reject(new Error('not forwarded in the fuzz'));
  }
  abort() {
    this.chunks = [];
  }
}

let current = null;
const findings = [];
function finding(kind, detail, input = current) {
  findings.push({ kind, detail: String(detail).slice(0, 500), input });
}
process.on('uncaughtException', (err) => finding('uncaught exception', err?.stack ?? err));
process.on('unhandledRejection', (err) => finding('unhandled rejection', err?.stack ?? err));

const outcomes = new Map();
const count = (key) => outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
let slowest = { ms: 0, kind: '' };

async function runOne(input, policy) {
  current = input;
  const req = new PassThrough();
  req.headers = { 'content-type': input.contentTypes[0] };
  req.rawHeaders = input.contentTypes.flatMap((ct) => ['Content-Type', ct]);
  try {
    admitBodyHeaders(req, policy);
  } catch (err) {
    if (!(err instanceof GuardError)) finding('head check threw a non-GuardError', err?.stack ?? err);
    count(`head ${err?.code ?? 'crash'}`);
    return;
  }
  const sink = new MemorySink();
  const encoder = new CanonicalEncoder();
  const started = performance.now();
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve('timeout'), TIMEOUT_MS);
  });
  let verdict;
  try {
    const filtering = filterMultipart(req, policy, encoder, sink, IDLE_MS).then(
      (result) => ({ ok: true, result }),
      (err) => ({ ok: false, err }),
    );
    for (const piece of cut(input.body)) req.write(piece);
    req.end();
    verdict = await Promise.race([filtering, timeout]);
  } catch (err) {
    finding('filterMultipart threw synchronously', err?.stack ?? err);
    return;
  } finally {
    clearTimeout(timer);
    req.destroy();
  }
  const ms = performance.now() - started;
  if (ms > slowest.ms) slowest = { ms, kind: input.kind };
  if (verdict === 'timeout') return finding('hang', `undecided after ${TIMEOUT_MS} ms`);
  if (!verdict.ok) {
    const err = verdict.err;
    if (!(err instanceof GuardError)) return finding('body check rejected with a non-GuardError', err?.stack ?? err);
    if (err.code === 'REQUEST_TIMEOUT') return finding('hang', 'the idle timeout fired although the whole body was delivered');
    count(err.code);
    return;
  }
  count('forwarded');
  const canonical = Buffer.concat(sink.chunks);
  try {
    const parts = parseMultipart(canonical, encoder.contentType);
    const named = parts.filter((p) => p.filename !== undefined && p.filename !== '');
    if (named.length !== verdict.result.files.length) finding('canonical body and checked files disagree', `${named.length} named file parts, ${verdict.result.files.length} checked`);
  } catch (err) {
    finding('malformed canonical body', err?.message ?? err);
  }
}

// ------------------------------------------------------------------------------------------
// Main loop

function memory() {
  globalThis.gc();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers };
}
const mib = (bytes) => `${(bytes / MiB).toFixed(1)} MiB`;

console.log(`fuzz-multipart: ${SECONDS} s, seed ${SEED}, per-input timeout ${TIMEOUT_MS} ms, Node ${process.version}`);
let inputs = 0;
const warmupEnd = performance.now() + Math.min(5000, SECONDS * 100);
// setImmediate between inputs: timers (the per-input timeout, the RSS sampler) must get their turn
const tick = () => new Promise((resolve) => setImmediate(resolve));
while (performance.now() < warmupEnd) {
  await runOne(nextInput(), choose(POLICIES));
  inputs++;
  await tick();
}
const before = memory();
let peakRss = before.rss;
const timeline = [];
let samples = 0;
const sampler = setInterval(() => {
  const rss = process.memoryUsage().rss;
  peakRss = Math.max(peakRss, rss);
  if (++samples % 10 === 0) timeline.push(`${samples}s ${mib(rss)}`);
}, 1000);
const warmupInputs = inputs;
const started = performance.now();
const deadline = started + SECONDS * 1000;
const byKind = new Map();
while (performance.now() < deadline) {
  const input = nextInput();
  byKind.set(input.kind, (byKind.get(input.kind) ?? 0) + 1);
  await runOne(input, choose(POLICIES));
  inputs++;
  await tick();
}
clearInterval(sampler);
const elapsed = (performance.now() - started) / 1000;
const measured = inputs - warmupInputs;
await new Promise((resolve) => setTimeout(resolve, IDLE_MS + 200)); // let idle timers of refused inputs run out
const after = memory();

console.log(`inputs: ${measured} in ${elapsed.toFixed(1)} s = ${(measured / elapsed).toFixed(0)} inputs/s (plus ${warmupInputs} warm-up); by kind ${JSON.stringify(Object.fromEntries(byKind))}`);
console.log(`outcomes: ${JSON.stringify(Object.fromEntries([...outcomes].sort((a, b) => b[1] - a[1])))}`);
console.log(`RSS every 10 s: ${timeline.join(', ')}`);
console.log(`slowest input: ${slowest.ms.toFixed(1)} ms (${slowest.kind})`);
console.log(`memory after GC: RSS ${mib(before.rss)} -> ${mib(after.rss)} (peak ${mib(peakRss)}); heap ${mib(before.heapUsed)} -> ${mib(after.heapUsed)}; array buffers ${mib(before.arrayBuffers)} -> ${mib(after.arrayBuffers)}`);
if (findings.length === 0) {
  console.log('findings: none');
} else {
  const dir = join('bench', 'results', `fuzz-multipart-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(dir, { recursive: true });
  findings.forEach((f, i) => {
    if (f.input) writeFileSync(join(dir, `finding-${i}.bin`), f.input.body);
    writeFileSync(join(dir, `finding-${i}.json`), JSON.stringify({ kind: f.kind, detail: f.detail, inputKind: f.input?.kind, contentTypes: f.input?.contentTypes }, null, 2));
  });
  console.log(`findings: ${findings.length} (written to ${dir})`);
  for (const f of findings.slice(0, 10)) console.log(`  ${f.kind}: ${f.detail.split('\n')[0]} [${f.input?.kind} ${JSON.stringify(f.input?.contentTypes)}]`);
}
process.exit(findings.length === 0 ? 0 : 1);
