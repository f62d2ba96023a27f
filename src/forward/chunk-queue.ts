// Stream mode's hand-over between the body filter and undici: validated chunks queue here until
// undici's request asks for more (it iterates the body), up to a high-water mark past which the
// filter waits. A PassThrough did this before; the queue has no stream machinery and no listeners
// to add and remove per wait, which a 16 KiB upload paid for on every request.

export class ChunkQueue implements AsyncIterable<Buffer> {
  private readonly highWaterMark: number;
  private chunks: Buffer[] = [];
  private bytes = 0;
  private ended = false;
  private failure: Error | null = null;
  private consumerWaiting: (() => void) | null = null;
  private producerWaiting: (() => void) | null = null;

  constructor(highWaterMark: number) {
    this.highWaterMark = highWaterMark;
  }

  /** True once the queue failed or its reader went away: nothing written now is read. */
  get closed(): boolean {
    return this.failure !== null;
  }

  /** Queues a chunk. False: the queue is full, wait for `room()` before the next. */
  push(chunk: Buffer): boolean {
    if (this.failure === null && chunk.length > 0) {
      this.chunks.push(chunk);
      this.bytes += chunk.length;
      this.wake('consumer');
    }
    return this.failure !== null || this.bytes < this.highWaterMark;
  }

  /** Resolves once the reader took what was queued, or the queue closed. */
  room(): Promise<void> {
    if (this.failure !== null || this.bytes < this.highWaterMark) return Promise.resolve();
    return new Promise((resolve) => {
      this.producerWaiting = resolve;
    });
  }

  /** No more chunks: the reader ends after what is queued. */
  end(): void {
    this.ended = true;
    this.wake('consumer');
  }

  /** The reader gets `err` instead of what is left; a waiting writer is released. */
  destroy(err: Error): void {
    this.failure ??= err;
    this.chunks = [];
    this.bytes = 0;
    this.wake('consumer');
    this.wake('producer');
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        if (this.failure !== null) throw this.failure;
        if (this.bytes > 0) {
          // everything queued at once: fewer, larger chunked frames and socket writes
          const out = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.bytes);
          this.chunks = [];
          this.bytes = 0;
          this.wake('producer');
          yield out;
          continue;
        }
        if (this.ended) return;
        await new Promise<void>((resolve) => {
          this.consumerWaiting = resolve;
        });
      }
    } finally {
      // the reader stopped early (the request failed): writers must not wait for it
      if (!this.ended || this.bytes > 0) this.destroy(this.failure ?? new Error('body reader closed'));
    }
  }

  private wake(who: 'consumer' | 'producer'): void {
    const waiting = who === 'consumer' ? this.consumerWaiting : this.producerWaiting;
    if (waiting === null) return;
    if (who === 'consumer') this.consumerWaiting = null;
    else this.producerWaiting = null;
    waiting();
  }
}
