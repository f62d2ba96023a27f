// A worker's observer when the guard runs several processes: finished requests, in-flight starts
// and storage samples are batched and sent to the primary, which owns the metrics and the status
// page, so /metrics shows one consistent set of counters for the whole pod. Batching keeps the
// IPC cost off the per-request path.

import type { FinishedRequest, RequestObserver } from '../observe/request-observer.js';
import type { WorkerMessage } from './messages.js';

const FLUSH_MS = 200;

export class ForwardingObserver implements RequestObserver {
  #started: string[] = [];
  #finished: FinishedRequest[] = [];
  #storageFree: number | null = null;
  readonly #timer: NodeJS.Timeout;

  constructor() {
    this.#timer = setInterval(() => this.flush(), FLUSH_MS);
    this.#timer.unref();
  }

  started(route: string): void {
    this.#started.push(route);
  }

  finished(request: FinishedRequest): void {
    this.#finished.push(request);
  }

  storageFree(bytes: number): void {
    this.#storageFree = bytes;
  }

  flush(): void {
    if (this.#started.length === 0 && this.#finished.length === 0 && this.#storageFree === null) return;
    if (!process.connected) return;
    const message: WorkerMessage = { ug: 'observed', started: this.#started, finished: this.#finished, storageFree: this.#storageFree };
    this.#started = [];
    this.#finished = [];
    this.#storageFree = null;
    process.send!(message);
  }

  close(): void {
    clearInterval(this.#timer);
    this.flush();
  }
}
