// A clamd client for one file: zINSTREAM over TCP or a unix socket (clamd(8), "INSTREAM").
//
// Wire format: the command `zINSTREAM\0`, then the file as it streams, in chunks of
// <4-byte big-endian length><data>, then a zero-length chunk. clamd spools the stream to a temp
// file, scans it once the zero-length chunk arrived, answers one NUL-terminated line and closes:
//   "stream: OK"                           clean
//   "stream: <Signature> FOUND"            infected
//   "INSTREAM size limit exceeded. ERROR"  more than clamd.conf's StreamMaxLength (clamd answers
//                                          as soon as the limit is passed, then closes)
//   "<anything> ERROR"                     clamd could not scan (temp dir full, out of memory...)
//
// Memory stays bounded: a write waits for the socket to drain, so a scanner that reads slowly
// slows the upload down rather than piling the file up here. The timeout runs only while this
// side waits for clamd (connecting, a full socket, the answer), never while the client is simply
// slow to send the next bytes.
//
// Over StreamMaxLength, clamd answers and closes while our next chunks are still unread in its
// socket, so its kernel resets the connection. A write that meets the reset fails at once and
// Node closes the socket before the answer waiting in our receive buffer is read (about 1 scan in
// 200 here). A connection lost without an answer is therefore asked about once more: a second
// INSTREAM announces as many bytes as this one did and sends none; clamd checks a chunk's length
// against StreamMaxLength before reading it, so it answers "size limit exceeded" at once if that
// is why the first one closed, and otherwise waits for data, which we take as "no".

import { connect, type Socket } from 'node:net';
import type { ClamdAddress } from '../config/types.js';

export type ClamdVerdict =
  | { kind: 'clean' }
  | { kind: 'infected'; signature: string }
  /** over clamd's StreamMaxLength, or (set by the caller) over the policy's maxScanSize */
  | { kind: 'too-large'; detail: string }
  /** no verdict: unreachable, timed out, closed without answering, answered an error */
  | { kind: 'error'; detail: string; timeout: boolean };

const COMMAND = Buffer.from('zINSTREAM\0', 'latin1');
const END_OF_STREAM = Buffer.alloc(4);
/** clamd's answer is one short line; anything longer without a terminator is not clamd. */
const MAX_REPLY_BYTES = 4096;
/** clamd reads a chunk's length as an unsigned 32-bit number; stay well below it. */
const MAX_CHUNK_BYTES = 1024 * 1024;
/** How long the size-limit question waits for clamd's immediate answer (capped by the timeout). */
const SIZE_PROBE_WAIT_MS = 1000;

/** Reads clamd's one-line answer to INSTREAM (without its NUL or newline terminator). */
export function parseClamdReply(line: string): ClamdVerdict {
  // Inside an IDSESSION clamd prefixes "<n>: "; harmless to accept.
  const text = line.replace(/^\d+: /, '').trim();
  if (/^stream: OK$/.test(text)) return { kind: 'clean' };
  const found = /^stream: (.+) FOUND$/.exec(text);
  if (found !== null) return { kind: 'infected', signature: printableSignature(found[1]!) };
  if (/size limit exceeded/i.test(text)) return { kind: 'too-large', detail: `clamd: ${text}` };
  return { kind: 'error', detail: text === '' ? 'clamd closed the connection without a verdict' : `clamd: ${text}`, timeout: false };
}

/** Signature names end up in a JSON answer and a log line: printable ASCII, bounded. */
function printableSignature(name: string): string {
  const cleaned = name.replace(/[^\x21-\x7e]/g, '?').slice(0, 200);
  return cleaned === '' ? 'unknown' : cleaned;
}

/** One INSTREAM scan: write() the file's bytes as they come, end(), read `verdict`. */
export class ClamdStream {
  /** Settles once: clamd's answer, or why there is none. Never rejects. */
  readonly verdict: Promise<ClamdVerdict>;
  private result: ClamdVerdict | null = null;
  private resolveVerdict!: (verdict: ClamdVerdict) => void;
  private readonly address: ClamdAddress;
  private readonly socket: Socket;
  private probe: Socket | null = null;
  private readonly timeoutMs: number;
  /** the sum of the chunk lengths announced to clamd so far */
  private announcedBytes = 0;
  private reply = Buffer.alloc(0);
  private ended = false;
  /** waits in progress (connect, drain, answer); the timeout runs only while there is one */
  private waits = 0;
  /** writers parked on a full socket; woken by 'drain' or by the verdict */
  private readonly parked = new Set<() => void>();

  constructor(address: ClamdAddress, timeoutMs: number) {
    this.address = address;
    this.timeoutMs = timeoutMs;
    this.verdict = new Promise((resolve) => (this.resolveVerdict = resolve));
    this.socket = connectTo(address);
    const socket = this.socket;
    socket.on('data', (data: Buffer) => this.onData(data));
    socket.on('drain', () => this.wake());
    socket.on('timeout', () => this.settle({ kind: 'error', detail: `clamd made no progress for ${this.timeoutMs} ms`, timeout: true }));
    socket.on('error', (err: NodeJS.ErrnoException) => this.lost(`clamd: ${err.code ?? err.message}`));
    socket.on('close', () => this.lost('clamd closed the connection without a verdict'));
    this.beginWait();
    socket.once('connect', () => this.endWait());
    socket.write(COMMAND);
  }

