// Content inspection: does the head of an uploaded file agree with its extension, and is there
// active content (PHP, JSP/ASP, HTML, SVG, script URLs) in it? Pure decision, no I/O: the caller
// buffers the first SNIFF_BYTES of each file part and asks once. The marker scanner here is also
// what content-inspector.ts runs over every byte of the file as it streams.
//
// Magic bytes are not a safety proof (a GIF89a/PHP polyglot is a valid GIF), so two independent
// checks run: the sniffed type must be one the extension allows (file-kinds.ts), and the head must
// not contain any ACTIVE_CONTENT_MARKERS. Both only ever see the bounded head: file-type's parsers
// have a history of DoS bugs on hostile input (research/ecosystem.md §3).

import { fileTypeFromBuffer } from 'file-type';
import { fileKind } from './file-kinds.js';
import { type BytePair, PairScanner } from './pair-scan.js';

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
  /** `<?` short open tag (on by default when PHP runs without a php.ini, as the official Docker
   *  images do): whitespace then a code run of at least SHORT_TAG_MIN_CODE bytes, or code glued to
   *  the tag (`<?system($_GET[0])?>`) that calls, interpolates or shells out: see phpWordRun */
  | 'php-short'
  /** `<%` JSP/ASP scriptlet: a code run of at least ASP_MIN_CODE bytes closed by `%>` */
  | 'asp';

export interface ActiveContentMarker {
  /** matched case-insensitively (ASCII letters only) */
  readonly text: string;
  readonly follow: MarkerFollow;
}

/**
 * Byte sequences that make a file dangerous whatever its magic bytes say: PHP open tags (an upload
 * directory that a PHP server includes or executes), JSP/ASP scriptlets, the PHP phar stub
 * terminator, and HTML/SVG/script-URL markers (content a browser may sniff and run). Order matters
 * only for reporting: the first match at a position wins.
 *
 * The `follow` rules exist for false positives in compressed/encrypted data, which is what most of
 * every large upload looks like: in random bytes `<?=` turns up once per 16 MiB and `<?` plus a
 * space once per 4 MiB. With the rules, 64 GiB of random data in 64 KiB windows (2^20 heads) gave
 * no hit; the unit test scans 200 MiB and expects none; bench/content-false-positives.mjs scans
 * GiBs of random data and the media files of the machine it runs on (docs/content-inspection.md).
 */
export const ACTIVE_CONTENT_MARKERS: readonly ActiveContentMarker[] = Object.freeze([
  { text: '<?php', follow: 'space' },
  { text: '<?=', follow: 'php-code' },
  { text: '<?', follow: 'php-short' },
  { text: '<%', follow: 'asp' },
  { text: '<script', follow: 'tag' },
  { text: '<html', follow: 'tag' },
  { text: '<svg', follow: 'tag' },
  { text: '<iframe', follow: 'tag' },
  { text: '<body', follow: 'tag' },
  { text: '<object', follow: 'tag' },
  { text: '<embed', follow: 'tag' },
  { text: '<!doctype html', follow: 'tag' },
  { text: 'javascript:', follow: 'any' },
  { text: '__halt_compiler', follow: 'any' },
] as const satisfies readonly ActiveContentMarker[]);

/**
 * How far past a marker's first byte the follow rules may read: a scanner that sees a window of
 * bytes decides every marker starting at least this far before the window's end exactly as it
 * would with the whole file (content-inspector.ts keeps this many bytes between chunks).
 */
export const MARKER_LOOKAHEAD = 4096 + 64;

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

const compiledMarker = (m: ActiveContentMarker): CompiledMarker => ({ ...m, ...compile(m.text) });
// Markers are found through their anchors (MARKER_ANCHOR_PAIRS below): '<' for the tags, the
// ':' ending `javascript:`, the '__' starting `__halt_compiler`.
const LT_MARKERS: readonly CompiledMarker[] = ACTIVE_CONTENT_MARKERS.filter((m) => m.text.startsWith('<')).map(compiledMarker);
const JS_URL = compiledMarker(ACTIVE_CONTENT_MARKERS.find((m) => m.text === 'javascript:')!);
const HALT = compiledMarker(ACTIVE_CONTENT_MARKERS.find((m) => m.text === '__halt_compiler')!);
const HALT_COMPILER = compile('__halt_compiler');
const XML_PI = [compile('xml'), compile('xpacket')];
const LT = 0x3c;
const UNAMBIGUOUS_LT_MARKERS: readonly CompiledMarker[] = LT_MARKERS.filter((m) => m.follow !== 'php-code' && m.follow !== 'php-short' && m.follow !== 'asp');
/**
 * The '<' markers by the byte after the '<' (both cases of a letter), in list order: a candidate
 * is compared with the one to three markers it can start, not all twelve (random data has ~250
 * such candidates per MiB).
 */
