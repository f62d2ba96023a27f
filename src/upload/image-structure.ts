// Streaming structure walks of PNG, JPEG and GIF for ContentInspector (content-inspector.ts).
//
// Each walker follows the format's own framing (PNG chunk list, JPEG segment list and scan data,
// GIF block list) with bounded state, and
//   - inspects the parts a format declares to be text (PNG tEXt/zTXt/iTXt, JPEG COM and XMP,
//     GIF comment and plain-text extensions) with the strict marker scan, zTXt/iTXt inflated first;
//   - finds where the image ends (after IEND, EOI, or the GIF trailer / the first block a decoder
//     would stop at), so findings in the bytes after it are reported as "after the image";
//   - labels byte ranges ("PNG tEXt chunk", "JPEG COM segment"...) so a marker the whole-file scan
//     finds can say where it sits.
// The whole-file marker scan and the executable scan run on every byte regardless (inspector):
// the walkers add the strict text checks and the locations, they are not the only line.

import { inflateSync } from 'node:zlib';
import { findMarkersInText } from './content-check.js';
import { read, REST, skip, StepDriver, type Step } from './step-driver.js';

/** Largest text chunk/segment/comment collected for the strict scan (raw bytes). */
export const TEXT_COLLECT_MAX = 1024 * 1024;
/** Largest inflated size of one compressed PNG text chunk (a decompression bomb is refused). */
export const TEXT_INFLATE_MAX = 8 * 1024 * 1024;
/** Labelled ranges remembered for reporting (bounded: older ones are forgotten). */
const REGIONS_KEPT = 4096;

export interface ImageWalker {
  feed(chunk: Buffer): void;
  finish(): void;
  /** a refusal reason, once one is certain */
  readonly problem: string | null;
  /** absolute offset where the bytes after the image begin, once known */
  readonly trailerStart: number | null;
  /** a label for the structure holding the byte at `offset`, if it is still remembered */
  regionAt(offset: number): string | undefined;
}

abstract class WalkerBase implements ImageWalker {
  problem: string | null = null;
  trailerStart: number | null = null;
  protected readonly driver: StepDriver;
  private readonly regionStarts: number[] = [];
  private readonly regionLabels: string[] = [];

  constructor() {
    this.driver = new StepDriver(read(0, () => this.start()));
  }

  protected abstract start(): Step;
  protected abstract readonly format: string;

  feed(chunk: Buffer): void {
    if (this.problem === null) this.driver.feed(chunk);
  }

  finish(): void {
    // A file that ends inside a structure is truncated: decoders show what they have or refuse
    // it; either way it carries nothing the marker scan did not see. Not a refusal.
  }

  regionAt(offset: number): string | undefined {
    if (this.trailerStart !== null && offset >= this.trailerStart) return `after the ${this.format} image data`;
    for (let i = this.regionStarts.length - 1; i >= 0; i--) if (this.regionStarts[i]! <= offset) return this.regionLabels[i];
    return undefined;
  }

  /** a region starting at absolute `at` */
  protected region(at: number, label: string): void {
    if (this.regionStarts.length === REGIONS_KEPT) {
      this.regionStarts.splice(0, REGIONS_KEPT / 2);
      this.regionLabels.splice(0, REGIONS_KEPT / 2);
    }
    this.regionStarts.push(at);
    this.regionLabels.push(label);
  }

  protected fail(reason: string): Step {
    this.problem ??= reason;
    return REST;
  }

  protected trailer(): Step {
    this.trailerStart = this.driver.offset;
    return REST;
  }

  /** the strict text scan of bytes a format declares to be text */
  protected checkText(text: Buffer, where: string): Step | null {
    const marker = findMarkersInText(text);
    return marker === undefined ? null : this.fail(`active content (${marker}) in ${where}`);
  }
}

// ---- PNG ---------------------------------------------------------------------------------------

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const PNG_MAX_CHUNK = 0x7fffffff;

function isChunkType(type: Buffer): boolean {
  for (const b of type) if (!((b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a))) return false;
  return true;
}

/**
 * PNG: signature, then chunks (length, type, data, CRC) up to IEND. A chunk length over 2^31-1 or a
 * type that is not four ASCII letters is refused (no decoder reads past it, and everything after
 * it would be uninterpretable); CRCs are not checked. Text chunks up to TEXT_COLLECT_MAX are
 * strict-scanned, compressed ones (zTXt, iTXt with the compression flag) after inflating; a
 * compressed text chunk that is larger, fails to inflate, or inflates past TEXT_INFLATE_MAX is
 * refused as uninspectable.
 */
export class PngWalker extends WalkerBase {
  protected readonly format = 'PNG';

  protected start(): Step {
    return read(8, (sig) => (sig.equals(PNG_SIGNATURE) ? this.chunk() : this.fail('not a PNG signature')));
  }

