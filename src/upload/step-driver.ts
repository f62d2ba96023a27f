// A tiny pull parser for binary formats that arrive in chunks of any size: a format walker says
// what it wants next ("read 8 bytes, then call me", "skip 1234 bytes", "let me scan bytes myself",
// "ignore the rest") and the driver feeds it across chunk boundaries. State stays bounded: only a
// pending `read` is buffered, and walkers only ask for bounded reads.

export type Step =
  /** gather exactly n bytes (copied, so callers may reuse their chunk buffers), then continue */
  | { readonly kind: 'read'; readonly n: number; readonly then: (bytes: Buffer) => Step }
  /** pass over n bytes */
  | { readonly kind: 'skip'; readonly n: number; readonly then: () => Step }
  /** hand every following byte to `consume` until it returns a next step; `used` bytes are eaten */
  | { readonly kind: 'scan'; readonly consume: (bytes: Buffer) => { used: number; next: Step | null } }
  /** nothing more to parse: the rest of the file is only counted */
  | { readonly kind: 'rest' };

export const REST: Step = Object.freeze({ kind: 'rest' });

export function read(n: number, then: (bytes: Buffer) => Step): Step {
  return { kind: 'read', n, then };
}

export function skip(n: number, then: () => Step): Step {
  return { kind: 'skip', n, then };
}

const EMPTY = Buffer.alloc(0);

export class StepDriver {
  /** absolute offset of the next byte the driver will look at */
  offset = 0;
  private step: Step;
  private pieces: Buffer[] = [];
  private have = 0;
  private skipLeft = 0;

  constructor(first: Step) {
    this.step = REST;
    this.setStep(first);
  }

  /** true while a read or skip is unfinished (the file ended inside a structure) */
  get midStructure(): boolean {
    return this.step.kind === 'read' || this.step.kind === 'skip' || this.step.kind === 'scan';
  }

  get done(): boolean {
    return this.step.kind === 'rest';
  }

  feed(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      const step = this.step;
      if (step.kind === 'rest') {
        this.offset += chunk.length - pos;
        return;
      }
      if (step.kind === 'read') {
        const take = Math.min(step.n - this.have, chunk.length - pos);
        this.pieces.push(Buffer.from(chunk.subarray(pos, pos + take)));
        this.have += take;
        pos += take;
        this.offset += take;
        if (this.have === step.n) {
          const bytes = this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.have);
          this.pieces = [];
          this.have = 0;
          this.setStep(step.then(bytes));
        }
      } else if (step.kind === 'skip') {
        const take = Math.min(this.skipLeft, chunk.length - pos);
        pos += take;
        this.offset += take;
        this.skipLeft -= take;
        if (this.skipLeft === 0) this.setStep(step.then());
      } else {
        const { used, next } = step.consume(chunk.subarray(pos));
        pos += used;
        this.offset += used;
        if (next !== null) this.setStep(next);
      }
    }
  }

  private setStep(next: Step): void {
    let step = next;
    // zero-length reads and skips complete at once
    for (;;) {
      if (step.kind === 'read' && step.n === 0) step = step.then(EMPTY);
      else if (step.kind === 'skip' && step.n === 0) step = step.then();
      else break;
    }
    this.step = step;
    if (step.kind === 'skip') this.skipLeft = step.n;
  }
}