function bySecondByte(markers: readonly CompiledMarker[]): readonly (readonly CompiledMarker[] | undefined)[] {
  const table: CompiledMarker[][] = [];
  for (const m of markers) {
    const second = m.bytes[1]!;
    for (const b of m.letter[1] === 1 ? [second, second & ~0x20] : [second]) (table[b] ??= []).push(m);
  }
  return Array.from({ length: 256 }, (_, b) => table[b]);
}
const LT_BY_SECOND = bySecondByte(LT_MARKERS);
const UNAMBIGUOUS_LT_BY_SECOND = bySecondByte(UNAMBIGUOUS_LT_MARKERS);
const COLON = 0x3a;
const UNDERSCORE = 0x5f;

/**
 * The markers' anchors as byte pairs (pair-scan.ts): '<' and the second byte of a '<' marker, the
 * "t:" ending `javascript:`, the "__" starting `__halt_compiler`. A scan for them must reach
 * MARKER_ANCHOR_REACH bytes past the last marker start it decides (the ':' is that far in).
 */
// Second bytes of the '<' markers, both cases for letters.
const LT_SECOND_BYTES = LT_BY_SECOND.flatMap((markers, b) => (markers === undefined ? [] : [b]));
const isLetter = (b: number): boolean => ((b | 0x20) >= 0x61 && (b | 0x20) <= 0x7a);
export const MARKER_ANCHOR_PAIRS: readonly BytePair[] = [
  // two pairs for '<' (tag letters; '?', '%', '!'): each widens less in the nibble tables than one
  { first: [LT], second: LT_SECOND_BYTES.filter(isLetter) },
  { first: [LT], second: LT_SECOND_BYTES.filter((b) => !isLetter(b)) },
  { first: [0x74, 0x54], second: [COLON] },
  { first: [UNDERSCORE], second: [UNDERSCORE] },
];
export const MARKER_ANCHOR_REACH = JS_URL.bytes.length;
const markerAnchors = new PairScanner(MARKER_ANCHOR_PAIRS);
const COMMENT_END = Buffer.from('*/', 'latin1');

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
// Code glued to `<?` starts like a PHP statement: a letter, `$`, `_`, a backtick, `(` or `@`.
const PHP_WORD_START = byteTable([...range(0x41, 0x5a), ...range(0x61, 0x7a), 0x24, 0x5f, 0x60, 0x28, 0x40]);
// ...and only counts when it does something: calls `(`, reads a variable `$`, or shells out.
const PHP_ACTION = byteTable([0x28, 0x24, 0x60]);
// `<%` scriptlets: `<%=`, `<%@`, `<%!`, `<%#`, `<%:`, `<%$`, `<%--`, whitespace, or code.
const ASP_START = byteTable([...range(0x41, 0x5a), ...range(0x61, 0x7a), 0x3d, 0x40, 0x21, 0x23, 0x3a, 0x24, 0x2d, 0x09, 0x0a, 0x0d, 0x20]);
// `<%` plus a closed code run this long: one random 64 KiB window in ~2^40 (`<%=x%>` is inert).
const ASP_MIN_CODE = 6;
// A code run this long with no end in sight counts as code: it bounds the work per marker, and is
// what MARKER_LOOKAHEAD is made of.
const MAX_CODE_RUN = 4096;
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
  if (at < 0 || at + len > bytes.length) return false;
  for (let k = 0; k < len; k++) {
    const b = bytes[at + k]!;
    if ((m.letter[k] === 1 ? b | 0x20 : b) !== m.bytes[k]) return false;
  }
  return true;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Where a marker was found: its text and the offset of its first byte in the scanned bytes. */
export interface MarkerHit {
  readonly marker: string;
  readonly offset: number;
}

/**
 * Scans bytes for the first active-content marker and returns its text, or undefined.
 * `atEnd`: the bytes end where the file ends. Otherwise a marker whose follow rule is cut off by
 * the end still counts (the code may continue past what we can see), except a bare `<?` or `<%`.
 * Linear time, including on hostile input such as `<?=<?=<?=...`.
 */
export function findActiveContent(bytes: Uint8Array, atEnd = true, markers: MarkerSet = 'all'): string | undefined {
  return scanActiveContent(bytes, 0, bytes.length, atEnd, markers)?.marker;
}

