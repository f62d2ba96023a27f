// vendor/streamsearch replaces streamsearch 1.1.0 under busboy (package.json "overrides"). busboy's
// multipart parser is driven entirely by the search's callbacks, so the replacement must make the
// same calls as the original, with the same bytes and ranges, in the same order, for every needle
// busboy can build ("\r\n--" + a boundary, which cannot hold CR or LF), every body and every way
// the body is cut into chunks: then busboy parses exactly as it does with the original.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';

type Callback = (isMatch: boolean, data: Buffer | undefined, start: number, end: number, isDataSafe: boolean) => void;
interface Search {
  matches: number;
  maxMatches: number;
  push(chunk: Buffer, pos?: number): number;
  destroy(): void;
  reset(): void;
}
type SearchClass = new (needle: string | Buffer, cb: Callback) => Search;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);
const Vendored = require(join(ROOT, 'vendor/streamsearch')) as SearchClass;
const Upstream = require('streamsearch-upstream') as SearchClass;

/** Everything a search tells its callback and its caller, as text. */
function transcript(Search: SearchClass, needle: Buffer, chunks: readonly { bytes: Buffer; pos: number }[], maxMatches: number): string[] {
  const log: string[] = [];
  const search = new Search(needle, (isMatch, data, start, end, isDataSafe) => {
    log.push(`cb ${isMatch} ${data === undefined ? 'none' : data.toString('hex', start, end)} ${start} ${end} ${isDataSafe}`);
  });
  search.maxMatches = maxMatches;
  for (const { bytes, pos } of chunks) {
    const stopped = search.push(bytes, pos);
    log.push(`push -> ${stopped}, ${search.matches} matches`);
    if (search.matches >= maxMatches) {
      search.reset();
      log.push('reset');
    }
  }
  search.destroy();
  log.push('destroyed');
  return log;
}

/** A boundary as busboy takes it from a header value: no CR, no LF (node:http refuses both). */
const boundary = fc
  .array(fc.oneof(fc.constantFrom(...'-_=.aZ09'.split('').map((c) => c.charCodeAt(0))), fc.integer({ min: 0x20, max: 0xff })), { minLength: 1, maxLength: 70 })
  .map((bytes) => Buffer.from(bytes));

/** A body made of the needle, its prefixes, its bytes and CR/LF: matches, near-matches and matches cut by chunk ends. */
const bodyAndChunks = (needle: Buffer) =>
  fc
    .array(
      fc.oneof(
        fc.constant(needle),
        fc.integer({ min: 1, max: needle.length - 1 }).map((n) => needle.subarray(0, n)),
        fc.integer({ min: 1, max: needle.length - 1 }).map((n) => needle.subarray(n)),
        fc.constantFrom(Buffer.from('\r'), Buffer.from('\n'), Buffer.from('\r\n'), Buffer.from('-'), Buffer.from('--')),
        fc.uint8Array({ minLength: 1, maxLength: 24 }).map((b) => Buffer.from(b)),
      ),
      { maxLength: 40 },
    )
    .chain((pieces) => {
      const body = Buffer.concat(pieces);
      return fc.record({
        body: fc.constant(body),
        cuts: fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, body.length - 1) }), { maxLength: 12 }),
      });
    });

test('vendor/streamsearch makes the same callbacks as streamsearch 1.1.0, for any body and chunking', () => {
  fc.assert(
    fc.property(
      boundary.chain((b) => fc.record({ needle: fc.constant(Buffer.concat([Buffer.from('\r\n--'), b])) })).chain(({ needle }) =>
        fc.record({
          needle: fc.constant(needle),
          input: bodyAndChunks(needle),
          // busboy pushes from 0 and never limits matches; the rest of the interface is kept too (a
          // start past 0 only with nothing carried over: streamsearch then skips one alignment too many)
          startAt: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 8 }) }),
          maxMatches: fc.oneof({ weight: 4, arbitrary: fc.constant(Infinity) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 }) }),
        }),
      ),
      ({ needle, input, startAt, maxMatches }) => {
        const edges = [0, ...[...input.cuts].filter((c) => c < input.body.length).sort((a, b) => a - b), input.body.length];
        const chunks = edges.slice(1).map((end, i) => {
          const bytes = input.body.subarray(edges[i], end);
          return { bytes, pos: i === 0 ? Math.min(startAt, bytes.length) : 0 };
        });
        assert.deepEqual(transcript(Vendored, needle, chunks, maxMatches), transcript(Upstream, needle, chunks, maxMatches));
      },
    ),
    { numRuns: 10000, seed: 20261125 },
  );
});

test('vendor/streamsearch: a match split over three chunks, and the close delimiter of a real body', () => {
  const needle = Buffer.from('\r\n--XyZ');
  const chunks = ['abc\r', '\n-', '-XyZ\r\nrest', '\r\n--XyZ--\r\n'].map((s) => ({ bytes: Buffer.from(s, 'latin1'), pos: 0 }));
  const log = transcript(Vendored, needle, chunks, Infinity);
  assert.deepEqual(log, transcript(Upstream, needle, chunks, Infinity));
  assert.equal(log.filter((line) => line.startsWith('cb true')).length, 2);
  // the bytes before the first match are reported as such, whole
  assert.ok(log.includes(`cb false ${Buffer.from('abc').toString('hex')} 0 3 true`), log.join('\n'));
});

test('busboy runs on vendor/streamsearch (the package.json override is in force)', () => {
  const busboyEntry = require.resolve('busboy');
  const searchEntry = require.resolve('streamsearch', { paths: [dirname(busboyEntry)] });
  assert.equal(require(searchEntry), Vendored, `busboy gets ${searchEntry}`);
});

test('declareAbsent: a buffer declared free of the needle\'s end is not searched; matches across its ends still are', () => {
  const needle = Buffer.from('\r\n--Bnd');
  const matchesIn = (chunks: Buffer[]): number => {
    const search = new Vendored(needle, () => undefined);
    for (const chunk of chunks) search.push(chunk, 0);
    return search.matches;
  };
  const declare = (Vendored as unknown as { declareAbsent(buffer: Buffer, part: Buffer): void }).declareAbsent;

  // the caller's word is taken: this buffer does hold the needle, and it is not looked for
  const holding = Buffer.from('aaa\r\n--Bndbbb');
  declare(holding, Buffer.from('--Bnd'));
  assert.equal(matchesIn([holding]), 0);
  // a part that does not end the needle says nothing about it
  const other = Buffer.from('aaa\r\n--Bndbbb');
  declare(other, Buffer.from('--Bn'));
  assert.equal(matchesIn([other]), 1);
  // undeclared buffers are searched
  assert.equal(matchesIn([Buffer.from('aaa\r\n--Bndbbb')]), 1);
  // a match that starts in a declared buffer and ends in the next is found
  const head = Buffer.from('data data\r\n-');
  declare(head, Buffer.from('--Bnd'));
  assert.equal(matchesIn([head, Buffer.from('-Bnd\r\nrest')]), 1);
});
