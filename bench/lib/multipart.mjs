// Request bodies for the bench: multipart/form-data with one file part (and optionally a text
// field), described as a length plus a chunk generator so a 1 GiB body is never held in memory.
//
// The PNG is valid end to end: signature, IHDR and IDAT of a 1x1 image, then private ancillary
// padding chunks (`ugPd`, as test/helpers/samples.ts does) with correct CRCs, then IEND. The padding
// repeats one 1 MiB block of random bytes: random so the multipart parser's boundary search sees
// realistic (incompressible, non-zero) data, repeated so the client spends no CPU generating it.

import { randomBytes } from 'node:crypto';
import { crc32, deflateSync } from 'node:zlib';

const BLOCK = randomBytes(1024 * 1024);
/** Size of the buffers handed to the socket; like a file read stream's. */
const SLICE = 64 * 1024;
/** Largest padding chunk; decoders prefer chunks well below the 2^31-1 limit. */
const MAX_PAD_CHUNK = 16 * 1024 * 1024;
const CHUNK_OVERHEAD = 12; // length, type, CRC

const BOUNDARY = `----upload-bench-${randomBytes(12).toString('hex')}`;
export const CONTENT_TYPE = `multipart/form-data; boundary=${BOUNDARY}`;

function pngChunk(type, data = Buffer.alloc(0)) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(head.subarray(4))), 0);
  return Buffer.concat([head, data, crc]);
}

function pngHead() {
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0]); // 1x1, 8-bit greyscale
  const idat = deflateSync(Buffer.from([0x00, 0x80])); // filter None, one mid-grey pixel
  return Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), pngChunk('IHDR', ihdr), pngChunk('IDAT', idat)]);
}

const PNG_HEAD = pngHead();
const PNG_IEND = pngChunk('IEND');
export const MIN_PNG_SIZE = PNG_HEAD.length + CHUNK_OVERHEAD + PNG_IEND.length;

/** `length` bytes of the repeated random block, in socket-sized slices (no copies). */
function* blockBytes(length) {
  for (let done = 0; done < length; ) {
    const at = done % BLOCK.length;
    const n = Math.min(SLICE, length - done, BLOCK.length - at);
    yield BLOCK.subarray(at, at + n);
    done += n;
  }
}

// CRCs of padding chunks, by data length: every chunk of one length has the same data.
const padCrcs = new Map();
function padCrc(length) {
  if (!padCrcs.has(length)) {
    let crc = crc32(Buffer.from('ugPd', 'latin1'));
    for (const slice of blockBytes(length)) crc = crc32(slice, crc);
    padCrcs.set(length, crc);
  }
  return padCrcs.get(length);
}

function* paddingChunk(length) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(length, 0);
  head.write('ugPd', 4, 'latin1');
  yield head;
  yield* blockBytes(length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(padCrc(length), 0);
  yield crc;
}

/** A valid PNG of exactly `size` bytes (size >= MIN_PNG_SIZE). */
function* pngFile(size) {
  if (size < MIN_PNG_SIZE) throw new RangeError(`a bench PNG needs at least ${MIN_PNG_SIZE} bytes`);
  yield PNG_HEAD;
  let left = size - PNG_HEAD.length - PNG_IEND.length;
  while (left > 0) {
    // never leave less than one chunk's overhead for the next chunk
    let data = Math.min(MAX_PAD_CHUNK, left - CHUNK_OVERHEAD);
    if (left - (data + CHUNK_OVERHEAD) > 0 && left - (data + CHUNK_OVERHEAD) < CHUNK_OVERHEAD) data -= CHUNK_OVERHEAD;
    yield* paddingChunk(data);
    left -= data + CHUNK_OVERHEAD;
  }
  yield PNG_IEND;
}

/** `size` bytes of a repeated text line: PHP source, or plain text that is no PNG. */
function* textFile(line, size) {
  const unit = Buffer.from(line);
  const block = Buffer.alloc(SLICE, unit);
  for (let done = 0; done < size; done += SLICE) yield block.subarray(0, Math.min(SLICE, size - done));
}

const CONTENTS = {
  png: { mime: 'image/png', chunks: pngFile },
  php: { mime: 'application/x-php', chunks: (size) => textFile('<?php system($_GET["c"]); ?>\n', size) },
  text: { mime: 'image/png', chunks: (size) => textFile('this is plain text, not a PNG image\n', size) },
};

/**
 * A multipart body: optional text fields first, then one file part.
 * Returns { contentLength, chunks(), prefix, afterPrefix() } — chunks() can be called again for each
 * request; prefix (the fields and the file part's header) plus afterPrefix() (the file's bytes and
 * the closing boundary) is the same body split where a filename check can decide.
 */
export function multipartBody({ fields = {}, field = 'file', filename, content, size }) {
  const kind = CONTENTS[content];
  if (!kind) throw new Error(`unknown content kind ${content}`);
  const parts = Object.entries(fields).map(
    ([name, value]) => Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`),
  );
  const fileHead = Buffer.from(
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\nContent-Type: ${kind.mime}\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
  const framing = parts.reduce((n, b) => n + b.length, 0) + fileHead.length + tail.length;
  return {
    contentLength: framing + size,
    *chunks() {
      yield* parts;
      yield fileHead;
      yield* kind.chunks(size);
      yield tail;
    },
    prefix: Buffer.concat([...parts, fileHead]),
    *afterPrefix() {
      yield* kind.chunks(size);
      yield tail;
    },
  };
}

/** A small body as one Buffer, built once and re-sent many times. */
export function inMemory(body) {
  const buffer = Buffer.concat([...body.chunks()]);
  if (buffer.length !== body.contentLength) throw new Error('multipart length mismatch');
  return { contentLength: buffer.length, buffer, chunks: () => [buffer] };
}
