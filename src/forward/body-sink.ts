// Where the canonical body goes while it is being validated: a spool (default; forwarded with an
// exact Content-Length once the whole request passed) or a live chunked upstream request that
// starts with the first validated byte and is aborted on a violation.

import { once } from 'node:events';
import { PassThrough } from 'node:stream';
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
    const body = this.spool.reader();
    try {
      return await this.upstream.send({ ...this.head, headers, body });
    } finally {
      body.once('close', () => void this.spool.release());
    }
  }
  abort(): void {
    void this.spool.release();
  }
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
    if (!body.write(chunk)) {
      await Promise.race([once(body, 'drain'), once(body, 'close')]);
      if (this.failure !== null) throw this.failure;
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
    const body = new PassThrough({ highWaterMark: 64 * 1024 });
    this.body = body;
    const headers = { ...this.head.headers };
    this.response = this.upstream.send({ ...this.head, headers, body, signal: this.controller.signal });
    this.response.catch((err: unknown) => {
      this.failure = err;
      body.destroy();
    });
    return body;
  }
}
