import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CanonicalEncoder } from '../../src/upload/canonical-encoder.ts';

test('every canonical body gets its own boundary: 48 hex digits, none repeated over several refills of the random pool', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const { boundary, contentType } = new CanonicalEncoder();
    assert.match(boundary, /^----upload-guard-[0-9a-f]{48}$/);
    assert.equal(contentType, `multipart/form-data; boundary=${boundary}`);
    seen.add(boundary);
  }
  assert.equal(seen.size, 2000);
});
