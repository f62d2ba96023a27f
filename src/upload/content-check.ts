// Content inspection: does the head of an uploaded file agree with its extension, and is there
// active content (PHP, HTML, SVG, script URLs) in it? Pure decision, no I/O: the caller buffers
// the first SNIFF_BYTES of each file part and asks once.
//
// Magic bytes are not a safety proof (a GIF89a/PHP polyglot is a valid GIF), so two independent
// checks run: the sniffed type must be one the extension allows (file-kinds.ts), and the head must
// not contain any ACTIVE_CONTENT_MARKERS. Both only ever see the bounded head: file-type's parsers
// have a history of DoS bugs on hostile input (research/ecosystem.md §3).

import { fileTypeFromBuffer } from 'file-type';
import { fileKind } from './file-kinds.js';

/**
 * How many leading bytes of a file the caller buffers before calling checkContent.
 *
 * file-type needs 4100 bytes for most formats, but OOXML (docx/xlsx/pptx) is recognised by reading
 * [Content_Types].xml inside the zip. Word, Excel and PowerPoint write it as the first entry (about
 * 1-2 KiB compressed), so 4100 bytes usually suffice, but the zip format fixes no order and other
 * writers put it after the document parts, behind e.g. a large embedded image. 64 KiB holds the
 * Office order with a wide margin and, for the other order, the first local headers naming the
 * `word/`, `xl/` or `ppt/` parts (see looksLikeOoxmlHead). It also lets file-type's PNG chunk walk
 * step over large metadata chunks, and is small enough to hold per file while a part streams.
 */
export const SNIFF_BYTES = 64 * 1024;

export type ContentVerdict =
  | { ok: true; detected?: string }
  | { ok: false; code: 'CONTENT_MISMATCH'; reason: string };

/** How the bytes after a marker must look for it to count (keeps random binary data from matching). */
export type MarkerFollow =
  /** nothing required */
  | 'any'
  /** whitespace, or the end of a partial head (`<?php` needs a space to open PHP mode) */
  | 'space'
  /** an HTML tag end (whitespace, `/`, `>`) followed by printable ASCII, as attributes are; or
   *  the end of a partial head */
  | 'tag'
  /** a PHP code run of at least one byte: see phpCodeRun */
  | 'php-code'
  /** whitespace, then a PHP code run of at least SHORT_TAG_MIN_CODE bytes (`<? ` short open tag:
   *  on by default when PHP runs without a php.ini, as the official Docker images do) */
  | 'php-short';

export interface ActiveContentMarker {
  /** matched case-insensitively (ASCII letters only) */
  readonly text: string;
  readonly follow: MarkerFollow;
}

/**
 * Byte sequences that make a file dangerous whatever its magic bytes say: PHP open tags (an upload
 * directory that a PHP server includes or executes), and HTML/SVG/script-URL markers (content a
 * browser may sniff and run). Order matters only for reporting: the first match at a position wins.
 *
 * The `follow` rules exist for false positives in compressed/encrypted data, which is what the
 * head of most large uploads looks like: in random bytes `<?=` turns up once per 16 MiB and `<?`
 * plus a space once per 4 MiB. With the rules, 64 GiB of random data in 64 KiB windows (2^20
 * heads) gave no hit; the unit test scans 200 MiB and expects none.
 */
export const ACTIVE_CONTENT_MARKERS: readonly ActiveContentMarker[] = Object.freeze([
  { text: '<?php', follow: 'space' },
  { text: '<?=', follow: 'php-code' },
  { text: '<?', follow: 'php-short' },
  { text: '<script', follow: 'tag' },
  { text: '<html', follow: 'tag' },
  { text: '<svg', follow: 'tag' },
  { text: '<iframe', follow: 'tag' },
  { text: '<!doctype html', follow: 'tag' },
  { text: 'javascript:', follow: 'any' },
] as const satisfies readonly ActiveContentMarker[]);