  /** True once the verdict is known (later writes are dropped). */
  get settled(): boolean {
    return this.result !== null;
  }

  /** Sends the next bytes of the file; resolves when clamd can take more (or the scan settled). */
  async write(chunk: Buffer): Promise<void> {
    for (let offset = 0; offset < chunk.length && this.open; offset += MAX_CHUNK_BYTES) {
      const piece = chunk.subarray(offset, offset + MAX_CHUNK_BYTES);
      const length = Buffer.allocUnsafe(4);
      length.writeUInt32BE(piece.length, 0);
      this.announcedBytes += piece.length;
      this.socket.write(length);
      if (!this.socket.write(piece)) await this.drained();
    }
  }

  /** The file is complete: send the terminating zero-length chunk and wait for the answer. */
  end(): Promise<ClamdVerdict> {
    if (this.open) {
      this.ended = true;
      this.socket.write(END_OF_STREAM);
      this.beginWait();
    }
    return this.verdict;
  }

  /** Stops the scan with this verdict (the caller decided without clamd: aborted, over maxScanSize). */
  cancel(verdict: ClamdVerdict): void {
    this.settle(verdict);
  }

  /** Still sending: no verdict, not ended, the connection not lost. */
  private get open(): boolean {
    return this.result === null && !this.ended && this.probe === null && !this.socket.destroyed;
  }

  private drained(): Promise<void> {
    if (!this.open) return Promise.resolve();
    this.beginWait();
    return new Promise<void>((resolve) => {
      this.parked.add(resolve);
    }).finally(() => this.endWait());
  }

  private wake(): void {
    const parked = [...this.parked];
    this.parked.clear();
    for (const resolve of parked) resolve();
  }

  /** socket.setTimeout counts idle time and is refreshed by every byte read or written. */
  private beginWait(): void {
    if (this.waits++ === 0 && this.result === null) this.socket.setTimeout(this.timeoutMs);
  }

  private endWait(): void {
    if (--this.waits === 0 && this.result === null) this.socket.setTimeout(0);
  }

  private onData(data: Buffer): void {
    if (this.result !== null) return;
    this.reply = Buffer.concat([this.reply, data]);
    const line = terminatedLine(this.reply);
    if (line !== null) this.settle(parseClamdReply(line));
    else if (this.reply.length > MAX_REPLY_BYTES) this.settle({ kind: 'error', detail: 'clamd sent an unreadable answer', timeout: false });
  }

  /** The connection ended or failed before a terminated answer arrived. */
  private lost(detail: string): void {
    if (this.result !== null || this.probe !== null) return;
    // An unterminated answer still counts when the connection ends right after it.
    if (this.reply.length > 0) return this.settle(parseClamdReply(this.reply.toString('latin1')));
    if (this.announcedBytes === 0) return this.settle({ kind: 'error', detail, timeout: false });
    this.wake();
    this.askWhetherTooLarge(detail);
  }

  /** See the file comment: announce as many bytes again, send none, and read the answer if any. */
  private askWhetherTooLarge(detail: string): void {
    const probe = connectTo(this.address);
    this.probe = probe;
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(Math.min(this.announcedBytes, 0xffffffff), 0);
    probe.write(Buffer.concat([COMMAND, length]));
    let answer = Buffer.alloc(0);
    const conclude = (): void => {
      clearTimeout(timer);
      probe.destroy();
      const verdict = parseClamdReply(terminatedLine(answer) ?? answer.toString('latin1'));
      this.settle(verdict.kind === 'too-large' ? verdict : { kind: 'error', detail, timeout: false });
    };
    const timer = setTimeout(conclude, Math.min(SIZE_PROBE_WAIT_MS, this.timeoutMs));
    probe.on('data', (data: Buffer) => {
      answer = Buffer.concat([answer, data]).subarray(0, MAX_REPLY_BYTES);
      if (terminatedLine(answer) !== null) conclude();
    });
    probe.on('error', () => undefined);
    probe.on('close', conclude);
  }

  private settle(verdict: ClamdVerdict): void {
    if (this.result !== null) return;
    this.result = verdict;
    this.socket.setTimeout(0);
    this.socket.destroy();
    this.probe?.destroy();
    this.wake();
    this.resolveVerdict(verdict);
  }
}

/** clamd's answer up to its NUL or newline terminator; null while the terminator has not arrived. */
function terminatedLine(bytes: Buffer): string | null {
  const end = bytes.findIndex((byte) => byte === 0 || byte === 0x0a);
  return end === -1 ? null : bytes.toString('latin1', 0, end);
}

function connectTo(address: ClamdAddress): Socket {
  return address.kind === 'tcp' ? connect({ host: address.host, port: address.port }) : connect({ path: address.path });
}
