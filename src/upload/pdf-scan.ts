// Streaming PDF inspection for ContentInspector: is there anything in the file a PDF reader would
// run? Decision (docs/content-inspection.md): refuse PDFs that carry JavaScript (/JavaScript
// actions or name trees, /JS), launch actions (/Launch), Flash (/RichMedia) or XFA forms (/XFA,
// which carry their own scripts). /OpenAction and /AA are not refused by themselves: pdfTeX,
// Word and most producers use /OpenAction for the initial view; what an action *does* is named by
// its /S type, and the dangerous types are exactly the refused names.
//
// How: a tokenizer over the object syntax (names with #xx escapes decoded, literal strings and
// comments skipped, so "(/JavaScript)" in a title is not a name) plus:
//   - stream data is skipped for the short names (/JS, /XFA: random binary would hit them) but
//     still searched for the long ones (/JavaScript, /Launch, /RichMedia: no random hits);
//   - object streams (PDF 1.5 /Type /ObjStm, which hold dictionaries compressed) are collected,
//     inflated and tokenized like the file itself. An object stream the guard cannot decode (a
//     filter other than FlateDecode, DecodeParms, larger than OBJSTM_MAX, corrupt or encrypted)
//     is refused as uninspectable, as is inflating more than the budget (a decompression bomb).
// Memory per file is bounded by OBJSTM_MAX plus a few small buffers.

import { inflateSync } from 'node:zlib';

/** Largest object stream (compressed bytes) collected for decoding. */
export const OBJSTM_MAX = 8 * 1024 * 1024;
/** Inflated bytes allowed in total: this much plus INFLATE_RATIO times the bytes seen so far. */
const INFLATE_BASE = 16 * 1024 * 1024;
const INFLATE_RATIO = 8;
const NAME_MAX = 127;
const KEYWORD_MAX = 16;
const DICT_NAMES_MAX = 256;

/** Names refused wherever they occur, stream data included. */
const ALWAYS_REFUSED = new Set(['JavaScript', 'Launch', 'RichMedia']);
/** Names refused in object syntax (dictionaries), where they cannot be random binary. */
const REFUSED_IN_OBJECTS = new Set(['JS', 'XFA']);
const FLATE = new Set(['FlateDecode', 'Fl']);
const FILTERS = new Set([
  'FlateDecode', 'Fl', 'ASCIIHexDecode', 'AHx', 'ASCII85Decode', 'A85', 'LZWDecode', 'LZW', 'RunLengthDecode', 'RL',
  'CCITTFaxDecode', 'CCF', 'DCTDecode', 'DCT', 'JBIG2Decode', 'JPXDecode', 'Crypt',
]);
const ENDSTREAM = Buffer.from('endstream', 'latin1');

const MODE = { OBJ: 0, STRING: 1, COMMENT: 2, STREAM: 3 } as const;
type Mode = (typeof MODE)[keyof typeof MODE];

// PDF character classes (ISO 32000-1 §7.2.2): whitespace and delimiters end names and keywords.
const IRREGULAR = new Uint8Array(256);
for (const b of [0x00, 0x09, 0x0a, 0x0c, 0x0d, 0x20, 0x28, 0x29, 0x3c, 0x3e, 0x5b, 0x5d, 0x7b, 0x7d, 0x2f, 0x25]) IRREGULAR[b] = 1;

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  const l = b | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** The object-syntax tokenizer, shared by the file and the decoded object streams. */
class PdfTokens {
  mode: Mode = MODE.OBJ;
  problem: string | null = null;
  encrypted = false;
  private depth = 0;
  private escape = false;
  // name state
  private inName = false;
  private name: number[] = [];
  private nameTooLong = false;
  private hexLeft = 0; // 2: '#' seen, 1: first digit seen
  private hexHigh = 0;
  // keyword state: the first KEYWORD_MAX bytes of the current run of regular characters
  private readonly keyword = new Uint8Array(KEYWORD_MAX);
  private keywordLength = 0;
  /** names seen since the last obj/endobj/stream boundary: the current dictionary's keys and values */
  readonly dictNames = new Set<string>();

  /** told when a `stream` keyword starts stream data; null: streams are not expected (object streams) */
  private readonly onStream: ((tokens: PdfTokens) => void) | null;

  constructor(onStream: ((tokens: PdfTokens) => void) | null) {
    this.onStream = onStream;
  }

