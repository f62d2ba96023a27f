import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DelimiterScanner, rawPartHeader } from '../../src/upload/delimiter-scanner.ts';
import { CanonicalEncoder } from '../../src/upload/canonical-encoder.ts';

function scanInChunks(body: Buffer, boundary: string, chunkSize: number): DelimiterScanner {
  const scanner = new DelimiterScanner(boundary);
  for (let i = 0; i < body.length; i += chunkSize) scanner.feed(body.subarray(i, i + chunkSize));
  return scanner;
}

const wellFormed = Buffer.from(
  '--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue\r\n' +
    '--B\r\nContent-Disposition: form-data; name="f"; filename="x.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG data\r\n' +
    '--B--\r\n',
  'latin1',
);

test('counts parts and keeps header blocks whatever the chunking', () => {
  for (const size of [1, 2, 3, 5, 7, 64, 4096]) {
    const scanner = scanInChunks(wellFormed, 'B', size);
    assert.equal(scanner.problem, null, `chunk ${size}`);
    assert.equal(scanner.closed, true, `chunk ${size}`);
    assert.equal(scanner.partDelimiters, 2, `chunk ${size}`);
    assert.equal(rawPartHeader(scanner.partHeaders[1]!, 'content-type'), 'image/png');
  }
});

test('transport padding after a delimiter is refused', () => {
  const body = Buffer.from('--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--B \t\r\nX: y\r\n\r\nz\r\n--B--\r\n');
  const scanner = scanInChunks(body, 'B', 3);
  assert.match(scanner.problem ?? '', /boundary delimiter/);
});

test('a line that only starts with the boundary is refused', () => {
  const body = Buffer.from('--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--BX\r\nmore\r\n--B--\r\n');
  assert.match(scanInChunks(body, 'B', 4).problem ?? '', /boundary delimiter/);
});

test('a missing close delimiter leaves the scanner open', () => {
  const body = Buffer.from('--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nv');
  const scanner = scanInChunks(body, 'B', 4);
  assert.equal(scanner.closed, false);
});

test('duplicate part headers are reported as ambiguous', () => {
  assert.equal(rawPartHeader('Content-Type: a\r\ncontent-type: b', 'content-type'), null);
  assert.equal(rawPartHeader('Content-Disposition: form-data', 'content-type'), undefined);
});

test('the canonical encoder frames parts with its own boundary', () => {
  const encoder = new CanonicalEncoder();
  const body = Buffer.concat([
    encoder.partHead('a', null, null),
    Buffer.from('value'),
    encoder.partHead('f', 'x.png', 'image/png'),
    Buffer.from('bytes'),
    encoder.end(),
  ]);
  const scanner = scanInChunks(body, encoder.boundary, 9);
  assert.equal(scanner.problem, null);
  assert.equal(scanner.closed, true);
  assert.equal(scanner.partDelimiters, 2);
  assert.match(body.toString('latin1'), /Content-Disposition: form-data; name="f"; filename="x.png"\r\nContent-Type: image\/png\r\n\r\nbytes\r\n/);
});

// The scanner copies as little as it can across chunk boundaries (a chunk is scanned in place when
// no delimiter can start in the carried bytes): whatever the chunking, it must read a body exactly
// as it reads the whole body in one piece. And where it says a chunk holds no "--BOUNDARY" (busboy's
// search then skips it: vendor/streamsearch), the chunk holds none.
test('any chunking reads a body as one piece does, and chunkHoldsNoBoundary never lies (property)', () => {
  const boundary = 'bOuNdArY-1234';
  const fragments = [
    `\r\n--${boundary}\r\n`,
    `\r\n--${boundary}--\r\n`,
    `--${boundary}`,
    `\r\n--${boundary}x`,
    '\r\n',
    '\r\n\r\n',
    'Content-Disposition: form-data; name="f"; filename="a.png"\r\n\r\n',
    '--',
    '-',
    boundary.slice(0, 5),
  ];
  const piece = fc.oneof(
    fc.constantFrom(...fragments).map((s) => Buffer.from(s, 'latin1')),
    fc.uint8Array({ minLength: 1, maxLength: 200 }).map((b) => Buffer.from(b)),
  );
  const body = fc.array(piece, { maxLength: 30 }).map((parts) =>
    Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="a"\r\n\r\n`), ...parts]),
  );
  const cuts = fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 40 });
  let clearChunks = 0;
  const reading = (chunks: Buffer[]) => {
    const scanner = new DelimiterScanner(boundary);
    let offset = 0;
    let epilogueAt: number | null = null;
    for (const chunk of chunks) {
      scanner.feed(chunk);
      if (scanner.chunkHoldsNoBoundary) {
        assert.equal(chunk.indexOf(`--${boundary}`), -1, 'a chunk said to hold no boundary holds one');
        clearChunks++;
      }
      if (epilogueAt === null && scanner.epilogueStart !== null) epilogueAt = offset + scanner.epilogueStart;
      offset += chunk.length;
    }
    return { problem: scanner.problem, closed: scanner.closed, headers: scanner.partHeaders, delimiters: scanner.partDelimiters, epilogueAt };
  };
  fc.assert(
    fc.property(body, cuts, (whole, sizes) => {
      const chunks: Buffer[] = [];
      for (let at = 0, k = 0; at < whole.length; k++) {
        const size = sizes[k % sizes.length]!;
        chunks.push(whole.subarray(at, at + size));
        at += size;
      }
      assert.deepEqual(reading(chunks), reading([whole]));
    }),
    { numRuns: 3000, seed: 20261124 },
  );
  // the skip is taken: most data chunks are declared clear
  assert.ok(clearChunks > 500, `${clearChunks} chunks declared clear`);
});

test('chunkHoldsNoBoundary: data chunks yes; chunks with a delimiter, a stray boundary or a header block no', () => {
  const scanner = new DelimiterScanner('B0undary');
  const states: boolean[] = [];
  const feed = (text: string): void => {
    scanner.feed(Buffer.from(text, 'latin1'));
    states.push(scanner.chunkHoldsNoBoundary);
  };
  feed('--B0undary\r\nContent-Disposition: form-data; name="f"; filename="a.png"\r\n\r\n');
  feed('x'.repeat(100));
  feed('y'.repeat(100) + '\r\n--B0und');
  feed('ary\r\nContent-Disposition: form-data; name="g"\r\n\r\nvalue'.padEnd(100, 'v'));
  feed('z'.repeat(100) + '\r\n--B0undary--\r\n');
  assert.deepEqual(states, [false, true, true, false, false]);
  assert.equal(scanner.problem, null);
  assert.equal(scanner.partDelimiters, 2);

  const stray = new DelimiterScanner('B0undary');
  stray.feed(Buffer.from('--B0undary\r\nContent-Disposition: form-data; name="f"\r\n\r\n', 'latin1'));
  stray.feed(Buffer.from('data--B0undary more data and more data and more data and more data', 'latin1'));
  assert.equal(stray.chunkHoldsNoBoundary, false);
  assert.notEqual(stray.problem, null);
});
