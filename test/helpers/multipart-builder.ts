// Builds multipart/form-data bodies for tests, and parses what the guard forwarded.
//
// buildMultipart writes exactly what it is given (names, filenames and extra headers verbatim, no
// escaping), so tests can also build hostile bodies. parseMultipart is deliberately strict: it
// accepts the canonical CRLF framing the guard emits and throws on anything else, so a test that
// parses a forwarded body also asserts it was well formed.

import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

export interface MultipartPart {
  name: string;
  filename?: string;
  /** Content-Type of the part. Default: application/octet-stream for file parts, none for fields;
   *  null: no Content-Type header even for a file part. */
  contentType?: string | null;
  data: Buffer | string;
  /** Whole header lines ("X-Extra: 1"), written after Content-Type, without CRLF. */
  extraHeaders?: string[];
}

export interface BuiltMultipart {
  body: Buffer;
  contentType: string;
  boundary: string;
}

export function randomBoundary(): string {
  return `----ug-test-${randomBytes(12).toString('hex')}`;
}

function partHead(part: { name: string; filename?: string; contentType?: string | null; extraHeaders?: string[] }, boundary: string, first: boolean): Buffer {
  let head = `${first ? '' : '\r\n'}--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"`;
  if (part.filename !== undefined) head += `; filename="${part.filename}"`;
  head += '\r\n';
  const contentType = part.contentType === undefined ? (part.filename !== undefined ? 'application/octet-stream' : null) : part.contentType;
  if (contentType !== null) head += `Content-Type: ${contentType}\r\n`;
  for (const line of part.extraHeaders ?? []) head += `${line}\r\n`;
  head += '\r\n';
  return Buffer.from(head, 'utf8');
}

function closeDelimiter(boundary: string, noParts: boolean): Buffer {
  return Buffer.from(`${noParts ? '' : '\r\n'}--${boundary}--\r\n`, 'utf8');
}

/**
 * A multipart/form-data body with CRLF framing. Strings are written as UTF-8. With no boundary
 * given, a random one is used and the data is checked not to contain it.
 */
