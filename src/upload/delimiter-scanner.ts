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
  /** "--BOUNDARY": every occurrence must be a delimiter line as busboy reads it */
  readonly dashBoundary: Buffer;
  /** unconsumed bytes from the previous chunk (a possible delimiter or an unfinished header block) */
  private pending: Buffer;
  /** where the search resumes in `pending` */
  private resumeAt = 0;
  /** in `pending`: the first byte of the current part's content (its closing CRLF may not start earlier) */
  private contentStart = 0;
  private inHeaders = false;
  /** raw header block (latin1) of every part, in order */
  readonly partHeaders: string[] = [];
  /** true once the close delimiter "--BOUNDARY--" was seen; what follows is epilogue */
  closed = false;
  /**
   * Where the epilogue starts in the chunk just fed (0 for every chunk after the close delimiter),
   * null before. busboy 1.6.0 keeps parsing the rest of a write() after the close delimiter: it
   * emits parts from the epilogue and may never finish (a file stream left open), so it must not
   * be given these bytes.
   */
  epilogueStart: number | null = null;
  /** why the body cannot be read unambiguously, once it cannot */
  problem: string | null = null;
  /**
   * After feed(): every byte of the chunk was searched and it holds no complete "--BOUNDARY", so it
   * holds no delimiter either (busboy's search may skip it: vendor/streamsearch declareAbsent).
   */
  chunkHoldsNoBoundary = false;
  /** "--BOUNDARY" occurrences found so far */
  private boundaryHits = 0;

  constructor(boundary: string) {
    this.dashBoundary = Buffer.from(`--${boundary}`, 'latin1');
    // Like busboy, behave as if the body began with CRLF: the first delimiter may lack it.
    this.pending = Buffer.from('\r\n');
  }

  get partDelimiters(): number {
    return this.partHeaders.length + (this.inHeaders ? 1 : 0);
  }

  /**
   * busboy only knows "CRLF--BOUNDARY" followed by CRLF or "--"; Werkzeug also takes LF or CR
   * line breaks, transport padding, a first delimiter anywhere in the preamble, and ignores a
   * delimiter glued to the header block. So "--BOUNDARY" may appear only as busboy's delimiter:
   * after a CRLF that belongs to the content (not to the header block's end), before CRLF or "--",
   * and never inside a header block. Anything else is refused (research/multipart-bypasses.md §3).
   */
  feed(chunk: Buffer): void {
    this.chunkHoldsNoBoundary = false;
    if (this.closed) this.epilogueStart = 0;
    if (this.closed || this.problem !== null) return;
    const carried = this.pending.length;
    if (carried === 0) return this.scan(chunk, this.resumeAt, this.contentStart, 0);
    if (!this.inHeaders && chunk.length >= 4 * this.dashBoundary.length && !this.delimiterNearJunction(chunk)) {
      // The carried bytes only matter to a delimiter starting in them (or just after them, for its
      // CRLF): none does, so scan the chunk itself rather than a copy of it joined to them.
      const resume = Math.max(0, this.resumeAt - carried);
      const contentStart = this.contentStart - carried;
      this.pending = EMPTY;
      return this.scan(chunk, resume, contentStart, 0);
    }
    const buf = Buffer.concat([this.pending, chunk]);
    this.pending = EMPTY;
    this.scan(buf, this.resumeAt, this.contentStart, carried);
  }

  /** Whether "--BOUNDARY" starts in the carried bytes or in the first two bytes of `chunk`. */
  private delimiterNearJunction(chunk: Buffer): boolean {
    const carried = this.pending.length;
    const junction = Buffer.concat([this.pending, chunk.subarray(0, this.dashBoundary.length + 2)]);
    const at = junction.indexOf(this.dashBoundary, this.resumeAt);
    return at !== -1 && at < carried + 2;
  }

  /** The state machine over `buf`, which starts `carried` bytes before the chunk just fed. */
  private scan(buf: Buffer, pos: number, contentStart: number, carried: number): void {
    const hitsBefore = this.boundaryHits;
    this.scanFrom(buf, pos, contentStart, carried);
    this.chunkHoldsNoBoundary = pos <= carried && this.boundaryHits === hitsBefore && this.problem === null && !this.closed;
  }

  private scanFrom(buf: Buffer, pos: number, contentStart: number, carried: number): void {
    this.pending = EMPTY;
    for (;;) {
      if (this.inHeaders) {
        // pos points at the CRLF that ended the delimiter line, so an empty header block is found too
        const end = buf.indexOf(HEADER_END, pos);
        const inside = buf.indexOf(this.dashBoundary, pos);
        if (inside !== -1) this.boundaryHits++;
        if (inside !== -1 && (end === -1 || inside < end)) return this.fail('a part header block contains the boundary');
        if (end === -1) {
          if (buf.length - pos > MAX_PART_HEADER_BYTES) return this.fail('a part header block is too large');
          this.keep(buf, pos, pos, 0);
          return;
        }
        if (end - pos > MAX_PART_HEADER_BYTES) return this.fail('a part header block is too large');
        this.partHeaders.push(buf.toString('latin1', Math.min(pos + 2, end), end));
        this.inHeaders = false;
        contentStart = end + 4;
        pos = end + 2; // a delimiter glued to the blank line is found (and refused) too
        continue;
      }
      const at = buf.indexOf(this.dashBoundary, pos);
      if (at !== -1) this.boundaryHits++;
      if (at === -1) {
        // Keep enough to recognise a delimiter straddling this chunk and the next, plus the two
        // bytes before it; copy so the caller's chunk can be released.
        const from = Math.max(0, pos - 2, buf.length - this.dashBoundary.length - 1);
        this.keep(buf, from, Math.max(pos, from), contentStart);
        return;
      }
      if (at < 2 || buf[at - 2] !== CR || buf[at - 1] !== LF || at - 2 < contentStart) {
        return this.fail('the boundary appears outside a CRLF-delimited delimiter line');
      }
      const after = at + this.dashBoundary.length;
      if (after + 2 > buf.length) {
        this.keep(buf, at - 2, at - 2, contentStart);
        return;
      }
      const first = buf[after];
      const second = buf[after + 1];
      if (first === DASH && second === DASH) {
        this.closed = true;
        this.epilogueStart = after + 2 - carried;
        return;
      }
      if (first !== CR || second !== LF) {
        return this.fail('a boundary delimiter is followed by something other than CRLF or "--"');
      }
      this.inHeaders = true;
      pos = after;
    }
  }

  /** Carries buf[from..] over to the next chunk, resuming the search at `resume`. */
  private keep(buf: Buffer, from: number, resume: number, contentStart: number): void {
    this.pending = Buffer.from(buf.subarray(from));
    this.resumeAt = resume - from;
    this.contentStart = Math.max(0, contentStart - from);
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
