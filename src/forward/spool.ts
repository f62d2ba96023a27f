// Spool mode's buffer for the canonical body (ARCHITECTURE idea 3): memory up to a threshold,
// then a temp file, so the upstream receives the body with an exact Content-Length only after
// the whole request passed. The temp file is unlinked the moment it is created: it lives only
// as an open descriptor, so no path (success, rejection, client abort, crash) can leave it behind.

import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';

export class Spool {
  private readonly dir: string;
  private readonly memoryThreshold: number;
  private chunks: Buffer[] = [];
  private file: FileHandle | null = null;
  private released = false;
  /** bytes written so far */
  length = 0;

  constructor(dir: string, memoryThreshold: number) {
    this.dir = dir;
    this.memoryThreshold = memoryThreshold;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.released) throw new Error('spool already released');
    if (this.file === null && this.length + chunk.length > this.memoryThreshold) {
      await this.moveToFile();
    }
    if (this.file !== null) {
      let offset = 0;
      while (offset < chunk.length) {
        const { bytesWritten } = await this.file.write(chunk, offset, chunk.length - offset, this.length + offset);
        offset += bytesWritten;
      }
    } else {
      this.chunks.push(chunk);
    }
    this.length += chunk.length;
  }

  /** The spooled body as a stream; the spool releases itself once the stream closes. */
  reader(): Readable {
    if (this.file === null) {
      const chunks = this.chunks;
      this.chunks = [];
      return Readable.from(chunks, { objectMode: false });
    }
    const stream = this.file.createReadStream({ start: 0, end: Math.max(0, this.length - 1), autoClose: true });
    this.file = null; // the stream now owns the descriptor
    return stream;
  }

  /** Frees memory and closes the temp file; safe to call more than once. */
  async release(): Promise<void> {
    this.released = true;
    this.chunks = [];
    const file = this.file;
    this.file = null;
    if (file !== null) await file.close().catch(() => undefined);
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
    this.file = file;
    let position = 0;
    for (const chunk of this.chunks) {
      await file.write(chunk, 0, chunk.length, position);
      position += chunk.length;
    }
    this.chunks = [];
  }
}
