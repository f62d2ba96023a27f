// ContentInspector: the part of content checking that needs every byte of a file, run while the
// file streams (multipart-filter.ts feeds each chunk and asks for a verdict at the file's end),
// with memory bounded per file whatever its size. checkContent (content-check.ts) judges the head;
// this judges the rest. What is inspected, and why, is in docs/content-inspection.md:
//
//   every kind      the active-content marker scan (content-check.ts) over all bytes, across chunk
//                   boundaries (MARKER_LOOKAHEAD bytes are kept between chunks)
//   text kinds      no NUL anywhere (the head check only sees 64 KiB)
//   image, video,   no embedded ELF / PE / Mach-O program; no zip archive appended (its end
//   document        record at the end of the file: GIFAR / phar / JAR polyglots), zip-based
//                   formats excepted
//   png, jpg, gif   structure walk (image-structure.ts): strict scan of metadata text (tEXt, zTXt
//                   and iTXt inflated, COM, XMP, GIF comments), and the location of any finding,
//                   "after the image data" included
//   pdf             JavaScript, launch actions, Flash, XFA; object streams inflated (pdf-scan.ts)
//   docx/xlsx/pptx  VBA projects, macro sheets, ActiveX, Basic/ Scripts/ (zip-scan.ts)
//   odt/ods/odp
//   doc/xls/ppt     a VBA project storage (_VBA_PROJECT in the compound file directory)

import { createReadStream } from 'node:fs';
import { MARKER_ANCHOR_PAIRS, MARKER_ANCHOR_REACH, MARKER_LOOKAHEAD, scanActiveContent, type MarkerSet } from './content-check.js';
import { fileKind } from './file-kinds.js';
import { imageWalkerFor, type ImageWalker } from './image-structure.js';
import { type BytePair, PairScanner } from './pair-scan.js';
import { PdfScanner } from './pdf-scan.js';
import { TailKeeper } from './tail-keeper.js';
import { endsWithZip, OfficePackageWalker, ZIP_TAIL_BYTES } from './zip-scan.js';

type WindowScan = (bytes: Buffer, from: number, to: number, atEnd: boolean, base: number) => string | null;

/**
 * Runs `scan` over a stream in windows so that every position is scanned exactly once with at least
 * `lookahead` bytes after it visible (or the end of the file): a pattern split by a chunk boundary
 * is found, and the verdict does not depend on how the stream was chunked. Keeps `lookahead` bytes.
 */
export class WindowedScan {
  private readonly lookahead: number;
  private readonly scan: WindowScan;
  private carry: Buffer = Buffer.alloc(0);
  private carryBase = 0;
  private total = 0;
  // small chunks wait here until there are 2 * lookahead bytes to scan (a trickling client must
  // not cost a lookahead-sized copy per byte)
  private pending: Buffer[] = [];
  private pendingLength = 0;

  constructor(lookahead: number, scan: WindowScan) {
    this.lookahead = lookahead;
    this.scan = scan;
  }

  feed(chunk: Buffer): string | null {
    const L = this.lookahead;
    this.total += chunk.length;
    if (chunk.length < 2 * L) {
      this.pending.push(Buffer.from(chunk));
      this.pendingLength += chunk.length;
      if (this.carry.length + this.pendingLength < 2 * L) return null;
      const window = Buffer.concat([this.carry, ...this.pending]);
      this.pending = [];
      this.pendingLength = 0;
      const found = this.scan(window, 0, window.length - L, false, this.carryBase);
      if (found !== null) return found;
      this.carryBase += window.length - L;
      this.carry = Buffer.from(window.subarray(window.length - L));
      return null;
    }
    if (this.pendingLength > 0) {
      this.carry = Buffer.concat([this.carry, ...this.pending]);
      this.pending = [];
      this.pendingLength = 0;
    }
    const chunkBase = this.total - chunk.length;
    if (this.carry.length > 0) {
      // the carried positions, with their lookahead taken from this chunk
      const junction = Buffer.concat([this.carry, chunk.subarray(0, L)]);
      const found = this.scan(junction, 0, this.carry.length, false, this.carryBase);
      if (found !== null) return found;
    }
    const found = this.scan(chunk, 0, chunk.length - L, false, chunkBase);
    if (found !== null) return found;
    this.carry = Buffer.from(chunk.subarray(chunk.length - L));
    this.carryBase = chunkBase + chunk.length - L;
    return null;
  }

  finish(): string | null {
    const window = Buffer.concat([this.carry, ...this.pending]);
    this.carry = Buffer.alloc(0);
    this.pending = [];
    this.pendingLength = 0;
    return window.length === 0 ? null : this.scan(window, 0, window.length, true, this.carryBase);
  }
}

// ---- embedded programs -------------------------------------------------------------------------

