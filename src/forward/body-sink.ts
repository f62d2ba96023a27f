// Where the canonical body goes while it is being validated: a spool (default; forwarded with an
// exact Content-Length once the whole request passed) or a live chunked upstream request that
// starts with the first validated byte and is aborted on a violation.

import type { Readable } from 'node:stream';
import { ChunkQueue } from './chunk-queue.js';
import { GuardError } from '../errors.js';
import { Spool } from './spool.js';
import type { Upstream, UpstreamCall, UpstreamRequest, UpstreamResponse } from './upstream.js';

export interface BodySink {
  write(chunk: Buffer): Promise<void>;
  /** The body is complete and valid: deliver it and return the upstream's answer. */
  complete(): Promise<UpstreamResponse>;
  /** Drop everything; the upstream never receives a complete request. */
  abort(): void;
  /** bytes handed to the sink */
  readonly length: number;
}

type RequestHead = Omit<UpstreamRequest, 'body'>;

export class SpoolSink implements BodySink {
  private readonly spool: Spool;
  private readonly upstream: Upstream;
  private readonly head: RequestHead;
  constructor(upstream: Upstream, head: RequestHead, dir: string, memoryThreshold: number) {
    this.upstream = upstream;
    this.head = head;
    this.spool = new Spool(dir, memoryThreshold);
  }
  get length(): number {
    return this.spool.length;
  }
  write(chunk: Buffer): Promise<void> {
    return this.spool.write(chunk);
  }
  async complete(): Promise<UpstreamResponse> {
    const headers = { ...this.head.headers, 'content-length': String(this.spool.length) };
    let body: Buffer | Readable;
    try {
      body = await this.spool.reader();
    } catch (err) {
      void this.spool.release();
      throw err;
    }
    if (Buffer.isBuffer(body)) void this.spool.release(); // nothing left to hold: the bytes are in body
    else body.once('close', () => void this.spool.release());
    return this.upstream.start({ ...this.head, headers, body }).response;
  }
  abort(): void {
    void this.spool.release();
  }
}

/** How far the validated body may run ahead of the upstream socket in stream mode. */
const STREAM_BUFFER_BYTES = 1024 * 1024;

export class StreamSink implements BodySink {
  private body: ChunkQueue | null = null;
  private call: UpstreamCall | null = null;
  private failure: unknown = null;
  length = 0;

  private readonly upstream: Upstream;
  private readonly head: RequestHead;
  constructor(upstream: Upstream, head: RequestHead) {
    this.upstream = upstream;
    this.head = head;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.failure !== null) throw this.failure;
    const body = this.start();
    this.length += chunk.length;
    if (body.closed) throw await this.upstreamError();
    if (!body.push(chunk)) {
      await body.room();
      // undici stops reading the body when the request fails, which can reach us before the
      // response promise's rejection does: report the upstream's failure (a SPEC code)
      if (this.failure !== null || body.closed) throw await this.upstreamError();
    }
  }

  async complete(): Promise<UpstreamResponse> {
    const body = this.start();
    body.end();
    return this.call!.response;
  }

  abort(): void {
    const reason = new Error('upload aborted');
    this.call?.abort(reason);
    this.body?.destroy(reason);
  }

  /**
   * The upstream request begins only once there is something validated to send. The body is an
   * async iterable: it has no length, so undici sends it chunked, as SPEC says stream mode does
   * (given a stream that has already ended, undici would measure it and send a Content-Length).
   */
  private start(): ChunkQueue {
    if (this.body !== null) return this.body;
    // Room for a few socket-sized chunks: with a single chunk of room the parser and the upstream
    // socket take turns (one chunk in flight) and half the time both sides sit idle.
    const body = new ChunkQueue(STREAM_BUFFER_BYTES);
    this.body = body;
    const headers = { ...this.head.headers };
    this.call = this.upstream.start({ ...this.head, headers, body });
    this.call.response.catch((err: unknown) => {
      this.failure = err;
      body.destroy(err instanceof Error ? err : new Error(String(err)));
    });
    return body;
  }

  /** Why the upstream request failed, once the body could not be sent. */
  private async upstreamError(): Promise<unknown> {
    if (this.failure !== null) return this.failure;
    try {
      await this.call?.response;
    } catch (err) {
      return err;
    }
    return new GuardError('UPSTREAM_UNAVAILABLE');
  }
}
