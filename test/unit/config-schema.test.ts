import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { SCHEMA_PATH, renderConfigJsonSchema } from '../../scripts/gen-schema.js';

it('config/schema.json is up to date with src/config/schema.ts', () => {
  const committed = readFileSync(SCHEMA_PATH, 'utf8');
  assert.ok(committed === renderConfigJsonSchema(), 'config/schema.json is stale: run `npm run gen:schema` and commit the result');
});

it('config/schema.json is strict and carries the defaults', () => {
  const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8'));
  assert.equal(schema.$id, 'urn:upload-guard:config');
  assert.equal(schema.additionalProperties, false);
  assert.equal(schema.properties.listen.default, '0.0.0.0:8080');
  const policy = schema.properties.policies.additionalProperties;
  assert.equal(policy.additionalProperties, false);
  assert.equal(policy.properties.maxFileSize.default, '50MiB');
  assert.deepEqual(policy.required, ['allow']);
});