/**
 * 'all' markers, or only the 'unambiguous' ones: uncompressed pixels or audio samples are long
 * runs of printable bytes in which `<?=`, `<?` and `<%` followed by "code" up to `?>` / `%>` turn up
 * every few KiB (a dark 1 MB TIFF has several), so for kinds with rawSamples (file-kinds.ts) only
 * `<?php ` and the tag, URL and phar markers count, which stay rare in any data.
 */
export type MarkerSet = 'all' | 'unambiguous';

/**
 * The first marker starting in [from, to) of `bytes`; the follow rules may read up to the end of
 * `bytes` (a streaming caller passes MARKER_LOOKAHEAD bytes beyond `to`). Offsets are into `bytes`.
 */
export function scanActiveContent(
  bytes: Uint8Array,
  from: number,
  to: number,
  atEnd: boolean,
  markers: MarkerSet = 'all',
  /** ascending candidates of a PairScanner holding MARKER_ANCHOR_PAIRS, over [from, to + MARKER_ANCHOR_REACH) */
  anchors?: Int32Array,
): MarkerHit | undefined {
  const buf = asBuffer(bytes);
  const ltBySecond = markers === 'all' ? LT_BY_SECOND : UNAMBIGUOUS_LT_BY_SECOND;
  const n = buf.length;
  const end = Math.min(to, n);
  const candidates = anchors ?? markerAnchors.candidates(buf, from, end + MARKER_ANCHOR_REACH);
  // A code run that stopped at a non-code byte without a closing tag proves the same for every
  // later run that starts before that byte: remember where, so the scan stays linear.
  let deadRunEnd = -1;
  let deadAspEnd = -1;
  let idleWordEnd = -1;

  // PHP comments and string literals may hold any byte (`<?=/*\xff*/system('id')?>`): skip them
  // whole. Returns the index after the literal, or -1 when it does not close before `stop` (then
  // the run is not treated as code: an unterminated comment or string is a parse error).
  // `#` and `//` comments end at a line break or at `?>` (which closes PHP mode there too).
  const skipLiteral = (at: number, stop: number): number => {
    const b = buf[at]!;
    if (b === 0x2f /* / */ && buf[at + 1] === 0x2a /* * */) {
      const close = buf.subarray(0, stop).indexOf(COMMENT_END, at + 2);
      return close !== -1 && close + 2 <= stop ? close + 2 : -1;
    }
    if (b === 0x22 /* " */ || b === 0x27 /* ' */) {
      for (let j = at + 1; j < stop; j++) {
        if (buf[j] === 0x5c /* \ */) j++;
        else if (buf[j] === b) return j + 1;
      }
      return -1;
    }
    // '#' or '//': up to the line break or the `?>`, which the caller then sees
    for (let j = at + 1; j < stop; j++) {
      const c = buf[j]!;
      if (c === 0x0a || c === 0x0d) return j;
      if (c === 0x3f && buf[j + 1] === 0x3e) return j;
    }
    return -1;
  };
  const startsLiteral = (j: number): boolean => {
    const b = buf[j]!;
    return b === 0x22 || b === 0x27 || b === 0x23 || (b === 0x2f && (buf[j + 1] === 0x2a || buf[j + 1] === 0x2f));
  };

  // True when PHP would run code starting at `start`: a run of at least `minLength` code bytes up
  // to the first `?>`, up to `__halt_compiler`, up to the end of what we can see (PHP needs no
  // closing tag at end of file), or MAX_CODE_RUN long. A too-short run before `?>` is left
  // unmemoised: a later marker inside it may still start a longer run up to the same `?>`.
  const phpCodeRun = (start: number, minLength: number): boolean => {
    if (start <= deadRunEnd) return false;
    const stop = Math.min(n, start + MAX_CODE_RUN);
    for (let j = start; j < stop; j++) {
      const b = buf[j]!;
      if (b === 0x3f /* ? */ && j + 1 < n && buf[j + 1] === 0x3e /* > */) return j - start >= minLength;
      if (b === 0x5f /* _ */ && matchesAt(buf, j, HALT_COMPILER)) return true;
      if (startsLiteral(j)) {
        const after = skipLiteral(j, stop);
        if (after === -1) {
          // cut by the end of a partial window: undecided, counts like any run cut there
          if (stop === n && !atEnd) return n - start >= minLength;
          deadRunEnd = j;
          return false;
        }
        j = after - 1;
        continue;
      }
      if (PHP_CODE[b] === 0) {
        deadRunEnd = j;
        return false;
      }
    }
    return stop - start >= minLength;
  };

  // Code glued to a short open tag: `<?system($_GET[0])?>`. Counts when the run (to `?>`, the end,
  // or MAX_CODE_RUN) is at least SHORT_TAG_MIN_CODE long, contains a PHP_ACTION byte and is not
  // an XML processing instruction (`<?xml`, `<?xpacket`: XMP metadata in every other JPEG).
  const phpWordRun = (start: number): boolean => {
    if (start <= deadRunEnd || start <= idleWordEnd) return false;
    if (XML_PI.some((pi) => matchesAt(buf, start, pi))) return false;
    const stop = Math.min(n, start + MAX_CODE_RUN);
    let action = false;
    for (let j = start; j < stop; j++) {
      const b = buf[j]!;
      if (b === 0x3f && j + 1 < n && buf[j + 1] === 0x3e) {
        if (action && j - start >= SHORT_TAG_MIN_CODE) return true;
        // every later start before this `?>` sees a shorter run without more actions
        if (!action) idleWordEnd = j;
        return false;
      }
      if (startsLiteral(j)) {
        const after = skipLiteral(j, stop);
        if (after === -1) return stop === n && !atEnd && action && n - start >= SHORT_TAG_MIN_CODE;
        j = after - 1;
        continue;
      }
      if (PHP_CODE[b] === 0) {
        deadRunEnd = j;
        return false;
      }
      if (PHP_ACTION[b] === 1) action = true;
    }
    return action && stop - start >= SHORT_TAG_MIN_CODE;
  };

  // `<%` scriptlet: ASP and JSP refuse an unclosed one, so the `%>` must be in sight.
  const aspRun = (start: number): boolean => {
    if (start <= deadAspEnd || start >= n || ASP_START[buf[start]!] === 0) return false;
    const stop = Math.min(n, start + MAX_CODE_RUN);
    for (let j = start; j < stop; j++) {
      const b = buf[j]!;
      if (b === 0x25 /* % */ && j + 1 < n && buf[j + 1] === 0x3e /* > */) return j - start >= ASP_MIN_CODE;
      if (PHP_CODE[b] === 0) {
        deadAspEnd = j;
        return false;
      }
    }
    return false;
  };

  // The bytes after a tag end look like markup (or are cut by the end of the bytes).
  const markupFollows = (start: number): boolean => {
    const stop = Math.min(n, start + TAG_TAIL - 1);
    for (let j = start; j < stop; j++) if (MARKUP[buf[j]!] === 0) return false;
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
        return cut ? !atEnd : SPACE[buf[next]!] === 1;
      case 'tag':
        return cut ? !atEnd : TAG_END[buf[next]!] === 1 && markupFollows(next + 1);
      case 'php-short':
        if (cut) return false;
        if (PHP_SPACE[buf[next]!] === 1) return phpCodeRun(next + 1, SHORT_TAG_MIN_CODE);
        return PHP_WORD_START[buf[next]!] === 1 && phpWordRun(next);
      case 'asp':
        return aspRun(next);
    }
  };

  let best: MarkerHit | undefined;
  // '<' markers, in position order. A '<' in the last byte is no candidate (it has no byte after
  // it), and no marker fits there either.
  for (const i of candidates) {
    if (i >= end) break;
    if (i < from || buf[i] !== LT) continue;
    const possible = ltBySecond[buf[i + 1]!];
    if (possible === undefined) continue;
    const m = possible.find((c) => matchesAt(buf, i, c) && followOk(c, i + c.bytes.length));
    if (m !== undefined) {
      best = { marker: m.text, offset: i };
      break;
    }
  }
  // `javascript:`, found by its "t:" (the ':' is 1 byte in 256 of random data, 'j' would be 2).
  const jsLimit = best?.offset ?? end;
  const back = JS_URL.bytes.length - 1;
  for (const t of candidates) {
    const c = t + 1;
    if (c - back >= jsLimit) break;
    if (c - back < from || buf[c] !== COLON || (buf[t]! | 0x20) !== 0x74 /* t */) continue;
    if (matchesAt(buf, c - back, JS_URL)) {
      best = { marker: JS_URL.text, offset: c - back };
      break;
    }
  }
  const haltLimit = best?.offset ?? end;
  for (const u of candidates) {
    if (u >= haltLimit) break;
    if (u < from || buf[u] !== UNDERSCORE || buf[u + 1] !== UNDERSCORE) continue;
    if (matchesAt(buf, u, HALT)) {
      best = { marker: HALT.text, offset: u };
      break;
    }
  }
  return best;
}

