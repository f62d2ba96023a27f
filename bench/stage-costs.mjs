// CPU cost of each stage of a big upload's body path, in isolation, over the bench's PNG body (the
// same random 1 MiB block as upload-bench.mjs): what the guard adds per byte on top of what any
// Node proxy pays for reading and writing sockets. Run against an existing dist/:
//
//   node bench/stage-costs.mjs              # 256 MiB, 5 rounds
//   STAGE_MIB=64 STAGE_ROUNDS=3 node bench/stage-costs.mjs
//
// Prints the median milliseconds per 256 MiB of each stage. Stages, in the order the guard runs them:
//   batch copy      joining the socket reads of one event-loop turn (multipart-filter.ts, 1 MiB batches)
//   framing scan    DelimiterScanner.feed, the independent reading of the multipart framing
//   busboy          busboy's parse, file bytes read off its file stream (its boundary search is
//                   vendor/streamsearch, through package.json's overrides)
//   framing + busboy  both, as the guard runs them: chunks the framing scan found free of the
//                   boundary are declared so (StreamSearch.declareAbsent) and not searched again
//   pair scan       PairScanner.candidates over the file bytes (copy into WebAssembly memory + scan)
//   marker checks   scanActiveContent over those candidates
//   inspector       the whole ContentInspector for a .png (pair scan and marker checks included)

import busboy from 'busboy';
import StreamSearch from 'streamsearch';
import { DelimiterScanner } from '../dist/upload/delimiter-scanner.js';
import { ContentInspector, PROGRAM_ANCHOR_PAIRS } from '../dist/upload/content-inspector.js';
import { MARKER_ANCHOR_PAIRS, MARKER_ANCHOR_REACH, scanActiveContent } from '../dist/upload/content-check.js';
import { PairScanner } from '../dist/upload/pair-scan.js';
import { CONTENT_TYPE, multipartBody } from './lib/multipart.mjs';

const MiB = 1024 * 1024;
const SIZE_MIB = Number(process.env.STAGE_MIB ?? 256);
const ROUNDS = Number(process.env.STAGE_ROUNDS ?? 5);
const BATCH = MiB;
const boundary = /boundary=(.*)$/.exec(CONTENT_TYPE)[1];

// The body as socket-sized reads, copied once so each read is a Buffer of its own.
const reads = [...multipartBody({ filename: 'bench.png', content: 'png', size: SIZE_MIB * MiB }).chunks()].map((c) => Buffer.from(c));
/** The reads joined into 1 MiB batches, as multipart-filter.ts hands them on. */
function* joinedBatches() {
  let batch = [];
  let bytes = 0;
  for (const read of reads) {
    batch.push(read);
    bytes += read.length;
    if (bytes >= BATCH) {
      yield Buffer.concat(batch, bytes);
      batch = [];
      bytes = 0;
    }
  }
  if (bytes > 0) yield Buffer.concat(batch, bytes);
}
const batches = [...joinedBatches()];
// The file's bytes alone, in the same batches (what busboy hands the checks).
const head = batches[0].indexOf('\r\n\r\n') + 4;
const tail = batches.at(-1).lastIndexOf(`\r\n--${boundary}--`);
const fileBatches = batches.map((b, i) => b.subarray(i === 0 ? head : 0, i === batches.length - 1 ? tail : b.length));

// A copy of the batches for the stage that declares them free of the boundary: declarations stay
// with a buffer, and the busboy stage must search its own batches in every round.
const declaredBatches = batches.map((b) => Buffer.from(b));

/** busboy over `input`; with a scanner, each batch goes through it first, as in multipart-filter.ts. */
function parseWithBusboy(input, scanner) {
  return new Promise((resolve, reject) => {
    const parser = busboy({ headers: { 'content-type': CONTENT_TYPE }, highWaterMark: 512 * 1024, fileHwm: 512 * 1024 });
    let bytes = 0;
    parser.on('file', (_name, stream) => stream.on('data', (c) => (bytes += c.length)));
    parser.on('error', reject);
    parser.on('close', () => (bytes === SIZE_MIB * MiB ? resolve() : reject(new Error(`busboy gave ${bytes} bytes`))));
    for (const b of input) {
      if (scanner !== undefined) {
        scanner.feed(b);
        if (scanner.chunkHoldsNoBoundary) StreamSearch.declareAbsent(b, scanner.dashBoundary);
      }
      parser.write(b);
    }
    parser.end();
  });
}

const windowAnchors = new PairScanner([...MARKER_ANCHOR_PAIRS, ...PROGRAM_ANCHOR_PAIRS]);

const stages = {
  'batch copy': () => {
    // each batch dropped once made, as in the guard (keeping them all would time page faults)
    for (const batch of joinedBatches()) void batch;
  },
  'framing scan': () => {
    const scanner = new DelimiterScanner(boundary);
    for (const b of batches) scanner.feed(b);
    if (!scanner.closed || scanner.problem !== null) throw new Error('framing scan did not close cleanly');
  },
  busboy: () => parseWithBusboy(batches),
  'framing + busboy': () => parseWithBusboy(declaredBatches, new DelimiterScanner(boundary)),
  'pair scan': () => {
    for (const b of fileBatches) windowAnchors.candidates(b, 0, b.length);
  },
  'marker checks': (anchors) => {
    fileBatches.forEach((b, i) => {
      if (scanActiveContent(b, 0, b.length - MARKER_ANCHOR_REACH, false, 'all', anchors[i]) !== undefined) throw new Error('a marker in random data');
    });
  },
  inspector: () => {
    const inspector = new ContentInspector('png');
    for (const b of fileBatches) if (inspector.feed(b) !== null) throw new Error(inspector.failure);
    if (inspector.finish() !== null) throw new Error(inspector.failure);
  },
};

const anchors = fileBatches.map((b) => windowAnchors.candidates(b, 0, b.length));
const times = Object.fromEntries(Object.keys(stages).map((name) => [name, []]));
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, run] of Object.entries(stages)) {
    const started = process.cpuUsage();
    await run(anchors);
    const used = process.cpuUsage(started);
    times[name].push((used.user + used.system) / 1000);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const per256 = 256 / SIZE_MIB;
console.log(`stage costs: node ${process.version}, ${SIZE_MIB} MiB body, median of ${ROUNDS} rounds, CPU ms per 256 MiB`);
for (const [name, xs] of Object.entries(times)) console.log(`  ${name.padEnd(17)} ${(median(xs) * per256).toFixed(1).padStart(7)}`);
const candidates = anchors.reduce((n, a) => n + a.length, 0);
console.log(`  (${(candidates / SIZE_MIB).toFixed(0)} pair-scan candidates per MiB)`);