  private chunk(): Step {
    const at = this.driver.offset;
    return read(8, (head) => {
      const length = head.readUInt32BE(0);
      const typeBytes = head.subarray(4, 8);
      if (length > PNG_MAX_CHUNK || !isChunkType(typeBytes)) return this.fail(`malformed PNG chunk at offset ${at}`);
      const type = typeBytes.toString('latin1');
      this.region(at, `PNG ${type} chunk`);
      if (type === 'IEND') return skip(length + 4, () => this.trailer());
      if (type === 'tEXt' || type === 'zTXt' || type === 'iTXt') {
        if (length > TEXT_COLLECT_MAX) {
          if (type === 'tEXt') return skip(length + 4, () => this.chunk());
          return this.fail(`PNG ${type} chunk of ${length} bytes is too large to inspect`);
        }
        return read(length, (data) => this.textChunk(type, data) ?? skip(4, () => this.chunk()));
      }
      return skip(length + 4, () => this.chunk());
    });
  }

  private textChunk(type: string, data: Buffer): Step | null {
    const where = `PNG ${type} chunk`;
    const keywordEnd = data.indexOf(0);
    if (type === 'tEXt' || keywordEnd === -1) return this.checkText(data, where);
    if (type === 'zTXt') {
      // keyword \0 method(0) compressed-text
      const inflated = this.inflate(data.subarray(keywordEnd + 2), where);
      return inflated === null ? REST : this.checkText(Buffer.concat([data.subarray(0, keywordEnd), inflated]), where);
    }
    // iTXt: keyword \0 flag method language \0 translated-keyword \0 text
    const flag = data[keywordEnd + 1];
    const languageEnd = data.indexOf(0, keywordEnd + 3);
    const translatedEnd = languageEnd === -1 ? -1 : data.indexOf(0, languageEnd + 1);
    if (flag !== 1 || translatedEnd === -1) return this.checkText(data, where);
    const inflated = this.inflate(data.subarray(translatedEnd + 1), where);
    return inflated === null ? REST : this.checkText(Buffer.concat([data.subarray(0, translatedEnd + 1), inflated]), where);
  }

  private inflate(compressed: Buffer, where: string): Buffer | null {
    try {
      return inflateSync(compressed, { maxOutputLength: TEXT_INFLATE_MAX });
    } catch (err) {
      const tooLarge = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
      this.fail(tooLarge ? `${where} inflates to more than ${TEXT_INFLATE_MAX} bytes` : `${where} cannot be decompressed for inspection`);
      return null;
    }
  }
}

// ---- JPEG --------------------------------------------------------------------------------------

const XMP_APP1 = Buffer.from('http://ns.adobe.com/xap/1.0/\0', 'latin1');

function isDataAfterFF(m: number): boolean {
  return m === 0x00 || (m >= 0xd0 && m <= 0xd8) || m === 0x01;
}

function segmentName(marker: number): string {
  if (marker >= 0xe0 && marker <= 0xef) return `APP${marker - 0xe0}`;
  if (marker === 0xfe) return 'COM';
  if (marker === 0xda) return 'SOS';
  if (marker === 0xdb) return 'DQT';
  if (marker === 0xc4) return 'DHT';
  if (marker >= 0xc0 && marker <= 0xcf) return `SOF${marker - 0xc0}`;
  return `FF${marker.toString(16).toUpperCase()}`;
}

/**
 * JPEG: SOI, then marker segments (FFxx + 16-bit length) and entropy-coded scan data after each SOS
 * (where FF00 is a stuffed byte and FFD0-FFD7 restart markers) up to EOI. Like libjpeg, bytes
 * before a marker are skipped rather than refused. COM segments and XMP (APP1
 * "http://ns.adobe.com/xap/1.0/") are strict-scanned; EXIF and other APPn payloads get the
 * whole-file scan. The bytes after EOI (e.g. a Motion Photo's MP4, an MPF second image, a
 * polyglot's payload) are the trailer.
 */
export class JpegWalker extends WalkerBase {
  protected readonly format = 'JPEG';
  /** scan-state: a 0xFF was the last byte of the previous chunk */
  private pendingFF = false;

  protected start(): Step {
    return read(2, (soi) => (soi[0] === 0xff && soi[1] === 0xd8 ? this.markers() : this.fail('not a JPEG SOI')));
  }

  /**
   * Finds the next marker. Between segments and in entropy-coded data alike, FF00 (stuffed byte),
   * FFD0-FFD7 (restart), FF01 (TEM) and a stray FFD8 are data, and FF fill bytes may precede a
   * marker.
   */
  private markers(): Step {
    this.pendingFF = false;
    return {
      kind: 'scan',
      consume: (bytes) => {
        let pos = 0;
        if (this.pendingFF) {
          this.pendingFF = false;
          const m = bytes[0]!;
          if (m !== 0xff) {
            if (!isDataAfterFF(m)) return { used: 1, next: this.marker(m, this.driver.offset - 1) };
            pos = 1;
          }
        }
        for (;;) {
          const ff = bytes.indexOf(0xff, pos);
          if (ff === -1) return { used: bytes.length, next: null };
          if (ff === bytes.length - 1) {
            this.pendingFF = true;
            return { used: bytes.length, next: null };
          }
          const m = bytes[ff + 1]!;
          if (m === 0xff) pos = ff + 1;
          else if (isDataAfterFF(m)) pos = ff + 2;
          else return { used: ff + 2, next: this.marker(m, this.driver.offset + ff) };
        }
      },
    };
  }