const ALNUM = byteTable([...range(0x30, 0x39), ...range(0x41, 0x5a), ...range(0x61, 0x7a)]);

/**
 * The strict form of the marker scan, for bytes a format declares to be text: PNG tEXt/zTXt/iTXt
 * chunks, JPEG COM and XMP segments, GIF comment extensions. Text has no business holding markup
 * or code, so the follow rules shrink to: a tag counts when its name is whole (`<svg` not followed
 * by a letter or digit); `<%`, `<?php`, `<?=` and `<?` plus whitespace always count; and `<?`
 * glued to a name is a processing instruction (`<?xpacket`, `<?adobe-xap-filters` in XMP) unless
 * what follows up to `?>` calls, interpolates or shells out (`(`, `$`, a backtick).
 */
export function findMarkersInText(bytes: Uint8Array): string | undefined {
  const buf = asBuffer(bytes);
  for (let i = buf.indexOf(LT); i !== -1; i = buf.indexOf(LT, i + 1)) {
    for (const m of LT_MARKERS) {
      if (!matchesAt(buf, i, m)) continue;
      const next = i + m.bytes.length;
      if (m.text === '<?' && next < buf.length && ALNUM[buf[next]!] === 1 && !processingInstructionActs(buf, next)) continue;
      if (m.follow === 'tag' && next < buf.length && ALNUM[buf[next]!] === 1) continue;
      return m.text;
    }
  }
  return scanActiveContent(buf, 0, buf.length, true)?.marker;
}