  /** Tokenizes bytes[from..to) in object syntax; returns where it stopped (a `stream` keyword ends it). */
  run(bytes: Buffer, from: number, to: number): number {
    for (let i = from; i < to; i++) {
      const b = bytes[i]!;
      if (this.inName) {
        if (IRREGULAR[b] === 0) {
          this.nameByte(b);
          continue;
        }
        this.endName(true);
      }
      switch (this.mode) {
        case MODE.COMMENT:
          if (b === 0x0a || b === 0x0d) this.mode = MODE.OBJ;
          continue;
        case MODE.STRING:
          if (this.escape) this.escape = false;
          else if (b === 0x5c) this.escape = true;
          else if (b === 0x28) this.depth++;
          else if (b === 0x29 && --this.depth === 0) this.mode = MODE.OBJ;
          continue;
        default:
          break;
      }
      if (IRREGULAR[b] === 0) {
        if (this.keywordLength < KEYWORD_MAX) this.keyword[this.keywordLength] = b;
        this.keywordLength++;
        continue;
      }
      if (this.keywordLength !== 0 && this.endKeyword()) return i;
      if (b === 0x2f) this.startName();
      else if (b === 0x28) {
        this.mode = MODE.STRING;
        this.depth = 1;
      } else if (b === 0x25) this.mode = MODE.COMMENT;
    }
    return to;
  }

  /** End of input: a name or keyword still open is complete. */
  flush(): void {
    if (this.inName) this.endName(true);
    if (this.keywordLength !== 0) this.endKeyword();
  }

  startName(): void {
    this.inName = true;
    this.name = [];
    this.nameTooLong = false;
    this.hexLeft = 0;
  }

  nameByte(b: number): void {
    if (this.hexLeft > 0) {
      const v = hexValue(b);
      if (v === -1) {
        // not an escape after all: keep the bytes as written
        this.push(0x23);
        if (this.hexLeft === 1) this.push(this.hexHigh < 10 ? 0x30 + this.hexHigh : 0x61 + this.hexHigh - 10);
        this.hexLeft = 0;
        this.push(b);
        return;
      }
      if (this.hexLeft === 2) {
        this.hexHigh = v;
        this.hexLeft = 1;
        return;
      }
      this.hexLeft = 0;
      this.push((this.hexHigh << 4) | v);
      return;
    }
    if (b === 0x23) {
      this.hexLeft = 2;
      return;
    }
    this.push(b);
  }

  private push(b: number): void {
    if (this.name.length < NAME_MAX) this.name.push(b);
    else this.nameTooLong = true;
  }

  /** inObjects: the name stands in object syntax (false: found in stream data). */
  endName(inObjects: boolean): void {
    this.inName = false;
    if (this.nameTooLong) return;
    const name = String.fromCharCode(...this.name);
    if (ALWAYS_REFUSED.has(name) || (inObjects && REFUSED_IN_OBJECTS.has(name))) {
      this.problem ??= `PDF with /${name} (${name === 'Launch' ? 'launches programs' : 'runs scripts'})`;
    }
    if (!inObjects) return;
    if (name === 'Encrypt') this.encrypted = true;
    if (this.dictNames.size < DICT_NAMES_MAX) this.dictNames.add(name);
  }

  /** true when a stream starts */
  private endKeyword(): boolean {
    const length = this.keywordLength;
    this.keywordLength = 0;
    // only obj (3), stream (6), endobj (6) and endstream (9) matter
    if (length !== 3 && length !== 6 && length !== 9) return false;
    const keyword = String.fromCharCode(...this.keyword.subarray(0, length));
    if (keyword === 'obj' || keyword === 'endobj' || keyword === 'endstream') {
      this.dictNames.clear();
      return false;
    }
    if (keyword === 'stream' && this.onStream !== null) {
      this.mode = MODE.STREAM;
      this.onStream(this);
      return true;
    }
    return false;
  }
}

export class PdfScanner {
  problem: string | null = null;
  private readonly tokens: PdfTokens;
  private bytesSeen = 0;
  private inflated = 0;
  private objStreams = 0;
  // stream state
  private collecting: Buffer[] | null = null;
  private collected = 0;
  private streamFilters: string[] = [];
  private tail = Buffer.alloc(0); // last bytes of stream data, for an `endstream` split by chunks
  private nameInStream = false; // a name in stream data continues into the next chunk

  constructor() {
    this.tokens = new PdfTokens((t) => this.startStream(t));
  }

  feed(chunk: Buffer): void {
    if (this.problem !== null) return;
    this.bytesSeen += chunk.length;
    let pos = 0;
    while (pos < chunk.length && this.problem === null) {
      if (this.tokens.mode === MODE.STREAM) pos = this.streamData(chunk, pos);
      else pos = this.tokens.run(chunk, pos, chunk.length);
      this.problem ??= this.tokens.problem;
    }
  }

  finish(): void {
    if (this.problem !== null) return;
    // a file ending inside an object stream: decode what there is (a truncated one is refused)
    if (this.tokens.mode === MODE.STREAM && this.collecting !== null) this.endObjectStream();
    this.tokens.flush();
    this.problem ??= this.tokens.problem;
    if (this.problem === null && this.tokens.encrypted && this.objStreams > 0) {
      this.problem = 'encrypted PDF with object streams cannot be inspected';
    }
  }

