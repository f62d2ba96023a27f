// Sends raw bytes over a TCP socket and reads back one HTTP/1.1 response, for tests where the
// exact bytes matter (smuggling attempts, malformed framing, slow clients, lingering close).

import { connect } from 'node:net';

export interface RawRequestOptions {
  host?: string;
  /** Source address to connect from (e.g. 127.0.0.2, an untrusted loopback peer). */
  localAddress?: string;
  /** Wait this long between the given pieces (the first is sent at once). */
  delayBetweenMs?: number;
  /** After the last piece, end our side of the connection (send FIN) and keep reading. */
  halfClose?: boolean;
  /** Give up after this long and return what arrived (timedOut: true). Default 10 s. */
  timeoutMs?: number;
  /** Stop sending the remaining pieces once a final response has arrived. Default false. */
  stopWritingOnResponse?: boolean;
  /** After a complete response without `Connection: close`, wait this long for the server to
   *  close anyway before returning (closedByServer stays false if it does not). Default 0. */
  closeGraceMs?: number;
}

export interface RawResponse {
  /** Status of the final (non-1xx) response; 0 if none could be parsed. */
  status: number;
  statusText: string;
  /** Final response headers, lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** Final response header pairs as sent. */
  rawHeaders: Array<[string, string]>;
  /** Interim 1xx responses received before the final one (e.g. 100 Continue). */
  informational: Array<{ status: number; headers: Record<string, string> }>;
  /** The decoded body (chunked framing removed). */
  body: Buffer;
  /** The body was complete by its framing (Content-Length, last chunk, or close-delimited). */
  complete: boolean;
  /** Every byte the server sent. */
  raw: Buffer;
  /** The server closed (FIN or reset) the connection before we stopped reading. */
  closedByServer: boolean;
  /** The connection was reset (ECONNRESET or EPIPE while writing or reading). */
  reset: boolean;
  /** Error code of the socket error, if any. */
  errorCode: string | null;
  /** timeoutMs elapsed before the exchange finished. */
  timedOut: boolean;
  /** Bytes of the request actually written before sending stopped. */
  bytesWritten: number;
}

interface ParsedHead {
  status: number;
  statusText: string;
  headers: Record<string, string>;
  rawHeaders: Array<[string, string]>;
  bodyStart: number;
}

function parseHead(raw: Buffer, from: number): ParsedHead | null {
  const end = raw.indexOf('\r\n\r\n', from, 'latin1');
  if (end === -1) return null;
  const lines = raw.subarray(from, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/\d\.\d (\d{3})(?: (.*))?$/.exec(lines[0]!);
  if (!m) throw new Error(`rawRequest: malformed status line ${JSON.stringify(lines[0])}`);
  const headers: Record<string, string> = {};
  const rawHeaders: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`rawRequest: malformed header line ${JSON.stringify(line)}`);
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    rawHeaders.push([name, value]);
    const key = name.toLowerCase();
    headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
  }
  return { status: Number(m[1]), statusText: m[2] ?? '', headers, rawHeaders, bodyStart: end + 4 };
}

/** Decodes a chunked body; null while incomplete. */
function decodeChunked(raw: Buffer, from: number): Buffer | null {
  const chunks: Buffer[] = [];
  let pos = from;
  for (;;) {
    const lineEnd = raw.indexOf('\r\n', pos, 'latin1');
    if (lineEnd === -1) return null;
    const size = parseInt(raw.subarray(pos, lineEnd).toString('latin1').split(';')[0]!.trim(), 16);
    if (Number.isNaN(size)) throw new Error('rawRequest: malformed chunk size');
    pos = lineEnd + 2;
    if (size === 0) {
      // Trailers, then an empty line.
      for (;;) {
        const end = raw.indexOf('\r\n', pos, 'latin1');
        if (end === -1) return null;
        if (end === pos) return Buffer.concat(chunks);
        pos = end + 2;
      }
    }
    if (raw.length < pos + size + 2) return null;
    chunks.push(raw.subarray(pos, pos + size));
    pos += size + 2;
  }
}

interface ParseResult {
  final: ParsedHead | null;
  informational: RawResponse['informational'];
  body: Buffer;
  complete: boolean;
}