// Compiled once: each marker byte lower-cased, plus whether it is a letter (only letters are
// compared case-insensitively: OR-ing 0x20 into a non-letter would let e.g. 0x1C match '<').
interface CompiledMarker {
  readonly text: string;
  readonly follow: MarkerFollow;
  readonly bytes: Uint8Array;
  readonly letter: Uint8Array;
}

function compile(text: string): { bytes: Uint8Array; letter: Uint8Array } {
  const bytes = new Uint8Array(text.length);
  const letter = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.toLowerCase().charCodeAt(i);
    bytes[i] = c;
    letter[i] = c >= 0x61 && c <= 0x7a ? 1 : 0;
  }
  return { bytes, letter };
}

const LT_MARKERS: readonly CompiledMarker[] = ACTIVE_CONTENT_MARKERS.filter((m) => m.text.startsWith('<')).map(
  (m) => ({ ...m, ...compile(m.text) }),
);
const J_MARKERS: readonly CompiledMarker[] = ACTIVE_CONTENT_MARKERS.filter((m) => !m.text.startsWith('<')).map(
  (m) => ({ ...m, ...compile(m.text) }),
);
const HALT_COMPILER = compile('__halt_compiler');

// Byte classes as lookup tables (no per-call allocation or regex).
const SPACE = byteTable([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20]);
const PHP_SPACE = byteTable([0x09, 0x0a, 0x0d, 0x20]);
const TAG_END = byteTable([0x09, 0x0a, 0x0c, 0x0d, 0x20, 0x2f, 0x3e]);
// What PHP source between `<?=` and `?>` is made of in practice: printable ASCII, tabs and line
// breaks. Any other byte ends the run as "not PHP" (random data: a run is ~1.6 bytes long).
const PHP_CODE = byteTable([0x09, 0x0a, 0x0d, ...range(0x20, 0x7e)]);
// What follows an HTML tag name: attributes or markup, i.e. printable ASCII.
const MARKUP = byteTable([0x09, 0x0a, 0x0c, 0x0d, ...range(0x20, 0x7e)]);
// How many bytes after a tag name must be MARKUP (tag end included).
const TAG_TAIL = 8;
// `<? ` is common enough in random data (1 in 4 MiB) that its code run must be a few bytes long
// (the shortest payload worth having, <? `id`?>, has 4).
const SHORT_TAG_MIN_CODE = 4;
// Control bytes that never occur in a text file (TAB, LF, VT, FF, CR and ESC do).
const TEXT_CONTROL = byteTable([...range(0x00, 0x08), ...range(0x0e, 0x1a), ...range(0x1c, 0x1f)]);

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let b = from; b <= to; b++) out.push(b);
  return out;
}

function byteTable(members: readonly number[]): Uint8Array {
  const table = new Uint8Array(256);
  for (const b of members) table[b] = 1;
  return table;
}

function matchesAt(bytes: Uint8Array, at: number, m: { bytes: Uint8Array; letter: Uint8Array }): boolean {
  const len = m.bytes.length;
  if (at + len > bytes.length) return false;
  for (let k = 0; k < len; k++) {
    const b = bytes[at + k]!;
    if ((m.letter[k] === 1 ? b | 0x20 : b) !== m.bytes[k]) return false;
  }
  return true;
}

/**
 * Scans bytes for the first active-content marker and returns its text, or undefined.
 * `atEnd`: the bytes end where the file ends. Otherwise a marker whose follow rule is cut off by
 * the end still counts (the code may continue past what we can see), except a bare `<?`.
 * Linear time, including on hostile input such as `<?=<?=<?=...`.
 */