const ELF = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
const PE = Buffer.from([0x50, 0x45, 0x00, 0x00]);
const MACHO_64 = Buffer.from([0xcf, 0xfa, 0xed, 0xfe]);
const MACHO_32 = Buffer.from([0xce, 0xfa, 0xed, 0xfe]);
// i386, ARM Thumb-2, IA-64, x86-64, ARM64
const PE_MACHINES = new Set([0x014c, 0x01c4, 0x0200, 0x8664, 0xaa64]);
const EXECUTABLE_LOOKAHEAD = 32;

function elfAt(b: Buffer, at: number): boolean {
  return at + 7 <= b.length && (b[at + 4] === 1 || b[at + 4] === 2) && (b[at + 5] === 1 || b[at + 5] === 2) && b[at + 6] === 1;
}

function peAt(b: Buffer, at: number): boolean {
  // COFF header after "PE\0\0": machine, section count (1..96), ..., optional header size (PE32/PE32+)
  if (at + 24 > b.length) return false;
  const sections = b.readUInt16LE(at + 6);
  const optional = b.readUInt16LE(at + 20);
  return PE_MACHINES.has(b.readUInt16LE(at + 4)) && sections >= 1 && sections <= 96 && (optional === 0xe0 || optional === 0xf0);
}

function machoAt(b: Buffer, at: number): boolean {
  // cputype x86/ARM (64-bit flag for cf fa ed fe), then a known filetype (1..12)
  if (at + 16 > b.length) return false;
  const cpu = b.readUInt32LE(at + 4);
  const wide = b[at] === 0xcf;
  const cpuOk = wide ? cpu === 0x01000007 || cpu === 0x0100000c : cpu === 7 || cpu === 12;
  const type = b.readUInt32LE(at + 12);
  return cpuOk && type >= 1 && type <= 12;
}

const PROGRAMS = [
  { sig: ELF, kind: 'ELF', check: elfAt },
  { sig: PE, kind: 'Windows PE', check: peAt },
  { sig: MACHO_64, kind: 'Mach-O', check: machoAt },
  { sig: MACHO_32, kind: 'Mach-O', check: machoAt },
] as const;

/** The programs' first two bytes, for PairScanner (pair-scan.ts). */
export const PROGRAM_ANCHOR_PAIRS: readonly BytePair[] = [
  { first: [ELF[0]!, PE[0]!], second: [ELF[1]!] }, // 7f 'E' and 'P' 'E'
  { first: [MACHO_64[0]!, MACHO_32[0]!], second: [MACHO_64[1]!] },
];
const programAnchors = new PairScanner(PROGRAM_ANCHOR_PAIRS);
const PROGRAM_FIRST_BYTE = new Uint8Array(256);
for (const { sig } of PROGRAMS) PROGRAM_FIRST_BYTE[sig[0]!] = 1;

function signatureAt(b: Buffer, at: number, sig: Buffer): boolean {
  if (at + sig.length > b.length) return false;
  for (let k = 0; k < sig.length; k++) if (b[at + k] !== sig[k]) return false;
  return true;
}

/**
 * The first embedded program starting in [from, to): its kind and offset. `anchors`: ascending
 * candidates of a PairScanner holding PROGRAM_ANCHOR_PAIRS over at least [from, to).
 */
export function findExecutable(b: Buffer, from: number, to: number, anchors?: Int32Array): { kind: string; offset: number } | null {
  for (const at of anchors ?? programAnchors.candidates(b, from, to)) {
    if (at >= to) break;
    if (at < from || PROGRAM_FIRST_BYTE[b[at]!] === 0) continue; // most candidates are markers
    for (const program of PROGRAMS) {
      if (signatureAt(b, at, program.sig) && program.check(b, at)) return { kind: program.kind, offset: at };
    }
  }
  return null;
}

// ---- the inspector -----------------------------------------------------------------------------

const windowAnchors = new PairScanner([...MARKER_ANCHOR_PAIRS, ...PROGRAM_ANCHOR_PAIRS]);

const ZIP_BASED = new Set(['docx', 'xlsx', 'pptx', 'odt', 'ods', 'odp', 'epub', 'zip', 'jar', 'apk']);
const OFFICE_PACKAGES = new Set(['docx', 'xlsx', 'pptx', 'odt', 'ods', 'odp']);
// "_VBA_PROJECT" as a compound-file directory entry name (UTF-16LE): Word's Macros/VBA storage,
// Excel's _VBA_PROJECT_CUR, PowerPoint's VBA project.
const CFB_VBA = Buffer.from('_VBA_PROJECT', 'utf16le');

/**
 * Inspects one file as it streams. `feed` each chunk in order (a reason string comes back as soon
 * as the file is certain to be refused, else null), then `finish` for the verdict on the whole.
 * After a refusal further calls return the same reason. The reason becomes the CONTENT_MISMATCH
 * message; it says what was found and where ("active content (<?php) after the PNG image data at
 * offset 73 in .png file").
 */
