// The body stage of an upload route (ARCHITECTURE "decodeData filter"): raw bytes → framing
// scanner + busboy → per-part checks → canonical encoder → body sink. Parts are written strictly
// in order; each file is held for a bounded sniff window, then streamed. The first violation
// wins and stops everything; nothing is decided by guessing.

import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import busboy from 'busboy';
import type { CompiledPolicy } from '../config/types.js';
import { GuardError } from '../errors.js';
import type { BodySink } from '../forward/body-sink.js';
import { CanonicalEncoder, isSafeParameterValue } from './canonical-encoder.js';
import { checkContent, SNIFF_BYTES } from './content-check.js';
import { DelimiterScanner, rawPartHeader } from './delimiter-scanner.js';
import { categoryOf } from './file-kinds.js';
import { finalExtension, rewriteFilename } from './filenames.js';
import { mimeTypeOf } from './mime-types.js';

export interface FilteredFile {
  field: string;
  filename: string;
  bytes: number;
  category: string;
}

export interface FilterResult {
  files: FilteredFile[];
  receivedBytes: number;
}

const LOSSLESS_FIELD_CHARSETS = new Set(['utf-8', 'utf8', 'us-ascii', 'ascii']);

export function filterMultipart(
  req: IncomingMessage,
  policy: CompiledPolicy,
  encoder: CanonicalEncoder,
  sink: BodySink,
  bodyIdleMs: number,
  /** told about every received chunk (the uploadRate byte meter); may fail the request */
  onBytes?: (bytes: number, fail: (err: GuardError) => void) => void,
): Promise<FilterResult> {
  return new Promise<FilterResult>((resolve, reject) => {
    const files: FilteredFile[] = [];
    let receivedBytes = 0;
    let emittedParts = 0;
    let failed = false;
    let settled = false;
    let queue: Promise<void> = Promise.resolve();
    const openStreams = new Set<Readable>();

    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        defParamCharset: 'utf8',
        // latin1 keeps undeclared field bytes exactly; declared charsets are handled per part
        defCharset: 'latin1',
        limits: {
          // busboy fires its limit events on reaching the limit, so allow one more to mean "over"
          fileSize: policy.maxFileSize + 1,
          fieldSize: policy.maxFieldSize + 1,
          files: policy.maxFiles,
          fields: policy.maxFields,
          parts: policy.maxFiles + policy.maxFields,
          fieldNameSize: 1024,
        },
      });
    } catch {
      reject(new GuardError('MALFORMED_MULTIPART', 'Multipart boundary not found'));
      return;
    }
    const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(req.headers['content-type'] ?? '');
    const scanner = new DelimiterScanner((boundary?.[1] ?? boundary?.[2])!);

    let idle = setTimeout(onIdle, bodyIdleMs);
    function onIdle(): void {
      fail(new GuardError('REQUEST_TIMEOUT'));
    }

    function fail(err: unknown): void {
      // `settled`: a late verdict (the byte meter answers asynchronously) must not touch a
      // request that already passed and is being forwarded.
      if (failed || settled) return;
      failed = true;
      clearTimeout(idle);
      req.off('data', onData);
      for (const stream of openStreams) stream.destroy();
      parser.removeAllListeners('close');
      parser.on('error', () => undefined);
      parser.destroy();
      sink.abort();
      reject(err instanceof GuardError ? err : new GuardError('MALFORMED_MULTIPART'));
    }

    // busboy keeps touching its state right after emitting a limit event; tearing it down inside
    // the event would crash it (a TypeError thrown out of busboy), so the teardown waits a tick.
    function failLater(err: GuardError): void {
      process.nextTick(fail, err);
    }

    function enqueue(step: () => Promise<void>): void {
      queue = queue.then(() => (failed ? undefined : step())).catch(fail);
    }

    async function write(chunk: Buffer): Promise<void> {
      if (failed) throw new GuardError('MALFORMED_MULTIPART');
      await sink.write(chunk);
    }

    function onData(chunk: Buffer): void {
      receivedBytes += chunk.length;
      idle.refresh();
      if (receivedBytes > policy.maxRequestSize) return fail(new GuardError('REQUEST_TOO_LARGE'));
      onBytes?.(chunk.length, fail);
      if (failed) return;
      scanner.feed(chunk);
      if (scanner.problem !== null) return fail(new GuardError('MALFORMED_MULTIPART', `Malformed multipart body: ${scanner.problem}`));
      if (!parser.write(chunk)) {
        req.pause();
        parser.once('drain', () => req.resume());
      }
    }

    parser.on('field', (name, value, info) => {
      const index = emittedParts++;
      enqueue(async () => {
        if (name === undefined || !isSafeParameterValue(name)) throw new GuardError('MALFORMED_MULTIPART', 'A part has no usable name');
        if (info.valueTruncated) throw new GuardError('TOO_MANY_PARTS', 'Field value too large', { field: name });
        const contentType = rawPartHeader(scanner.partHeaders[index] ?? '', 'content-type');
        if (contentType === null) throw new GuardError('MALFORMED_MULTIPART', 'Duplicate part Content-Type', { field: name });
        const charset = /charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? '')?.[1]?.toLowerCase();
        if (charset !== undefined && !LOSSLESS_FIELD_CHARSETS.has(charset) && charset !== 'iso-8859-1' && charset !== 'latin1') {
          throw new GuardError('MALFORMED_MULTIPART', `Unsupported field charset ${charset}`, { field: name });
        }
        const bytes = charset !== undefined && LOSSLESS_FIELD_CHARSETS.has(charset) ? Buffer.from(value, 'utf8') : Buffer.from(value, 'latin1');
        await write(encoder.partHead(name, null, null));
        await write(bytes);
      });
    });

    parser.on('file', (name, stream, info) => {
      emittedParts++;
      openStreams.add(stream);
      stream.on('error', fail);
      stream.once('limit', () => failLater(new GuardError('FILE_TOO_LARGE', undefined, { field: name, filename: info.filename })));
      enqueue(() => filterFile(name, stream, info.filename));
    });

    async function filterFile(name: string | undefined, stream: Readable, original: string | undefined): Promise<void> {
      if (name === undefined || !isSafeParameterValue(name)) throw new GuardError('MALFORMED_MULTIPART', 'A part has no usable name');
      const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      const head: Buffer[] = [];
      let headLength = 0;
      let ended = false;
      while (headLength < SNIFF_BYTES) {
        const next = await chunks.next();
        if (next.done) {
          ended = true;
          break;
        }
        head.push(next.value);
        headLength += next.value.length;
      }
      if (original === undefined || original === '') {
        // A browser's empty file input: no name and no bytes. Anything else is a nameless file.
        if (!ended || headLength > 0) throw new GuardError('MALFORMED_MULTIPART', 'A file part has no filename', { field: name });
        await write(encoder.partHead(name, '', 'application/octet-stream'));
        return;
      }
      const rewritten = rewriteFilename(policy.filenames, original);
      const ext = finalExtension(original);
      if (rewritten === null || ext === null || !policy.allow.has(ext) || finalExtension(rewritten) !== ext || !isSafeParameterValue(rewritten)) {
        throw new GuardError('EXTENSION_NOT_ALLOWED', undefined, { field: name, filename: original });
      }
      const headBytes = head.length === 1 ? head[0]! : Buffer.concat(head);
      if (policy.verifyContent) {
        const verdict = await checkContent(ext, headBytes, ended);
        if (!verdict.ok) throw new GuardError('CONTENT_MISMATCH', verdict.reason, { field: name, filename: original });
      }
      await write(encoder.partHead(name, rewritten, mimeTypeOf(ext)));
      await write(headBytes);
      let bytes = headBytes.length;
      while (!ended) {
        const next = await chunks.next();
        if (next.done) break;
        bytes += next.value.length;
        await write(next.value);
      }
      openStreams.delete(stream);
      files.push({ field: name, filename: rewritten, bytes, category: categoryOf(ext) });
    }

    parser.on('error', (err: Error) => fail(new GuardError('MALFORMED_MULTIPART', `Malformed multipart body: ${err.message}`)));
    parser.on('filesLimit', () => failLater(new GuardError('TOO_MANY_PARTS', 'Too many files')));
    parser.on('fieldsLimit', () => failLater(new GuardError('TOO_MANY_PARTS', 'Too many fields')));
    parser.on('partsLimit', () => failLater(new GuardError('TOO_MANY_PARTS')));
    parser.on('close', () => {
      enqueue(async () => {
        if (!scanner.closed) throw new GuardError('MALFORMED_MULTIPART', 'Malformed multipart body: no close delimiter');
        if (scanner.partDelimiters !== emittedParts) {
          throw new GuardError('MALFORMED_MULTIPART', 'Malformed multipart body: a part could not be read unambiguously');
        }
        await write(encoder.end());
        clearTimeout(idle);
        settled = true;
        resolve({ files, receivedBytes });
      });
    });
    req.on('data', onData);
    req.on('end', () => {
      if (!failed) parser.end();
    });
    req.on('aborted', () => fail(new GuardError('MALFORMED_REQUEST', 'Client aborted the request')));
  });
}
