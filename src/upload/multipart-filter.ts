// The body stage of an upload route (ARCHITECTURE "decodeData filter"): raw bytes → framing
// scanner + busboy → per-part checks → canonical encoder → body sink. Parts are written strictly
// in order; each file is held for a bounded sniff window, then streamed. The first violation
// wins and stops everything; nothing is decided by guessing.

import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import busboy from 'busboy';
import StreamSearch from 'streamsearch';
import type { CompiledPolicy } from '../config/types.js';
import { GuardError } from '../errors.js';
import type { BodySink } from '../forward/body-sink.js';
import { CanonicalEncoder, isSafeParameterValue } from './canonical-encoder.js';
import { checkContent, SNIFF_BYTES } from './content-check.js';
import { DelimiterScanner, rawPartHeader } from './delimiter-scanner.js';
import { categoryOf } from './file-kinds.js';
import { ContentInspector } from './content-inspector.js';
import { applyFilenameRules } from './filename-rules.js';
import { finalExtension } from './filenames.js';
import { FileScan } from './malware-scan.js';
import { mimeTypeOf } from './mime-types.js';
import { readPartHeaders } from './part-headers.js';

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

const PARSER_BUFFER_BYTES = 512 * 1024;
/** The most received bytes joined into one parser write. */
const BATCH_BYTES = 1024 * 1024;
/** Bodies are parsed read by read up to here, then in batches. */
const BATCH_AFTER_BYTES = 1024 * 1024;

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
    // policy scan: one clamd stream per file; every verdict is in before the body's end is written
    const openScans = new Set<FileScan>();
    const verdicts: Promise<void>[] = [];

    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        // Room for several socket reads: with busboy's 16 KiB defaults the socket is paused and
        // resumed every few chunks and the upload crawls (bounded memory either way).
        highWaterMark: PARSER_BUFFER_BYTES,
        fileHwm: PARSER_BUFFER_BYTES,
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
      for (const scan of openScans) scan.abort();
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

    // Socket reads arrive 64 KiB at a time, several per event-loop turn on a fast upload. Everything
    // downstream (busboy's file stream, the checks, the sink, the upstream's chunked frames) costs
    // about as much per chunk as per byte, so past the first BATCH_AFTER_BYTES the reads of one
    // turn are joined and parsed as one. The start of every body is parsed as it arrives: a
    // refusal there (a bad name, a bad head) is decided in the same turn, before node:http hands
    // over a request pipelined behind it.
    let batch: Buffer[] = [];
    let batchBytes = 0;
    let batchScheduled = false;

    function onData(chunk: Buffer): void {
      receivedBytes += chunk.length;
      idle.refresh();
      if (receivedBytes > policy.maxRequestSize) return fail(new GuardError('REQUEST_TOO_LARGE'));
      onBytes?.(chunk.length, fail);
      if (failed) return;
      batch.push(chunk);
      batchBytes += chunk.length;
      if (batchBytes >= BATCH_BYTES || receivedBytes <= BATCH_AFTER_BYTES) return parseBatch();
      if (!batchScheduled) {
        batchScheduled = true;
        setImmediate(parseBatch);
      }
    }

    function parseBatch(): void {
      batchScheduled = false;
      if (failed || batchBytes === 0) return;
      const chunk = batch.length === 1 ? batch[0]! : Buffer.concat(batch, batchBytes);
      batch = [];
      batchBytes = 0;
      scanner.feed(chunk);
      if (scanner.problem !== null) return fail(new GuardError('MALFORMED_MULTIPART', `Malformed multipart body: ${scanner.problem}`));
      // the epilogue is nobody's business, and busboy would parse it (delimiter-scanner.ts)
      const parsed = scanner.epilogueStart === null ? chunk : chunk.subarray(0, scanner.epilogueStart);
      // The framing scan just searched these bytes for "--BOUNDARY", the end of busboy's needle
      // "\r\n--BOUNDARY": where it found none, busboy's search need not look again.
      if (scanner.chunkHoldsNoBoundary) StreamSearch.declareAbsent(parsed, scanner.dashBoundary);
      if (parsed.length > 0 && !parser.write(parsed)) {
        req.pause();
        parser.once('drain', () => req.resume());
      }
    }

    parser.on('field', (name, value, info) => {
      const index = emittedParts++;
      enqueue(async () => {
        if (name === undefined || !isSafeParameterValue(name)) throw new GuardError('MALFORMED_MULTIPART', 'A part has no usable name');
        if (info.valueTruncated) throw new GuardError('TOO_MANY_PARTS', 'Field value too large', { field: name });
        const reading = readPartHeaders(scanner.partHeaders[index] ?? '');
        if (reading.problem !== null) throw new GuardError('MALFORMED_MULTIPART', `Malformed multipart body: ${reading.problem}`, { field: name });
        if (reading.hasFilename) {
          // filename="": busboy reports a field, Werkzeug a file part with an empty filename
          if (value !== '') throw new GuardError('MALFORMED_MULTIPART', 'A file part has no filename', { field: name });
          await write(encoder.partHead(name, '', 'application/octet-stream'));
          return;
        }
        const contentType = rawPartHeader(scanner.partHeaders[index] ?? '', 'content-type');
        if (contentType === null) throw new GuardError('MALFORMED_MULTIPART', 'Duplicate part Content-Type', { field: name });
        // busboy and this regex read the first charset parameter, Werkzeug the last
        if ((contentType?.match(/charset[\s*\d]*=/gi) ?? []).length > 1) throw new GuardError('MALFORMED_MULTIPART', 'Duplicate charset parameter', { field: name });
        const charset = /charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? '')?.[1]?.toLowerCase();
        if (charset !== undefined && !LOSSLESS_FIELD_CHARSETS.has(charset) && charset !== 'iso-8859-1' && charset !== 'latin1') {
          throw new GuardError('MALFORMED_MULTIPART', `Unsupported field charset ${charset}`, { field: name });
        }
        // The canonical part declares no charset, so Werkzeug decodes it as UTF-8: undeclared bytes
        // go through unchanged (read alike both times), declared text is re-encoded as UTF-8, and
        // non-ASCII bytes in an ASCII field become U+FFFD as Python's decode(errors="replace") does.
        const text = charset === 'us-ascii' || charset === 'ascii' ? value.replace(/[^\x00-\x7f]/g, '\ufffd') : value;
        const bytes = charset !== undefined ? Buffer.from(text, 'utf8') : Buffer.from(value, 'latin1');
        await write(encoder.partHead(name, null, null));
        await write(bytes);
      });
    });

    parser.on('file', (name, stream, info) => {
      const index = emittedParts++;
      openStreams.add(stream);
      stream.on('error', fail);
      stream.once('limit', () => failLater(new GuardError('FILE_TOO_LARGE', undefined, { field: name, filename: info.filename })));
      enqueue(() => filterFile(name, stream, info.filename, index));
    });

    async function filterFile(name: string | undefined, stream: Readable, original: string | undefined, index: number): Promise<void> {
      if (name === undefined || !isSafeParameterValue(name)) throw new GuardError('MALFORMED_MULTIPART', 'A part has no usable name');
      const reading = readPartHeaders(scanner.partHeaders[index] ?? '');
      if (reading.problem !== null) throw new GuardError('MALFORMED_MULTIPART', `Malformed multipart body: ${reading.problem}`, { field: name });
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
        // without a filename parameter (busboy's "file" by Content-Type alone) Werkzeug reads a field
        await write(reading.hasFilename ? encoder.partHead(name, '', 'application/octet-stream') : encoder.partHead(name, null, null));
        return;
      }
      const named = applyFilenameRules(policy.filenames, policy.filenameRules, original);
      if (!named.ok) throw new GuardError(named.code, named.message, { field: name, filename: original, reason: named.reason });
      const rewritten = named.name;
      const ext = finalExtension(named.original);
      if (rewritten === null || ext === null || !policy.allow.has(ext) || finalExtension(rewritten) !== ext || !isSafeParameterValue(rewritten)) {
        throw new GuardError('EXTENSION_NOT_ALLOWED', undefined, { field: name, filename: original });
      }
      const headBytes = head.length === 1 ? head[0]! : Buffer.concat(head);
      if (policy.verifyContent) {
        const verdict = await checkContent(ext, headBytes, ended);
        if (!verdict.ok) throw new GuardError('CONTENT_MISMATCH', verdict.reason, { field: name, filename: original });
      }
      // every byte of the file, as it streams: metadata, trailers, PDF actions, macros (content-inspector.ts)
      const inspector = policy.verifyContent ? new ContentInspector(ext) : null;
      const inspect = (chunk: Buffer): void => {
        const problem = inspector?.feed(chunk) ?? null;
        if (problem !== null) throw new GuardError('CONTENT_MISMATCH', problem, { field: name, filename: original });
      };
      inspect(headBytes);
      const scan = startScan(name, original);
      await write(encoder.partHead(name, rewritten, mimeTypeOf(ext)));
      await Promise.all([write(headBytes), scan?.write(headBytes)]);
      let bytes = headBytes.length;
      while (!ended) {
        const next = await chunks.next();
        if (next.done) break;
        bytes += next.value.length;
        inspect(next.value);
        await Promise.all([write(next.value), scan?.write(next.value)]);
      }
      const verdict = inspector?.finish() ?? null;
      if (verdict !== null) throw new GuardError('CONTENT_MISMATCH', verdict, { field: name, filename: original });
      scan?.end();
      openStreams.delete(stream);
      files.push({ field: name, filename: rewritten, bytes, category: categoryOf(ext) });
    }

    /** Policy scan: the file's bytes go to clamd as well; a refusal fails the request as soon as it is known. */
    function startScan(field: string, filename: string): FileScan | null {
      if (policy.scan === undefined) return null;
      const scan = new FileScan(policy.scan, { requestId: String(req.headers['x-request-id'] ?? ''), field, filename });
      openScans.add(scan);
      verdicts.push(scan.outcome.then(() => void openScans.delete(scan), fail));
      return scan;
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
        if (verdicts.length > 0) {
          // The client sent everything; the end of the body (closing delimiter, and in stream mode
          // the terminating chunk after it) waits for every file's verdict, so an infected upload
          // never reaches the upstream complete.
          clearTimeout(idle);
          await Promise.all(verdicts);
        }
        await write(encoder.end());
        clearTimeout(idle);
        settled = true;
        resolve({ files, receivedBytes });
      });
    });
    req.on('data', onData);
    req.on('end', () => {
      parseBatch();
      if (!failed) parser.end();
    });
    req.on('aborted', () => fail(new GuardError('MALFORMED_REQUEST', 'Client aborted the request')));
  });
}