export function buildMultipart(parts: MultipartPart[], boundary?: string): BuiltMultipart {
  const chosen = boundary ?? randomBoundary();
  const chunks: Buffer[] = [];
  parts.forEach((part, i) => {
    const data = typeof part.data === 'string' ? Buffer.from(part.data, 'utf8') : part.data;
    if (boundary === undefined && data.includes(`--${chosen}`)) throw new Error('buildMultipart: data contains the random boundary (retry)');
    chunks.push(partHead(part, chosen, i === 0), data);
  });
  chunks.push(closeDelimiter(chosen, parts.length === 0));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${chosen}`, boundary: chosen };
}

export interface StreamPart extends Omit<MultipartPart, 'data'> {
  data: Buffer | string | Readable;
  /** Byte length of a Readable's data, when known: lets the builder compute the body's length. */
  size?: number;
}

/**
 * Like buildMultipart, but the body is a Readable and a part's data may itself be a Readable (e.g.
 * largePngStream), so 1 GiB uploads are built without holding them in memory. `length` is the
 * exact body length when every Readable part declared its size, else null (send it chunked).
 */
export function buildMultipartStream(parts: StreamPart[], boundary: string = randomBoundary()): { stream: Readable; contentType: string; boundary: string; length: number | null } {
  let length: number | null = 0;
  const pieces: Array<Buffer | Readable> = [];
  parts.forEach((part, i) => {
    const head = partHead(part, boundary, i === 0);
    pieces.push(head);
    const data = typeof part.data === 'string' ? Buffer.from(part.data, 'utf8') : part.data;
    pieces.push(data);
    const size = Buffer.isBuffer(data) ? data.length : part.size;
    length = length === null || size === undefined ? null : length + head.length + size;
  });
  const close = closeDelimiter(boundary, parts.length === 0);
  pieces.push(close);
  if (length !== null) length += close.length;
  async function* generate(): AsyncGenerator<Buffer> {
    for (const piece of pieces) {
      if (Buffer.isBuffer(piece)) yield piece;
      else for await (const chunk of piece) yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    }
  }
  return { stream: Readable.from(generate(), { objectMode: false }), contentType: `multipart/form-data; boundary=${boundary}`, boundary, length };
}

export interface ParsedPart {
  /** Part headers, names lower-cased. */
  headers: Record<string, string>;
  name: string;
  filename?: string;
  data: Buffer;
}

/** The boundary parameter of a multipart Content-Type (quoted or token form). */
export function boundaryOf(contentType: string): string {
  const m = /^multipart\/form-data\s*;(?:.*;)?\s*boundary=(?:"([^"]+)"|([^\s;]+))/i.exec(contentType);
  const boundary = m?.[1] ?? m?.[2];
  if (!boundary) throw new Error(`parseMultipart: no boundary in Content-Type ${JSON.stringify(contentType)}`);
  return boundary;
}

function parseDisposition(value: string, where: string): { name: string; filename?: string } {
  const m = /^form-data; name="([^"]*)"(?:; filename="([^"]*)")?$/.exec(value);
  if (!m) throw new Error(`parseMultipart: non-canonical Content-Disposition ${JSON.stringify(value)} ${where}`);
  return m[2] === undefined ? { name: m[1]! } : { name: m[1]!, filename: m[2] };
}

/**
 * Splits a multipart/form-data body. Strict: the body must start with the first delimiter (no
 * preamble), every line break in the framing is CRLF, every part has exactly one
 * `Content-Disposition: form-data; name="…"[; filename="…"]` header, no header repeats, and the
 * close delimiter is followed by at most one CRLF. Header values are decoded as UTF-8.
 */
export function parseMultipart(body: Buffer, contentType: string): ParsedPart[] {
  const boundary = boundaryOf(contentType);
  const first = Buffer.from(`--${boundary}`, 'latin1');
  const delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1');
  if (!body.subarray(0, first.length).equals(first)) throw new Error('parseMultipart: body does not start with the boundary delimiter');
  let pos = first.length;
  const parts: ParsedPart[] = [];
  for (;;) {
    const after = body.subarray(pos, pos + 2).toString('latin1');
    if (after === '--') {
      const rest = body.subarray(pos + 2);
      if (rest.length !== 0 && !rest.equals(Buffer.from('\r\n'))) throw new Error(`parseMultipart: ${rest.length} unexpected bytes after the close delimiter`);
      return parts;
    }
    if (after !== '\r\n') throw new Error(`parseMultipart: delimiter at ${pos} not followed by CRLF or "--"`);
    pos += 2;
    const where = `(part ${parts.length}, offset ${pos})`;
    const headerEnd = body.indexOf('\r\n\r\n', pos, 'latin1');
    if (headerEnd === -1) throw new Error(`parseMultipart: unterminated part headers ${where}`);
    const headers: Record<string, string> = {};
    const headerText = body.subarray(pos, headerEnd).toString('utf8');
    for (const line of headerText === '' ? [] : headerText.split('\r\n')) {
      const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+): ?([^\r\n]*)$/.exec(line);
      if (!m) throw new Error(`parseMultipart: malformed header line ${JSON.stringify(line)} ${where}`);
      const key = m[1]!.toLowerCase();
      if (key in headers) throw new Error(`parseMultipart: repeated header ${key} ${where}`);
      headers[key] = m[2]!;
    }
    const disposition = headers['content-disposition'];
    if (disposition === undefined) throw new Error(`parseMultipart: part without Content-Disposition ${where}`);
    const { name, filename } = parseDisposition(disposition, where);
    const dataStart = headerEnd + 4;
    const dataEnd = body.indexOf(delimiter, dataStart);
    if (dataEnd === -1) throw new Error(`parseMultipart: part data not closed by a delimiter ${where}`);
    const part: ParsedPart = { headers, name, data: body.subarray(dataStart, dataEnd) };
    if (filename !== undefined) part.filename = filename;
    parts.push(part);
    pos = dataEnd + delimiter.length;
  }
}