function parseResponse(raw: Buffer, requestMethod: string, closed: boolean): ParseResult {
  const informational: RawResponse['informational'] = [];
  let from = 0;
  for (;;) {
    const head = parseHead(raw, from);
    if (!head) return { final: null, informational, body: Buffer.alloc(0), complete: false };
    if (head.status >= 100 && head.status < 200 && head.status !== 101) {
      informational.push({ status: head.status, headers: head.headers });
      from = head.bodyStart;
      continue;
    }
    const rest = raw.subarray(head.bodyStart);
    if (requestMethod === 'HEAD' || head.status === 204 || head.status === 304 || head.status === 101) {
      return { final: head, informational, body: Buffer.alloc(0), complete: true };
    }
    if (/\bchunked\b/i.test(head.headers['transfer-encoding'] ?? '')) {
      const body = decodeChunked(raw, head.bodyStart);
      return { final: head, informational, body: body ?? rest, complete: body !== null };
    }
    if (head.headers['content-length'] !== undefined) {
      const length = Number(head.headers['content-length']);
      return { final: head, informational, body: rest.subarray(0, length), complete: rest.length >= length };
    }
    return { final: head, informational, body: rest, complete: closed };
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Connects to host:port, writes the pieces (with delayBetweenMs between them), reads one
 * response. Resolves when the server closes the connection, when a complete response has arrived
 * and all pieces were sent (then it closes the socket itself, after closeGraceMs if the response
 * did not announce `Connection: close`), or at timeoutMs. Never rejects for network errors:
 * they show up as reset / errorCode.
 */
export function rawRequest(port: number, bytes: Buffer | Buffer[], opts: RawRequestOptions = {}): Promise<RawResponse> {
  const pieces = Array.isArray(bytes) ? bytes : [bytes];
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const requestMethod = (pieces[0] ?? Buffer.alloc(0)).subarray(0, 16).toString('latin1').split(' ')[0] ?? '';
  return new Promise((resolve) => {
    const socket = connect({ port, host: opts.host ?? '127.0.0.1', ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    const received: Buffer[] = [];
    let raw = Buffer.alloc(0);
    let closedByServer = false;
    let reset = false;
    let errorCode: string | null = null;
    let timedOut = false;
    let writingDone = false;
    let bytesWritten = 0;
    let finished = false;
    let graceTimer: NodeJS.Timeout | null = null;

    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (graceTimer) clearTimeout(graceTimer);
      raw = Buffer.concat(received);
      let parsed: ParseResult;
      try {
        parsed = parseResponse(raw, requestMethod, closedByServer);
      } catch {
        parsed = { final: null, informational: [], body: Buffer.alloc(0), complete: false };
      }
      socket.destroy();
      resolve({
        status: parsed.final?.status ?? 0,
        statusText: parsed.final?.statusText ?? '',
        headers: parsed.final?.headers ?? {},
        rawHeaders: parsed.final?.rawHeaders ?? [],
        informational: parsed.informational,
        body: parsed.body,
        complete: parsed.complete,
        raw,
        closedByServer,
        reset,
        errorCode,
        timedOut,
        bytesWritten,
      });
    };

    const responseDone = (): ParseResult | null => {
      try {
        const parsed = parseResponse(Buffer.concat(received), requestMethod, false);
        return parsed.final && parsed.complete ? parsed : null;
      } catch {
        return null;
      }
    };

    /** A complete response arrived: finish now, or once writing is done, or after the grace. */
    const maybeFinish = (): void => {
      const done = responseDone();
      if (!done || finished) return;
      if (!writingDone && !opts.stopWritingOnResponse) return;
      const announcesClose = /\bclose\b/i.test(done.final!.headers['connection'] ?? '');
      if (announcesClose) return; // wait for the server's close (or the timeout)
      if ((opts.closeGraceMs ?? 0) > 0) {
        graceTimer ??= setTimeout(finish, opts.closeGraceMs);
        return;
      }
      finish();
    };

    const timer = setTimeout(() => {
      timedOut = true;
      finish();
    }, timeoutMs);

    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      maybeFinish();
    });
    socket.on('end', () => {
      closedByServer = true;
      finish();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      errorCode = err.code ?? err.message;
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') {
        reset = true;
        closedByServer = true;
      }
      finish();
    });
    socket.on('close', () => {
      if (!finished) closedByServer = true;
      finish();
    });

    socket.once('connect', async () => {
      for (let i = 0; i < pieces.length; i++) {
        if (finished || socket.destroyed || !socket.writable) break;
        if (opts.stopWritingOnResponse && responseDone()) break;
        if (i > 0 && opts.delayBetweenMs) await sleep(opts.delayBetweenMs);
        if (finished || socket.destroyed || !socket.writable) break;
        if (opts.stopWritingOnResponse && responseDone()) break;
        const piece = pieces[i]!;
        const ok = await new Promise<boolean>((resolveWrite) => {
          socket.write(piece, (err) => resolveWrite(!err));
        });
        if (!ok) break;
        bytesWritten += piece.length;
      }
      writingDone = true;
      if (opts.halfClose && !finished && socket.writable) socket.end();
      maybeFinish();
    });
  });
}
