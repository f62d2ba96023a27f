// Tiny valid sample files for tests, built from their specifications rather than copied in as hex,
// so a test can say what it needs ("a PNG padded to 5 MiB") and get a file every decoder accepts.
//
// Padding and filler go into private ancillary PNG chunks (type `ugPd`) placed after IDAT: a
// decoder skips them, file-type sees an ordinary PNG head, and CRCs stay correct at any size.

import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { crc32, deflateSync } from 'node:zlib';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Private (2nd letter lower case), ancillary (1st lower case), safe-to-copy (4th lower case). */
const PADDING_CHUNK_TYPE = 'ugPd';
/** Bytes a chunk adds around its data: length, type, CRC. */
const CHUNK_OVERHEAD = 12;
/** Largest padding chunk written; a PNG chunk may hold up to 2^31-1 bytes, decoders prefer less. */
const MAX_PADDING_CHUNK_DATA = 16 * 1024 * 1024;

/** One PNG chunk: length, type, data, CRC over type + data. */
export function pngChunk(type: string, data: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(head.subarray(4))), 0);
  return Buffer.concat([head, data, crc]);
}

/** Signature, IHDR and IDAT of a 1x1 8-bit greyscale image: everything before the padding. */
function pngHead(): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(1, 0); // width
  ihdr.writeUInt32BE(1, 4); // height
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // colour type: greyscale
  ihdr[10] = 0; // compression: deflate
  ihdr[11] = 0; // filter method
  ihdr[12] = 0; // no interlace
  const scanline = Buffer.from([0x00, 0x80]); // filter type None, one mid-grey pixel
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(scanline))]);
}

const PNG_HEAD = pngHead();
const PNG_IEND = pngChunk('IEND');

/** Size of the smallest PNG pngBytes/largePngStream produce (no padding). */
export const MIN_PNG_SIZE = PNG_HEAD.length + PNG_IEND.length;

/**
 * A valid 1x1 PNG. With extraBytes > 0, that many random bytes are added inside private ancillary
 * chunks after IDAT (so the file grows by extraBytes plus 12 bytes per 16 MiB chunk).
 */
export function pngBytes(extraBytes = 0): Buffer {
  if (!Number.isSafeInteger(extraBytes) || extraBytes < 0) throw new RangeError(`extraBytes must be a non-negative integer, got ${extraBytes}`);
  const parts = [PNG_HEAD];
  for (let left = extraBytes; left > 0; left -= MAX_PADDING_CHUNK_DATA) {
    parts.push(pngChunk(PADDING_CHUNK_TYPE, randomBytes(Math.min(left, MAX_PADDING_CHUNK_DATA))));
  }
  parts.push(PNG_IEND);
  return Buffer.concat(parts);
}

/**
 * A valid 8x8 mid-grey baseline JPEG (JFIF): one component, quantisation table of ones, and
 * one-symbol Huffman tables, so the single block is "DC difference 0, end of block".
 */
export function jpegBytes(): Buffer {
  const segment = (marker: number, payload: number[]): number[] => [0xff, marker, (payload.length + 2) >> 8, (payload.length + 2) & 0xff, ...payload];
  const oneSymbolTable = (tableClassAndId: number): number[] => [tableClassAndId, 1, ...new Array<number>(15).fill(0), 0x00];
  return Buffer.from([
    0xff, 0xd8, // SOI
    ...segment(0xe0, [0x4a, 0x46, 0x49, 0x46, 0x00, 1, 1, 0, 0, 1, 0, 1, 0, 0]), // APP0 JFIF 1.1, 1:1 aspect, no thumbnail
    ...segment(0xdb, [0x00, ...new Array<number>(64).fill(1)]), // DQT table 0, 8-bit, all ones
    ...segment(0xc0, [8, 0, 8, 0, 8, 1, 1, 0x11, 0]), // SOF0: 8-bit, 8x8, 1 component (id 1, 1x1 sampling, table 0)
    ...segment(0xc4, oneSymbolTable(0x00)), // DHT DC table 0: code "0" -> category 0
    ...segment(0xc4, oneSymbolTable(0x10)), // DHT AC table 0: code "0" -> EOB
    ...segment(0xda, [1, 1, 0x00, 0, 63, 0]), // SOS: component 1 uses DC 0 / AC 0, full spectral range
    0x3f, // entropy-coded data: DC "0", EOB "0", padded with ones
    0xff, 0xd9, // EOI
  ]);
}

/** The classic 42-byte 1x1 transparent GIF89a. */
export function gifBytes(): Buffer {
  return Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
}

function isoBox(type: string, payload: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + payload.length, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, payload]);
}

function ftyp(major: string, compatible: string[]): Buffer {
  const minorVersion = Buffer.alloc(4);
  minorVersion.writeUInt32BE(0x200, 0);
  return isoBox('ftyp', Buffer.concat([Buffer.from(major, 'latin1'), minorVersion, ...compatible.map((b) => Buffer.from(b, 'latin1'))]));
}

/** An ISO base media file: ftyp (major brand isom) + mdat with `mdatBytes` random bytes. */
export function mp4Bytes(mdatBytes = 16): Buffer {
  return Buffer.concat([ftyp('isom', ['isom', 'iso2', 'mp41']), isoBox('mdat', randomBytes(mdatBytes))]);
}