export class ContentInspector {
  readonly ext: string;
  private problem: string | null = null;
  private bytesSeen = 0;
  private readonly window: WindowedScan;
  private readonly image: ImageWalker | null;
  private readonly pdf: PdfScanner | null;
  private readonly office: OfficePackageWalker | null;
  private readonly tail: TailKeeper | null;
  private readonly textKind: boolean;
  private readonly programs: boolean;
  private readonly cfb: boolean;
  private readonly markers: MarkerSet;

  constructor(ext: string) {
    this.ext = ext.toLowerCase();
    const kind = fileKind(this.ext);
    this.textKind = kind?.text === true;
    const binary = kind !== undefined && kind.text !== true;
    const expected: readonly string[] = kind?.expected ?? [];
    // programs inside images, videos and documents; archives and audio ('other') may hold anything
    this.programs = kind !== undefined && kind.category !== 'other' && !this.textKind;
    this.cfb = expected.includes('cfb');
    this.markers = kind?.rawSamples === true ? 'unambiguous' : 'all';
    this.image = binary ? imageWalkerFor(this.ext) : null;
    this.pdf = expected.includes('pdf') ? new PdfScanner() : null;
    this.office = OFFICE_PACKAGES.has(this.ext) ? new OfficePackageWalker() : null;
    this.tail = binary && kind.category !== 'other' && !ZIP_BASED.has(this.ext) ? new TailKeeper(ZIP_TAIL_BYTES) : null;
    this.window = new WindowedScan(Math.max(MARKER_LOOKAHEAD, EXECUTABLE_LOOKAHEAD, CFB_VBA.length), (bytes, from, to, atEnd, base) =>
      this.scanWindow(bytes, from, to, atEnd, base),
    );
  }

  /** The refusal reason so far, or null. */
  get failure(): string | null {
    return this.problem;
  }

  /** Bytes fed so far. */
  get size(): number {
    return this.bytesSeen;
  }

  feed(chunk: Uint8Array): string | null {
    if (this.problem !== null || chunk.length === 0) return this.problem;
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.bytesSeen += bytes.length;
    // structure first, so a finding in this chunk can be placed
    this.image?.feed(bytes);
    this.pdf?.feed(bytes);
    this.office?.feed(bytes);
    this.tail?.feed(bytes);
    this.problem = this.structureProblem() ?? this.window.feed(bytes);
    return this.problem;
  }

  finish(): string | null {
    if (this.problem !== null) return this.problem;
    this.image?.finish();
    this.pdf?.finish();
    this.office?.finish();
    this.problem = this.structureProblem() ?? this.window.finish();
    if (this.problem === null && this.tail !== null && endsWithZip(this.tail.bytes())) {
      this.problem = `a zip archive appended to a .${this.ext} file`;
    }
    return this.problem;
  }

  private structureProblem(): string | null {
    const found = this.image?.problem ?? this.pdf?.problem ?? this.office?.problem ?? null;
    return found === null ? null : `${found} in .${this.ext} file`;
  }

  private scanWindow(bytes: Buffer, from: number, to: number, atEnd: boolean, base: number): string | null {
    // one pass finds the anchors of both the markers and the programs
    const anchors = windowAnchors.candidates(bytes, from, to + MARKER_ANCHOR_REACH);
    const hit = scanActiveContent(bytes, from, to, atEnd, this.markers, anchors);
    if (hit !== undefined) return this.describe(`active content (${hit.marker})`, base + hit.offset);
    if (this.textKind) {
      const nul = bytes.indexOf(0, from);
      if (nul !== -1 && nul < to) return `binary data (NUL at offset ${base + nul}) in .${this.ext} file`;
    }
    if (this.programs) {
      const program = findExecutable(bytes, from, to, anchors);
      if (program !== null) return this.describe(`an embedded ${program.kind} program`, base + program.offset);
    }
    if (this.cfb) {
      const at = bytes.indexOf(CFB_VBA, from);
      if (at !== -1 && at < to) return `Office document with VBA macros (_VBA_PROJECT) in .${this.ext} file`;
    }
    return null;
  }

  private describe(what: string, offset: number): string {
    const region = this.image?.regionAt(offset);
    const where = region === undefined ? '' : region.startsWith('after') ? ` ${region}` : ` in ${region}`;
    return `${what}${where} at offset ${offset} in .${this.ext} file`;
  }
}

/** Inspects a complete buffer (in `chunkSize` pieces, as an upload would arrive). */
export function inspectBytes(ext: string, bytes: Uint8Array, chunkSize = 64 * 1024): string | null {
  const inspector = new ContentInspector(ext);
  for (let at = 0; at < bytes.length; at += chunkSize) {
    const found = inspector.feed(bytes.subarray(at, Math.min(bytes.length, at + chunkSize)));
    if (found !== null) return found;
  }
  return inspector.finish();
}

/** Inspects a file on disk, streamed (the `inspect` command and the false-positive bench). */
export async function inspectFile(ext: string, path: string): Promise<string | null> {
  const inspector = new ContentInspector(ext);
  for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 })) {
    const found = inspector.feed(chunk as Buffer);
    if (found !== null) return found;
  }
  return inspector.finish();
}
