// TailKeeper: the last `size` bytes of a stream, for checks that look at a file's end (an archive
// appended to an image: zip-scan.ts endsWithZip) without holding the whole file.

/**
 * Keeps the last `size` bytes of a stream in a ring buffer. The ring starts small and doubles up
 * to `size`: most uploads are far smaller than the 64 KiB a zip end record may need, and a
 * zero-filled 64 KiB per file was a fifth of the inspection time of a 16 KiB image.
 */
export class TailKeeper {
  private readonly size: number;
  private ring: Buffer = Buffer.alloc(0);
  private written = 0;

  constructor(size: number) {
    this.size = size;
  }

  feed(chunk: Buffer): void {
    const size = this.size;
    if (this.ring.length < size) {
      const needed = Math.min(size, this.written + chunk.length);
      if (needed > this.ring.length) {
        // Unfilled: only bytes written are ever read back. Until the ring has its full size the
        // bytes sit at [0, written), which is where the ring arithmetic below expects them.
        const grown = Buffer.allocUnsafe(Math.min(size, Math.max(needed, 2 * this.ring.length)));
        this.ring.copy(grown, 0, 0, this.written);
        this.ring = grown;
      }
      if (this.ring.length < size) {
        chunk.copy(this.ring, this.written);
        this.written += chunk.length;
        return;
      }
    }
    const piece = chunk.length > size ? chunk.subarray(chunk.length - size) : chunk;
    let at = (this.written + (chunk.length - piece.length)) % size;
    let from = 0;
    while (from < piece.length) {
      const n = Math.min(piece.length - from, size - at);
      piece.copy(this.ring, at, from, from + n);
      from += n;
      at = (at + n) % size;
    }
    this.written += chunk.length;
  }

  /** The last min(size, bytes fed) bytes, in order. */
  bytes(): Buffer {
    const size = this.size;
    if (this.written <= size) return this.ring.subarray(0, this.written);
    const at = this.written % size;
    return Buffer.concat([this.ring.subarray(at), this.ring.subarray(0, at)]);
  }
}
