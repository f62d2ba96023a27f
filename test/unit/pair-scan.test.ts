import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { renderPairScanModule, WASM_MODULE_PATH } from '../../scripts/gen-wasm.ts';
import { MARKER_ANCHOR_PAIRS, MARKER_ANCHOR_REACH, scanActiveContent } from '../../src/upload/content-check.ts';
import { findExecutable, PROGRAM_ANCHOR_PAIRS } from '../../src/upload/content-inspector.ts';
import { type BytePair, PairScanner } from '../../src/upload/pair-scan.ts';

const ALL_PAIRS: readonly BytePair[] = [...MARKER_ANCHOR_PAIRS, ...PROGRAM_ANCHOR_PAIRS];

/** Every position in [from, to) where one of the pairs is, by looking at each. */
function pairsByHand(pairs: readonly BytePair[], bytes: Uint8Array, from: number, to: number): number[] {
  const out: number[] = [];
  for (let p = Math.max(0, from); p < Math.min(to, bytes.length - 1); p++) {
    if (pairs.some((pair) => pair.first.includes(bytes[p]!) && pair.second.includes(bytes[p + 1]!))) out.push(p);
  }
  return out;
}

/** Bytes rich in the pairs' bytes, so that pairs, near-pairs and runs of them are common. */
const pairRich = fc.array(
  fc.oneof(
    fc.constantFrom(...ALL_PAIRS.flatMap((pair) => [...pair.first, ...pair.second])),
    fc.integer({ min: 0, max: 255 }),
  ),
  { maxLength: 700 },
).map((bytes) => Buffer.from(bytes));

test('the compiled module is current (npm run gen:wasm)', async () => {
  assert.equal(readFileSync(WASM_MODULE_PATH, 'utf8'), await renderPairScanModule());
});

test('candidates: ascending, in range, and every real pair among them (property)', () => {
  const scanner = new PairScanner(ALL_PAIRS);
  fc.assert(
    fc.property(pairRich, fc.nat(720), fc.nat(720), (bytes, a, b) => {
      const [from, to] = a <= b ? [a, b] : [b, a];
      const found = [...scanner.candidates(bytes, from, to)];
      for (let k = 0; k < found.length; k++) {
        assert.ok(found[k]! >= from && found[k]! < to && found[k]! + 1 < bytes.length, `position ${found[k]} out of range`);
        if (k > 0) assert.ok(found[k]! > found[k - 1]!, 'not ascending');
      }
      const present = new Set(found);
      for (const p of pairsByHand(ALL_PAIRS, bytes, from, to)) assert.ok(present.has(p), `pair at ${p} missed`);
    }),
    { numRuns: 3000, seed: 7 },
  );
});

test('candidates across the 256 KiB slices of a long buffer', () => {
  const scanner = new PairScanner([{ first: [0x3c], second: [0x3f] }]);
  const bytes = Buffer.alloc(1024 * 1024 + 5, 0x41);
  // pairs at the start, straddling slice boundaries, next to each other and near the end
  const at = [0, 256 * 1024 - 1, 512 * 1024 - 1, 512 * 1024 + 1, 768 * 1024 - 1, bytes.length - 3];
  for (const p of at) bytes.write('<?', p, 'latin1');
  bytes.write('<', bytes.length - 1, 'latin1'); // no byte after it: not a pair
  assert.deepEqual([...scanner.candidates(bytes, 0, bytes.length)], at);
  assert.deepEqual([...scanner.candidates(bytes, 1, 512 * 1024)], [256 * 1024 - 1, 512 * 1024 - 1]);
});

test('the marker scan finds with anchors exactly what it finds looking at every position (property)', () => {
  const every = (n: number) => Int32Array.from({ length: n }, (_, i) => i);
  const snippets = ['<?php ', '<?= system(1) ?>', '<? `id`?>', '<%= x %>', '<script>', '<svg onload', 'JavaScript:', 'JAVASCRIPT:', '<SCRIPT>', '<?PHP ', '__halt_compiler', '__HALT_COMPILER', '<?', '<', 't:'];
  const text = fc.array(fc.oneof(fc.constantFrom(...snippets), fc.string({ maxLength: 12 })), { maxLength: 20 }).map((parts) => Buffer.from(parts.join(''), 'latin1'));
  fc.assert(
    fc.property(fc.oneof(text, pairRich), fc.boolean(), fc.constantFrom('all' as const, 'unambiguous' as const), (bytes, atEnd, markers) => {
      const to = Math.max(0, bytes.length - (atEnd ? 0 : MARKER_ANCHOR_REACH));
      assert.deepEqual(scanActiveContent(bytes, 0, to, atEnd, markers), scanActiveContent(bytes, 0, to, atEnd, markers, every(bytes.length)));
    }),
    { numRuns: 3000, seed: 11 },
  );
});

test('the program scan finds with anchors what it finds looking at every position (property)', () => {
  const elf = Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
  const machO = Buffer.from([0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1, 3, 0, 0, 0, 2, 0, 0, 0]);
  const pe = Buffer.alloc(24);
  pe.write('PE\0\0', 0, 'latin1');
  pe.writeUInt16LE(0x8664, 4);
  pe.writeUInt16LE(3, 6);
  pe.writeUInt16LE(0xf0, 20);
  const pieces = fc.array(fc.oneof(fc.constantFrom(elf, machO, pe, elf.subarray(0, 5), machO.subarray(0, 6)), pairRich), { maxLength: 8 }).map((p) => Buffer.concat(p));
  fc.assert(
    fc.property(pieces, (bytes) => {
      const every = Int32Array.from({ length: bytes.length }, (_, i) => i);
      assert.deepEqual(findExecutable(bytes, 0, bytes.length), findExecutable(bytes, 0, bytes.length, every));
    }),
    { numRuns: 2000, seed: 13 },
  );
});
