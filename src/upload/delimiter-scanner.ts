// An independent reading of the raw multipart framing, run beside busboy.
//
// busboy silently skips what it cannot read: a part with an unusable Content-Disposition, the
// bytes after a delimiter followed by transport padding, or a file cut short by a line that
// merely starts with the boundary ("--BOUNDARYx"). Werkzeug reads those differently, and a
// re-serialising proxy would forward a different request than the client sent. Counting the
// delimiters here and comparing the count with the parts busboy emitted turns every silent skip
// into MALFORMED_MULTIPART (research/multipart-bypasses.md §3). The raw header block of each
// part is kept too, for what busboy does not report (a field's declared charset).

const CR = 13;
const LF = 10;
const DASH = 45;
const HEADER_END = Buffer.from('\r\n\r\n');
/** busboy's own cap on one part's header block */
export const MAX_PART_HEADER_BYTES = 16 * 1024;
const EMPTY = Buffer.alloc(0);

export class DelimiterScanner {
  private readonly needle: Buffer;
  /** unconsumed bytes from the previous chunk (a possible delimiter or an unfinished header block) */
  private pending: Buffer;
  private inHeaders = false;
  /** raw header block (latin1) of every part, in order */
  readonly partHeaders: string[] = [];
  /** true once the close delimiter "--BOUNDARY--" was seen; what follows is epilogue */
  closed = false;
  /** why the body cannot be read unambiguously, once it cannot */
  problem: string | null = null;

  constructor(boundary: string) {
    this.needle = Buffer.from(`\r\n--${boundary}`, 'latin1');
    // Like busboy, behave as if the body began with CRLF: the first delimiter may lack it.
    this.pending = Buffer.from('\r\n');
  }

  get partDelimiters(): number {
    return this.partHeaders.length + (this.inHeaders ? 1 : 0);
  }

  feed(chunk: Buffer): void {
    if (this.closed || this.problem !== null) return;
    const buf = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = EMPTY;
    let pos = 0;
    for (;;) {
      if (this.inHeaders) {
        // pos points at the CRLF that ended the delimiter line, so an empty header block is found too
        const end = buf.indexOf(HEADER_END, pos);
        if (end === -1) {
          if (buf.length - pos > MAX_PART_HEADER_BYTES) return this.fail('a part header block is too large');
          this.pending = Buffer.from(buf.subarray(pos));
          return;
        }
        if (end - pos > MAX_PART_HEADER_BYTES) return this.fail('a part header block is too large');
        this.partHeaders.push(buf.toString("latin1", Math.min(pos + 2, end), end));
        this.inHeaders = false;
        pos = end + 2; // the part's content starts after the blank line; a delimiter may follow at once
        continue;
      }
      const at = buf.indexOf(this.needle, pos);
      if (at === -1) {
        // Keep just enough to recognise a delimiter (plus the two bytes after it) that straddles
        // this chunk and the next; copy so the caller's chunk can be released.
        const keep = Math.min(this.needle.length + 1, buf.length - pos);
        this.pending = Buffer.from(buf.subarray(buf.length - keep));
        return;
      }
      const after = at + this.needle.length;
      if (after + 2 > buf.length) {
        this.pending = Buffer.from(buf.subarray(at));
        return;
      }
      const first = buf[after];
      const second = buf[after + 1];
      if (first === DASH && second === DASH) {
        this.closed = true;
        return;
      }
      if (first !== CR || second !== LF) {
        return this.fail('a boundary delimiter is followed by something other than CRLF or "--"');
      }
      this.inHeaders = true;
      pos = after;
    }
  }

  private fail(problem: string): void {
    this.problem = problem;
    this.pending = EMPTY;
  }
}

/** The value of one header in a raw part header block, or undefined; null when it appears twice. */
export function rawPartHeader(block: string, name: string): string | null | undefined {
  let found: string | undefined;
  for (const line of block.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon === -1 || line.slice(0, colon).trim().toLowerCase() !== name) continue;
    if (found !== undefined) return null;
    found = line.slice(colon + 1).trim();
  }
  return found;
}