  private startStream(t: PdfTokens): void {
    const names = t.dictNames;
    this.tail = Buffer.alloc(0);
    this.nameInStream = false;
    if (!names.has('ObjStm') && !names.has('First')) {
      this.collecting = null;
      return;
    }
    this.objStreams++;
    this.streamFilters = [...names].filter((n) => FILTERS.has(n));
    const unsupported = this.streamFilters.find((f) => !FLATE.has(f));
    if (unsupported !== undefined || this.streamFilters.length > 1) {
      this.problem ??= `PDF object stream with /${unsupported ?? this.streamFilters.join(' /')} cannot be inspected`;
      return;
    }
    if (names.has('DecodeParms') || names.has('DP')) {
      this.problem ??= 'PDF object stream with /DecodeParms cannot be inspected';
      return;
    }
    this.collecting = [];
    this.collected = 0;
  }

  /** Stream data from chunk[pos]: up to `endstream` (then back to object syntax) or the chunk's end. */
  private streamData(chunk: Buffer, pos: number): number {
    // an `endstream` split across chunks: look at the previous tail plus this chunk's start
    let end = -1;
    if (this.tail.length > 0) {
      const junction = Buffer.concat([this.tail, chunk.subarray(pos, pos + ENDSTREAM.length - 1)]);
      const at = junction.indexOf(ENDSTREAM);
      if (at !== -1) end = pos + at - this.tail.length; // may be negative: started in the tail
    }
    if (end === -1) {
      const at = chunk.indexOf(ENDSTREAM, pos);
      if (at !== -1) end = at;
    }
    const dataEnd = end === -1 ? chunk.length : Math.max(pos, end);
    this.longNames(chunk, pos, dataEnd);
    if (this.collecting !== null) {
      this.collect(chunk.subarray(pos, dataEnd));
      // bytes of `endstream` that were in the tail were collected as data: drop them
      if (end !== -1 && end < pos) this.uncollect(pos - end);
    }
    if (end === -1) {
      const keep = Math.min(ENDSTREAM.length - 1, chunk.length - pos);
      this.tail = Buffer.concat([this.tail, chunk.subarray(chunk.length - keep)]).subarray(-(ENDSTREAM.length - 1));
      this.tail = Buffer.from(this.tail);
      return chunk.length;
    }
    if (this.nameInStream) {
      this.tokens.endName(false);
      this.nameInStream = false;
    }
    if (this.collecting !== null) this.endObjectStream();
    this.collecting = null;
    this.tokens.mode = MODE.OBJ;
    this.tokens.dictNames.clear();
    return Math.max(pos, end + ENDSTREAM.length);
  }

  /** The long names (ALWAYS_REFUSED) in stream data, #xx escapes decoded. */
  private longNames(chunk: Buffer, from: number, to: number): void {
    let i = from;
    if (this.nameInStream) {
      while (i < to && IRREGULAR[chunk[i]!] === 0) this.tokens.nameByte(chunk[i++]!);
      if (i === to) return;
      this.tokens.endName(false);
      this.nameInStream = false;
    }
    for (let slash = chunk.indexOf(0x2f, i); slash !== -1 && slash < to; slash = chunk.indexOf(0x2f, i)) {
      this.tokens.startName();
      i = slash + 1;
      while (i < to && IRREGULAR[chunk[i]!] === 0) this.tokens.nameByte(chunk[i++]!);
      if (i === to) {
        this.nameInStream = true;
        return;
      }
      this.tokens.endName(false);
    }
  }

  private collect(data: Buffer): void {
    if (this.collecting === null || data.length === 0) return;
    this.collected += data.length;
    if (this.collected > OBJSTM_MAX) {
      this.problem ??= `PDF object stream larger than ${OBJSTM_MAX} bytes cannot be inspected`;
      this.collecting = null;
      return;
    }
    this.collecting.push(Buffer.from(data));
  }

  private uncollect(n: number): void {
    if (this.collecting === null) return;
    const all = Buffer.concat(this.collecting);
    this.collecting = [all.subarray(0, Math.max(0, all.length - n))];
    this.collected = this.collecting[0]!.length;
  }

  private endObjectStream(): void {
    let data = Buffer.concat(this.collecting!);
    this.collecting = null;
    // the EOL after the `stream` keyword belongs to the keyword
    if (data[0] === 0x0d) data = data.subarray(1);
    if (data[0] === 0x0a) data = data.subarray(1);
    let objects = data;
    if (this.streamFilters.length === 1) {
      const budget = INFLATE_BASE + INFLATE_RATIO * this.bytesSeen - this.inflated;
      try {
        objects = inflateSync(data, { maxOutputLength: Math.max(1, budget) });
      } catch (err) {
        const tooLarge = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
        this.problem ??= tooLarge
          ? 'PDF object streams inflate to more than the inspection budget'
          : `PDF object stream cannot be decoded for inspection (${this.tokens.encrypted ? 'encrypted' : 'corrupt or encrypted'})`;
        return;
      }
      this.inflated += objects.length;
    }
    const nested = new PdfTokens(null);
    nested.run(objects, 0, objects.length);
    nested.flush();
    this.problem ??= nested.problem;
  }
}