/** A QuickTime file: ftyp (major brand `qt  `) + mdat. */
export function movBytes(mdatBytes = 16): Buffer {
  return Buffer.concat([ftyp('qt  ', ['qt  ']), isoBox('mdat', randomBytes(mdatBytes))]);
}

/** A one-page PDF 1.4 with a correct xref table. */
export function pdfBytes(): Buffer {
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] >>',
  ];
  let out = '%PDF-1.4\n';
  const offsets: number[] = [];
  objects.forEach((body, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${body}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const offset of offsets) out += `${String(offset).padStart(10, '0')} 00000 n \n`;
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(out, 'latin1');
}

export interface LargePng {
  /** Emits exactly totalBytes bytes of a valid PNG, produced on demand (honours backpressure). */
  readonly stream: Readable;
  readonly size: number;
  /** sha256 (hex) of everything emitted; throws until the stream has emitted its last byte. */
  digest(): string;
}

/**
 * A PNG of exactly totalBytes bytes, generated while it is read: the 1x1 image head, then random
 * filler in private ancillary chunks (at most 16 MiB each), then IEND. Nothing is held beyond the
 * chunk being emitted, so 1 GiB uploads cost no memory. The sha256 is computed as bytes go out.
 *
 * totalBytes must be MIN_PNG_SIZE, or at least MIN_PNG_SIZE + 12 (a chunk's own overhead).
 */
export function largePngStream(totalBytes: number, opts: { pieceSize?: number } = {}): LargePng {
  if (!Number.isSafeInteger(totalBytes) || (totalBytes !== MIN_PNG_SIZE && totalBytes < MIN_PNG_SIZE + CHUNK_OVERHEAD)) {
    throw new RangeError(`largePngStream: totalBytes must be ${MIN_PNG_SIZE} or at least ${MIN_PNG_SIZE + CHUNK_OVERHEAD}, got ${totalBytes}`);
  }
  const pieceSize = opts.pieceSize ?? 256 * 1024;
  // Split the filler into chunks: every chunk costs 12 bytes, data sizes add up to the rest.
  let filler = totalBytes - MIN_PNG_SIZE;
  const chunkDataSizes: number[] = [];
  while (filler > 0) {
    const data = Math.min(filler - CHUNK_OVERHEAD, MAX_PADDING_CHUNK_DATA);
    chunkDataSizes.push(data);
    filler -= data + CHUNK_OVERHEAD;
    // A remainder too small for a chunk of its own is moved into this one.
    if (filler > 0 && filler < CHUNK_OVERHEAD) {
      chunkDataSizes[chunkDataSizes.length - 1]! += filler;
      filler = 0;
    }
  }

  const hash = createHash('sha256');
  let finalDigest: string | null = null;
  let emitted = 0;
  let chunkIndex = -1; // -1: head not yet sent
  let chunkLeft = 0; // data bytes still to emit in the current padding chunk
  let chunkCrc = 0;

  const emit = (stream: Readable, bytes: Buffer): boolean => {
    hash.update(bytes);
    emitted += bytes.length;
    return stream.push(bytes);
  };

  const stream = new Readable({
    highWaterMark: pieceSize,
    read() {
      for (;;) {
        let more: boolean;
        if (chunkIndex === -1) {
          chunkIndex = 0;
          more = emit(this, PNG_HEAD);
        } else if (chunkLeft > 0) {
          const piece = randomBytes(Math.min(chunkLeft, pieceSize));
          chunkCrc = crc32(piece, chunkCrc);
          chunkLeft -= piece.length;
          const crc = chunkLeft === 0 ? Buffer.alloc(4) : null;
          if (crc) {
            crc.writeUInt32BE(chunkCrc >>> 0, 0);
            chunkIndex++;
          }
          more = emit(this, crc ? Buffer.concat([piece, crc]) : piece);
        } else if (chunkIndex < chunkDataSizes.length) {
          const size = chunkDataSizes[chunkIndex]!;
          const head = Buffer.alloc(8);
          head.writeUInt32BE(size, 0);
          head.write(PADDING_CHUNK_TYPE, 4, 'latin1');
          chunkCrc = crc32(head.subarray(4));
          chunkLeft = size;
          if (size === 0) {
            const crc = Buffer.alloc(4);
            crc.writeUInt32BE(chunkCrc >>> 0, 0);
            chunkIndex++;
            more = emit(this, Buffer.concat([head, crc]));
          } else {
            more = emit(this, head);
          }
        } else {
          emit(this, PNG_IEND);
          if (emitted !== totalBytes) {
            this.destroy(new Error(`largePngStream: emitted ${emitted} bytes, expected ${totalBytes}`));
            return;
          }
          finalDigest = hash.digest('hex');
          this.push(null);
          return;
        }
        if (!more) return;
      }
    },
  });

  return {
    stream,
    size: totalBytes,
    digest(): string {
      if (finalDigest === null) throw new Error('largePngStream: digest() called before the stream emitted its last byte');
      return finalDigest;
    },
  };
}

/** sha256 hex of a buffer (the same digest largePngStream and the recording upstream report). */
export function sha256(bytes: Buffer | Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