export function findActiveContent(bytes: Uint8Array, atEnd = true): string | undefined {
  const n = bytes.length;
  // A `<?=` code run that stopped at a non-code byte without a closing tag proves the same for
  // every later run that starts before that byte: remember where, so the scan stays linear.
  let deadRunEnd = -1;

  // Returns true when PHP would run code starting at `start`: a run of at least `minLength` code
  // bytes up to the first `?>`, up to `__halt_compiler`, or up to the end of what we can see (PHP
  // needs no closing tag at end of file). A too-short run before `?>` is left unmemoised: a later
  // marker inside it may still start a longer run up to the same `?>`.
  const phpCodeRun = (start: number, minLength: number): boolean => {
    if (start <= deadRunEnd) return false;
    for (let j = start; j < n; j++) {
      const b = bytes[j]!;
      if (b === 0x3f /* ? */ && j + 1 < n && bytes[j + 1] === 0x3e /* > */) return j - start >= minLength;
      if (b === 0x5f /* _ */ && matchesAt(bytes, j, HALT_COMPILER)) return true;
      if (PHP_CODE[b] === 0) {
        deadRunEnd = j;
        return false;
      }
    }
    return n - start >= minLength;
  };

  // The bytes after a tag end look like markup (or are cut by the end of the bytes).
  const markupFollows = (start: number): boolean => {
    const end = Math.min(n, start + TAG_TAIL - 1);
    for (let j = start; j < end; j++) if (MARKUP[bytes[j]!] === 0) return false;
    return true;
  };

  const followOk = (m: CompiledMarker, next: number): boolean => {
    // Cut by the end of a partial head: undecidable, so it counts; except a bare `<?`, which would
    // end one in 65536 random-looking heads and refuse that many large uploads. At the end of the
    // file nothing follows, so a tag or `<?php` is inert.
    const cut = next >= n;
    switch (m.follow) {
      case 'any':
        return true;
      case 'php-code':
        return phpCodeRun(next, 1);
      case 'space':
        return cut ? !atEnd : SPACE[bytes[next]!] === 1;
      case 'tag':
        return cut ? !atEnd : TAG_END[bytes[next]!] === 1 && markupFollows(next + 1);
      case 'php-short':
        return !cut && PHP_SPACE[bytes[next]!] === 1 && phpCodeRun(next + 1, SHORT_TAG_MIN_CODE);
    }
  };

  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    let candidates: readonly CompiledMarker[];
    if (b === 0x3c /* < */) candidates = LT_MARKERS;
    else if ((b | 0x20) === 0x6a /* j */) candidates = J_MARKERS;
    else continue;
    for (const m of candidates) {
      if (matchesAt(bytes, i, m) && followOk(m, i + m.bytes.length)) return m.text;
    }
  }
  return undefined;
}

/** file-type on a bounded buffer; a parser error counts as "not recognised". */
async function sniff(bytes: Uint8Array): Promise<string | undefined> {
  if (bytes.length === 0) return undefined;
  try {
    return (await fileTypeFromBuffer(bytes))?.ext;
  } catch {
    return undefined;
  }
}

// The part directory each OOXML format keeps its content in (ECMA-376 conventions file-type uses).
const OOXML_PART_DIR: Readonly<Record<string, string>> = { docx: 'word/', xlsx: 'xl/', pptx: 'ppt/' };
const ZIP_LOCAL_HEADER = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
const CONTENT_TYPES_NAME = Buffer.from('[Content_Types].xml', 'latin1');

/**
 * For a zip head cut short before [Content_Types].xml: true when some local file header in the head
 * names an entry under the format's part directory and none names [Content_Types].xml (if that was
 * in the head, file-type has read it and its answer stands). Scanning for header signatures rather
 * than walking sizes also steps over entries with data descriptors.
 */
function looksLikeOoxmlHead(head: Uint8Array, partDir: string): boolean {
  const buf = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  const dir = Buffer.from(partDir, 'latin1');
  let sawPart = false;
  for (let at = buf.indexOf(ZIP_LOCAL_HEADER); at >= 0; at = buf.indexOf(ZIP_LOCAL_HEADER, at + 4)) {
    if (at + 30 > buf.length) break;
    const nameLength = buf.readUInt16LE(at + 26);
    const name = buf.subarray(at + 30, Math.min(at + 30 + nameLength, buf.length));
    if (name.equals(CONTENT_TYPES_NAME)) return false;
    if (name.length >= dir.length && dir.equals(name.subarray(0, dir.length))) sawPart = true;
  }
  return sawPart;
}

