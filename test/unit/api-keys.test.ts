import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { authenticate, presentedKey } from '../../src/admission/api-keys.js';
import type { ApiKeyEntry } from '../../src/config/types.js';

const entry = (name: string, key: string): ApiKeyEntry => ({ name, sha256: createHash('sha256').update(key).digest() });
const keys = [entry('ci', 'ci-secret-1'), entry('mobile', 'mobile-secret-2')];

describe('authenticate', () => {
  it('names the key presented in the configured header', () => {
    assert.deepEqual(authenticate({ 'x-api-key': 'ci-secret-1' }, 'x-api-key', keys), { name: 'ci' });
    assert.deepEqual(authenticate({ 'x-api-key': 'mobile-secret-2' }, 'X-API-KEY', keys), { name: 'mobile' });
    assert.deepEqual(authenticate({ 'x-token': 'ci-secret-1' }, 'x-token', keys), { name: 'ci' });
  });

  it('accepts Authorization: Bearer when the configured header is absent', () => {
    assert.deepEqual(authenticate({ authorization: 'Bearer mobile-secret-2' }, 'x-api-key', keys), { name: 'mobile' });
    assert.deepEqual(authenticate({ authorization: 'bearer   ci-secret-1 ' }, 'x-api-key', keys), { name: 'ci' });
    assert.equal(authenticate({ authorization: 'Basic Y2k6Y2ktc2VjcmV0LTE=' }, 'x-api-key', keys), null);
    assert.equal(authenticate({ authorization: 'Bearer ci-secret-1 extra' }, 'x-api-key', keys), null);
  });

  it('lets the configured header win over Authorization (the upstream may use its own scheme)', () => {
    assert.deepEqual(authenticate({ 'x-api-key': 'ci-secret-1', authorization: 'Bearer upstream-token' }, 'x-api-key', keys), { name: 'ci' });
    assert.equal(authenticate({ 'x-api-key': 'wrong', authorization: 'Bearer ci-secret-1' }, 'x-api-key', keys), null);
  });

  it('refuses missing, empty, wrong and near-miss keys', () => {
    assert.equal(authenticate({}, 'x-api-key', keys), null);
    assert.equal(authenticate({ 'x-api-key': '' }, 'x-api-key', keys), null);
    assert.equal(authenticate({ 'x-api-key': 'ci-secret-' }, 'x-api-key', keys), null);
    assert.equal(authenticate({ 'x-api-key': 'ci-secret-1x' }, 'x-api-key', keys), null);
    assert.equal(authenticate({ 'x-api-key': 'CI-SECRET-1' }, 'x-api-key', keys), null);
    assert.equal(authenticate({ 'x-api-key': 'ci-secret-1' }, 'x-api-key', []), null);
  });

  it('refuses repeated key headers as ambiguous', () => {
    assert.equal(authenticate({ 'x-api-key': ['ci-secret-1', 'mobile-secret-2'] }, 'x-api-key', keys), null);
    assert.equal(authenticate({ 'x-api-key': ['ci-secret-1', 'ci-secret-1'] }, 'x-api-key', keys), null);
    assert.equal(authenticate({ authorization: ['Bearer ci-secret-1', 'Bearer x'] }, 'x-api-key', keys), null);
    // req.headers folds custom duplicates into one joined value: that matches no key
    assert.equal(authenticate({ 'x-api-key': 'ci-secret-1, mobile-secret-2' }, 'x-api-key', keys), null);
    // headersDistinct form with a single value is fine
    assert.deepEqual(authenticate({ 'x-api-key': ['ci-secret-1'] }, 'x-api-key', keys), { name: 'ci' });
  });

  it('returns the first configured name when two entries share a key', () => {
    assert.deepEqual(authenticate({ 'x-api-key': 'same' }, 'x-api-key', [entry('a', 'same'), entry('b', 'same')]), { name: 'a' });
  });

  it('compares against every key (no early exit by key position)', () => {
    // Count comparisons through a key list whose digest getter records reads.
    let reads = 0;
    const counted = keys.map((key) => ({
      name: key.name,
      get sha256() {
        reads++;
        return key.sha256;
      },
    }));
    reads = 0;
    authenticate({ 'x-api-key': 'ci-secret-1' }, 'x-api-key', counted);
    const readsOnFirstKeyMatch = reads;
    reads = 0;
    authenticate({ 'x-api-key': 'nope' }, 'x-api-key', counted);
    assert.equal(readsOnFirstKeyMatch, reads);
  });
});

describe('presentedKey', () => {
  it('extracts the candidate without judging it', () => {
    assert.equal(presentedKey({ 'x-api-key': ' k ' }, 'x-api-key'), 'k');
    assert.equal(presentedKey({ authorization: 'Bearer abc.def-_~+/=' }, 'x-api-key'), 'abc.def-_~+/=');
    assert.equal(presentedKey({ authorization: 'Bearer' }, 'x-api-key'), null);
  });
});