/** `<?name ...?>`: does the text up to `?>` (or the end) do anything PHP-like? XML/XMP never does. */
function processingInstructionActs(buf: Buffer, start: number): boolean {
  if (XML_PI.some((pi) => matchesAt(buf, start, pi))) return false;
  const close = buf.indexOf('?>', start, 'latin1');
  const end = close === -1 ? buf.length : close;
  for (let j = start; j < end; j++) if (PHP_ACTION[buf[j]!] === 1) return true;
  return false;
}

/** `#!/` or `#! /` at the start of a file: a script for whatever interpreter it names. */
export function startsWithShebang(head: Uint8Array): boolean {
  return head[0] === 0x23 && head[1] === 0x21 && (head[2] === 0x2f || (head[2] === 0x20 && head[3] === 0x2f));
}

/** file-type results that are programs: refused under any extension the guard does not know. */
const EXECUTABLE_TYPES = new Set(['exe', 'elf', 'macho', 'class', 'swf', 'wasm', 'dex', 'lnk', 'msi', 'apk', 'jar', 'xpi', 'crx']);

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
 * Rules: active content anywhere in the head, and a `#!` script line at its start, are refused for
 * every kind. Binary kinds must sniff as
 * one of their expected types; an empty file is refused. For docx/xlsx/pptx a 'zip' answer from a
 * partial head is accepted only when the head shows the format's part directory (looksLikeOoxmlHead);
 * from a complete file, or without such parts, "a zip is not a docx". Text kinds must not contain
 * NUL, nor sniff as a binary type while holding control bytes (a CSV starting "BM" sniffs as bmp
 * but is still text). Extensions the guard does not know pass with whatever was detected, unless
 * that is a program (EXECUTABLE_TYPES): config validation is where unknown extensions are flagged.
 *
 * This is the head verdict only. The rest of the file (image metadata, data after the image's end,
 * PDF actions, Office macros, the marker scan of every byte) is ContentInspector's
 * (content-inspector.ts), which the upload path feeds while the file streams.
 */
export async function checkContent(ext: string, head: Uint8Array, isComplete: boolean): Promise<ContentVerdict> {
  const bounded = head.length > SNIFF_BYTES ? head.subarray(0, SNIFF_BYTES) : head;
  const complete = isComplete && head.length <= SNIFF_BYTES;
  const kind = fileKind(ext);
  const extension = ext.toLowerCase();

  const marker = findActiveContent(bounded, complete, kind?.rawSamples === true ? 'unambiguous' : 'all');
  if (marker !== undefined) return mismatch(`active content (${marker}) in .${extension} file`);
  if (startsWithShebang(bounded)) return mismatch(`script (#!) in .${extension} file`);

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
    if (detected !== undefined && EXECUTABLE_TYPES.has(detected)) return mismatch(`content is a program (${detected}), not a .${extension} file`);
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