  private marker(m: number, at: number): Step {
    if (m === 0xd9) {
      // (called from a scan step: the driver's offset is still at the start of that step's bytes)
      this.region(at, 'JPEG EOI');
      this.trailerStart = at + 2;
      return REST;
    }
    return read(2, (len) => {
      const length = len.readUInt16BE(0);
      if (length < 2) return this.fail(`malformed JPEG segment length at offset ${at}`);
      const name = segmentName(m);
      this.region(at, `JPEG ${name} segment`);
      const payload = length - 2;
      if (m === 0xda) return skip(payload, () => this.markers());
      if (m === 0xfe) return read(payload, (text) => this.checkText(text, 'JPEG COM segment') ?? this.markers());
      if (m === 0xe1 && payload >= XMP_APP1.length) {
        return read(payload, (data) => {
          if (!data.subarray(0, XMP_APP1.length).equals(XMP_APP1)) return this.markers();
          return this.checkText(data.subarray(XMP_APP1.length), 'JPEG XMP (APP1) segment') ?? this.markers();
        });
      }
      return skip(payload, () => this.markers());
    });
  }
}

// ---- GIF ---------------------------------------------------------------------------------------

const GIF_TEXT_EXTENSIONS: Readonly<Record<number, string>> = { 0xfe: 'comment', 0x01: 'plain text' };

/**
 * GIF: header, logical screen descriptor and global colour table, then blocks: extensions (0x21)
 * and images (0x2C) made of length-prefixed sub-blocks, up to the trailer (0x3B). Any other block
 * byte is where decoders stop: the bytes from there on are the trailer. Comment and plain-text
 * extensions (up to TEXT_COLLECT_MAX) are strict-scanned.
 */
export class GifWalker extends WalkerBase {
  protected readonly format = 'GIF';

  protected start(): Step {
    return read(13, (head) => {
      const sig = head.subarray(0, 6).toString('latin1');
      if (sig !== 'GIF87a' && sig !== 'GIF89a') return this.fail('not a GIF signature');
      const flags = head[10]!;
      const table = flags & 0x80 ? 3 * (1 << ((flags & 7) + 1)) : 0;
      return skip(table, () => this.block());
    });
  }

  private block(): Step {
    const at = this.driver.offset;
    return read(1, (b) => {
      const kind = b[0]!;
      if (kind === 0x3b) {
        this.region(at, 'GIF trailer');
        return this.trailer();
      }
      if (kind === 0x21) {
        return read(1, (label) => {
          const textKind = GIF_TEXT_EXTENSIONS[label[0]!];
          this.region(at, `GIF ${textKind ?? `0x${label[0]!.toString(16)}`} extension`);
          if (textKind === undefined) return this.subBlocks(null, () => this.block());
          const collected: Buffer[] = [];
          return this.subBlocks(collected, () => this.checkText(Buffer.concat(collected), `GIF ${textKind} extension`) ?? this.block());
        });
      }
      if (kind === 0x2c) {
        this.region(at, 'GIF image');
        return read(9, (descriptor) => {
          const flags = descriptor[8]!;
          const table = flags & 0x80 ? 3 * (1 << ((flags & 7) + 1)) : 0;
          // local colour table, then the LZW minimum code size byte, then the data sub-blocks
          return skip(table + 1, () => this.subBlocks(null, () => this.block()));
        });
      }
      // Not a block a decoder knows: decoding stops here, so this is where the trailer starts.
      this.trailerStart = at;
      return REST;
    });
  }

  /** Length-prefixed sub-blocks up to the zero terminator; `collect` keeps up to TEXT_COLLECT_MAX. */
  private subBlocks(collect: Buffer[] | null, then: () => Step): Step {
    let kept = 0;
    const next = (): Step =>
      read(1, (size) => {
        const n = size[0]!;
        if (n === 0) return then();
        if (collect === null || kept + n > TEXT_COLLECT_MAX) return skip(n, next);
        return read(n, (data) => {
          collect.push(data);
          kept += n;
          return next();
        });
      });
    return next();
  }
}

/** The walker for a file-type result, or null when the format has none. */
export function imageWalkerFor(detectedOrExt: string): ImageWalker | null {
  switch (detectedOrExt) {
    case 'png':
    case 'apng':
      return new PngWalker();
    case 'jpg':
    case 'jpeg':
    case 'jpe':
      return new JpegWalker();
    case 'gif':
      return new GifWalker();
    default:
      return null;
  }
}
