// `storage: {path, minFree}` (seed article: "monitor /uploads size"): the free space of the
// volume the upstream stores uploads on, sampled in the background so the request path only
// reads a number. Below the floor, upload routes answer 507 STORAGE_FULL; the last sample feeds
// the upload_guard_storage_free_bytes gauge.

import { statfs } from 'node:fs/promises';
import { logEvent } from '../observe/log.js';

export const STORAGE_SAMPLE_MS = 5_000;

export class StorageWatch {
  readonly path: string;
  readonly minFree: number;
  /** bytes available to unprivileged writers at the last sample; null before the first or when statfs fails */
  freeBytes: number | null = null;
  readonly #onSample: (freeBytes: number) => void;
  #timer: NodeJS.Timeout | null = null;
  #lastError = '';

  constructor(path: string, minFree: number, onSample: (freeBytes: number) => void = () => {}) {
    this.path = path;
    this.minFree = minFree;
    this.#onSample = onSample;
  }

  /** Takes the first sample (so the first request is already judged), then samples periodically. */
  async start(sampleMs = STORAGE_SAMPLE_MS): Promise<void> {
    await this.sample();
    this.#timer = setInterval(() => void this.sample(), sampleMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** True while the volume is known to be below its floor. Unknown (statfs failing) is not full: the upstream still decides. */
  get isFull(): boolean {
    return this.freeBytes !== null && this.freeBytes < this.minFree;
  }

  async sample(): Promise<void> {
    try {
      const stats = await statfs(this.path);
      // bavail, not bfree: what a non-root uploader can actually write
      this.freeBytes = stats.bavail * stats.bsize;
      this.#onSample(this.freeBytes);
    } catch (err) {
      this.freeBytes = null;
      const message = err instanceof Error ? err.message : String(err);
      if (message !== this.#lastError) logEvent('storage watch failed', { path: this.path, error: message });
      this.#lastError = message;
    }
  }
}
