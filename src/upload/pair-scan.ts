// PairScanner: one pass over a buffer that lists every position where a byte of one set is
// followed by a byte of another ("<" then "?", "t" then ":", 0x7f then "E", ...).
//
// Why: the content checks look at every byte of every upload for markers and embedded programs.
// Jumping from anchor byte to anchor byte with Buffer.indexOf costs a JS→C++ call per anchor, and a
// single anchor byte turns up every 256 bytes of compressed data: ~4 million calls per GiB per
// anchor, most of the guard's CPU on a big upload. Requiring the second byte as well makes the
// candidates ~100-1000x rarer, and a WebAssembly SIMD loop (pair-scan.wat) checks 16 positions per
// step. The candidates are a superset (the byte sets are widened to what the nibble tables can
// express, see pair-scan.wat): callers keep their own exact checks, so what is found does not
// change, only how many positions are looked at.

import { PAIR_SCAN_RELAXED_WASM_BASE64, PAIR_SCAN_WASM_BASE64 } from './pair-scan-wasm.js';

/** A byte pair to look for: any byte of `first` followed by any byte of `second`. */
export interface BytePair {
  readonly first: readonly number[];
  readonly second: readonly number[];
}

const TABLES_BYTES = 64;
/** Input bytes per call into WebAssembly; longer buffers are scanned in slices. */
const SLICE_BYTES = 256 * 1024;
/** The SIMD loop reads up to two blocks beyond the slice. */
const READ_PADDING = 48;
const INPUT_AT = TABLES_BYTES;
const OUTPUT_AT = INPUT_AT + SLICE_BYTES + READ_PADDING;
const MEMORY_BYTES = OUTPUT_AT + 4 * SLICE_BYTES;
const WASM_PAGE = 64 * 1024;

/** The relaxed-SIMD build where the runtime takes it (a faster scan on Node 24, same results), else the plain one. */
function compileScanModule(): WebAssembly.Module {
  try {
    return new WebAssembly.Module(Buffer.from(PAIR_SCAN_RELAXED_WASM_BASE64, 'base64'));
  } catch {
    return new WebAssembly.Module(Buffer.from(PAIR_SCAN_WASM_BASE64, 'base64'));
  }
}
const compiled = compileScanModule();

interface PairScanExports {
  readonly memory: WebAssembly.Memory;
  scan(input: number, count: number, output: number): number;
}

export class PairScanner {
  private readonly exports: PairScanExports;
  private readonly memory: Uint8Array;
  private readonly positions: Int32Array;

  /** At most 8 pairs (one class bit each). */
  constructor(pairs: readonly BytePair[]) {
    if (pairs.length === 0 || pairs.length > 8) throw new RangeError('PairScanner takes 1 to 8 byte pairs');
    const instance = new WebAssembly.Instance(compiled, {});
    this.exports = instance.exports as unknown as PairScanExports;
    const pages = Math.ceil(MEMORY_BYTES / WASM_PAGE) - this.exports.memory.buffer.byteLength / WASM_PAGE;
    if (pages > 0) this.exports.memory.grow(pages);
    this.memory = new Uint8Array(this.exports.memory.buffer);
    this.positions = new Int32Array(this.exports.memory.buffer, OUTPUT_AT, SLICE_BYTES);
    pairs.forEach((pair, index) => {
      const bit = 1 << index;
      for (const b of pair.first) {
        this.memory[b & 15] |= bit;
        this.memory[16 + (b >> 4)] |= bit;
      }
      for (const b of pair.second) {
        this.memory[32 + (b & 15)] |= bit;
        this.memory[48 + (b >> 4)] |= bit;
      }
    });
  }

  /**
   * Ascending positions p in [from, to) of `bytes`, with p + 1 < bytes.length, where bytes[p] and
   * bytes[p + 1] may form one of the pairs (a superset: check each). A fresh array.
   */
  candidates(bytes: Uint8Array, from: number, to: number): Int32Array {
    const end = Math.min(to, bytes.length - 1);
    let found = new Int32Array(0);
    let count = 0;
    for (let at = Math.max(0, from); at < end; at += SLICE_BYTES) {
      const pairs = Math.min(SLICE_BYTES, end - at);
      // the pair at the slice's last position needs the byte after it
      this.memory.set(bytes.subarray(at, at + pairs + 1), INPUT_AT);
      const n = this.exports.scan(INPUT_AT, pairs, OUTPUT_AT);
      if (n === 0) continue;
      if (count + n > found.length) {
        const grown = new Int32Array(Math.max(count + n, 2 * found.length));
        grown.set(found.subarray(0, count));
        found = grown;
      }
      found.set(this.positions.subarray(0, n), count);
      if (at !== 0) for (let k = count; k < count + n; k++) found[k]! += at;
      count += n;
    }
    return found.subarray(0, count);
  }
}
