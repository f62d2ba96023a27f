// Spool mode's buffer for the canonical body (ARCHITECTURE idea 3): memory up to a threshold,
// then a temp file, so the upstream receives the body with an exact Content-Length only after
// the whole request passed. The temp file is unlinked the moment it is created: it lives only
// as an open descriptor, so no path (success, rejection, client abort, crash) can leave it behind.

import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { GuardError } from '../errors.js';

/**
 * Once on disk, chunks are gathered and written this many bytes at a time with one writev, while
 * the next ones gather: one thread-pool round trip per 64 KiB chunk, awaited by the parser,
 * made spool mode crawl. Bounds memory at two batches (one being written, one gathering).
 */
const FILE_BATCH_BYTES = 1024 * 1024;
/** Read-back buffer size: fewer, larger reads and upstream writes than the 64 KiB default. */
const READ_BUFFER_BYTES = 1024 * 1024;

export class Spool {
  private readonly dir: string;
  private readonly memoryThreshold: number;
  /** in memory: the whole body so far; on disk: the batch not yet handed to a write */
  private chunks: Buffer[] = [];
  private chunkBytes = 0;
  private file: FileHandle | null = null;
  /** the batch write in flight, if any; it never rejects (a failure is kept in `failure`) */
  private flushing: Promise<void> | null = null;
  private failure: unknown = null;
  /** bytes handed to file writes so far: where the next batch goes */
  private fileBytes = 0;
  private released = false;
  /** bytes written so far */
  length = 0;

  constructor(dir: string, memoryThreshold: number) {
    this.dir = dir;
    this.memoryThreshold = memoryThreshold;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.released) throw new Error('spool already released');
    if (this.failure !== null) throw this.failure;
    if (this.file === null && this.length + chunk.length > this.memoryThreshold) {
      await this.moveToFile();
    }
    this.chunks.push(chunk);
    this.chunkBytes += chunk.length;
    this.length += chunk.length;
    if (this.file !== null && this.chunkBytes >= FILE_BATCH_BYTES) {
      // at most one batch in flight: wait for the previous one, then start this one and return
      await this.flushing;
      if (this.failure !== null) throw this.failure;
      this.flushing = this.writeBatch();
    }
  }

  /**
   * The spooled body: one Buffer while it is in memory (undici then writes head and body together,
   * with no stream in between: most uploads are small), else a stream of the temp file, which owns
   * the descriptor and closes it once the stream closes.
   */
  async reader(): Promise<Buffer | Readable> {
    if (this.file === null) {
      const chunks = this.chunks;
      this.chunks = [];
      return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.chunkBytes);
    }
    await this.flushing;
    this.flushing = this.writeBatch();
    await this.flushing;
    if (this.failure !== null) throw this.failure;
    const stream = this.file.createReadStream({ start: 0, end: Math.max(0, this.length - 1), autoClose: true, highWaterMark: READ_BUFFER_BYTES });
    this.file = null; // the stream now owns the descriptor
    return stream;
  }

  /** Writes the gathered chunks at the end of the file; records a failure instead of rejecting. */
  private async writeBatch(): Promise<void> {
    const file = this.file;
    let batch = this.chunks;
    let position = this.fileBytes;
    this.fileBytes += this.chunkBytes;
    this.chunks = [];
    this.chunkBytes = 0;
    if (file === null || batch.length === 0) return;
    try {
      while (batch.length > 0) {
        const { bytesWritten } = await file.writev(batch, position);
        position += bytesWritten;
        batch = unwritten(batch, bytesWritten);
      }
    } catch (err) {
      // the spool volume is the guard's storage: a full or failing disk is STORAGE_FULL, not a bad upload
      const code = (err as NodeJS.ErrnoException).code ?? 'EIO';
      this.failure ??= new GuardError('STORAGE_FULL', `Could not spool the upload (${code})`);
    }
  }

  /** Frees memory and closes the temp file; safe to call more than once. */
  async release(): Promise<void> {
    this.released = true;
    this.chunks = [];
    const file = this.file;
    this.file = null;
    if (file === null) return;
    await this.flushing; // a batch still being written holds the descriptor
    await file.close().catch(() => undefined);
  }

  private async moveToFile(): Promise<void> {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const path = join(this.dir, `spool-${randomBytes(12).toString('hex')}`);
    const file = await open(path, 'wx+', 0o600);
    await unlink(path);
    // released (client gone, request refused) while the file was being opened: nobody else will close it
    if (this.released) {
      await file.close();
      throw new Error('spool already released');
    }
    this.file = file; // what is in memory goes out with the first batch
  }
}

/** What is left of `batch` after its first `written` bytes. */
function unwritten(batch: Buffer[], written: number): Buffer[] {
  let skip = written;
  let index = 0;
  while (index < batch.length && skip >= batch[index]!.length) skip -= batch[index++]!.length;
  if (index === batch.length) return [];
  return [batch[index]!.subarray(skip), ...batch.slice(index + 1)];
}
