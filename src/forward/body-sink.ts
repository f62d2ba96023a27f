// Where the canonical body goes while it is being validated: a spool (default; forwarded with an
// exact Content-Length once the whole request passed) or a live chunked upstream request that
// starts with the first validated byte and is aborted on a violation.

import { PassThrough, type Readable } from 'node:stream';
import { GuardError } from '../errors.js';
import { Spool } from './spool.js';
import type { Upstream, UpstreamRequest, UpstreamResponse } from './upstream.js';

export interface BodySink {
  write(chunk: Buffer): Promise<void>;
  /** The body is complete and valid: deliver it and return the upstream's answer. */
  complete(): Promise<UpstreamResponse>;
  /** Drop everything; the upstream never receives a complete request. */
  abort(): void;
  /** bytes handed to the sink */
  readonly length: number;
}

type RequestHead = Omit<UpstreamRequest, 'body' | 'signal'>;

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
    try {
      return await this.upstream.send({ ...this.head, headers, body });
    } finally {
      if (!Buffer.isBuffer(body)) body.once('close', () => void this.spool.release());
    }
  }
  abort(): void {
    void this.spool.release();
  }
}

/** How far the validated body may run ahead of the upstream socket in stream mode. */
const STREAM_BUFFER_BYTES = 1024 * 1024;

/**
 * Resolves on the first of `events` and removes all its listeners. (events.once would leave the
 * losers' listeners behind: one pair per backpressure wait, ~16,000 for 1 GiB, whose removal at
 * close stalls the event loop; an AbortSignal to clean them up costs a DOMException per wait.)
 */
function firstEvent(emitter: Readable, events: readonly string[]): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      for (const event of events) emitter.off(event, done);
      resolve();
    };
    for (const event of events) emitter.on(event, done);
  });
}

export class StreamSink implements BodySink {
  private readonly controller = new AbortController();
  private body: PassThrough | null = null;
  private response: Promise<UpstreamResponse> | null = null;
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
    if (body.destroyed) throw await this.upstreamError();
    if (!body.write(chunk)) {
      // undici destroys the body with its own error when the request fails, which can reach
      // us before the response promise's rejection does: wait for either, then report the
      // upstream's failure (a SPEC code), not the raw stream error.
      await firstEvent(body, ['drain', 'close']);
      if (this.failure !== null || body.destroyed) throw await this.upstreamError();
    }
  }

  async complete(): Promise<UpstreamResponse> {
    const body = this.start();
    body.end();
    return this.response!;
  }

  abort(): void {
    this.controller.abort();
    this.body?.destroy();
  }

  /** The upstream request begins only once there is something validated to send. */
  private start(): PassThrough {
    if (this.body !== null) return this.body;
    // Room for a few socket-sized chunks: with a single chunk of room the parser and the upstream
    // socket take turns (one chunk in flight) and half the time both sides sit idle.
    const body = new PassThrough({ highWaterMark: STREAM_BUFFER_BYTES });
    this.body = body;
    const headers = { ...this.head.headers };
    this.response = this.upstream.send({ ...this.head, headers, body: unmeasured(body), signal: this.controller.signal });
    this.response.catch((err: unknown) => {
      this.failure = err;
      body.destroy();
    });
    return body;
  }

  /** Why the upstream request failed, once the body stream died. */
  private async upstreamError(): Promise<unknown> {
    if (this.failure !== null) return this.failure;
    try {
      await this.response;
    } catch (err) {
      return err;
    }
    return new GuardError('UPSTREAM_UNAVAILABLE');
  }
}

/**
 * The body as an async iterable. Given a stream, undici measures it and sends a Content-Length
 * instead of chunked when the stream has already ended with all its bytes buffered, which is
 * what a tiny body looks like by the time the connection is ready. An async iterable has no
 * length, so stream mode always forwards chunked as SPEC says.
 */
async function* unmeasured(body: Readable): AsyncGenerator<Buffer> {
  // Everything buffered at once (read() with no size concatenates): fewer, larger chunked frames
  // and writev calls than one per parser chunk, which is what stream mode's speed hangs on.
  while (true) {
    const buffered = body.read() as Buffer | null;
    if (buffered !== null) {
      yield buffered;
      continue;
    }
    if (body.readableEnded) return;
    if (body.destroyed) throw body.errored ?? new Error('body destroyed before its end');
    await firstEvent(body, ['readable', 'end', 'close']);
  }
}
