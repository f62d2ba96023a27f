import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { TailKeeper } from '../../src/upload/tail-keeper.ts';

test('TailKeeper: the last `size` bytes of any chunking of any stream, as the ring grows and wraps', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 300 }), fc.array(fc.uint8Array({ maxLength: 700 }), { maxLength: 12 }), (size, chunks) => {
      const keeper = new TailKeeper(size);
      let all = Buffer.alloc(0);
      for (const chunk of chunks) {
        keeper.feed(Buffer.from(chunk));
        all = Buffer.concat([all, chunk]);
        assert.deepEqual(keeper.bytes(), all.subarray(Math.max(0, all.length - size)));
      }
    }),
    { numRuns: 2000 },
  );
});

test('TailKeeper: the bytes of an unfilled ring are the bytes fed, never leftover memory', () => {
  const keeper = new TailKeeper(64 * 1024);
  keeper.feed(Buffer.from('abc'));
  keeper.feed(Buffer.alloc(5000, 0x41));
  const tail = keeper.bytes();
  assert.equal(tail.length, 5003);
  assert.equal(tail.subarray(0, 3).toString(), 'abc');
  assert.ok(tail.subarray(3).every((b) => b === 0x41));
});