/** `II*\0` or `MM\0*` (classic TIFF, version 42) with an IFD offset past the header. */
function isTiffHeader(head: Uint8Array): boolean {
  if (head.length < 8) return false;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const little = head[0] === 0x49 && head[1] === 0x49;
  if (!little && !(head[0] === 0x4d && head[1] === 0x4d)) return false;
  return view.getUint16(2, little) === 42 && view.getUint32(4, little) >= 8;
}

function hasByteIn(bytes: Uint8Array, table: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (table[bytes[i]!] === 1) return true;
  return false;
}

function mismatch(reason: string): ContentVerdict {
  return { ok: false, code: 'CONTENT_MISMATCH', reason };
}

/**
 * Decides whether a file's leading bytes agree with its extension.
 *
 * @param ext lower-case extension without the dot (as whitelisted by the policy)
 * @param head the file's first bytes: SNIFF_BYTES of them, or the whole file when it is shorter.
 *   Anything beyond SNIFF_BYTES is ignored.
 * @param isComplete true when `head` is the entire file
 *
 * Rules: active content anywhere in the head is refused for every kind. Binary kinds must sniff as
 * one of their expected types; an empty file is refused. For docx/xlsx/pptx a 'zip' answer from a
 * partial head is accepted only when the head shows the format's part directory (looksLikeOoxmlHead);
 * from a complete file, or without such parts, "a zip is not a docx". Text kinds must not contain
 * NUL, nor sniff as a binary type while holding control bytes (a CSV starting "BM" sniffs as bmp
 * but is still text). Extensions the guard does not know pass with whatever was detected:
 * config validation is where unknown extensions are flagged.
 */
export async function checkContent(ext: string, head: Uint8Array, isComplete: boolean): Promise<ContentVerdict> {
  const bounded = head.length > SNIFF_BYTES ? head.subarray(0, SNIFF_BYTES) : head;
  const complete = isComplete && head.length <= SNIFF_BYTES;
  const kind = fileKind(ext);
  const extension = ext.toLowerCase();

  const marker = findActiveContent(bounded, complete);
  if (marker !== undefined) return mismatch(`active content (${marker}) in .${extension} file`);

  if (kind?.text === true) {
    if (bounded.includes(0)) return mismatch(`binary data (NUL) in .${extension} file`);
    const detected = await sniff(bounded);
    if (detected !== undefined && hasByteIn(bounded, TEXT_CONTROL)) {
      return mismatch(`content is ${detected}, not .${extension} text`);
    }
    return { ok: true };
  }

  if (kind === undefined) {
    const detected = await sniff(bounded);
    return detected === undefined ? { ok: true } : { ok: true, detected };
  }

  if (bounded.length === 0) return mismatch(`empty file is not a .${extension} file`);
  const detected = await sniff(bounded);
  if (detected === undefined) {
    // libtiff and others write the IFD after the image data; file-type follows the IFD offset and
    // gives up when it points past a partial head, so the header signature has to do.
    if (!complete && kind.expected.includes('tif') && isTiffHeader(bounded)) return { ok: true, detected: 'tif' };
    return mismatch(`content not recognised as .${extension}`);
  }
  if (kind.expected.includes(detected)) return { ok: true, detected };

  const partDir = OOXML_PART_DIR[extension];
  if (detected === 'zip' && partDir !== undefined) {
    if (!complete && looksLikeOoxmlHead(bounded, partDir)) return { ok: true, detected };
    return mismatch(`a zip is not a .${extension} file`);
  }
  return mismatch(`content is ${detected}, not .${extension}`);
}
