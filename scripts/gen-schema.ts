// Writes config/schema.json (the JSON Schema editors use for config/*.yaml) from the zod schema.
// test/unit/config-schema.test.ts fails when the committed file is stale: run `npm run gen:schema`.

import { writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { configSchema } from '../src/config/schema.js';

export const SCHEMA_PATH = fileURLToPath(new URL('../config/schema.json', import.meta.url));

/** The exact text of config/schema.json. */
export function renderConfigJsonSchema(): string {
  // io 'input': describe what a user writes ("50MiB"), not the parsed numbers.
  const generated = z.toJSONSchema(configSchema, { target: 'draft-2020-12', io: 'input' });
  const { $schema, ...body } = generated;
  const document = {
    $schema,
    $id: 'urn:upload-guard:config',
    title: 'upload-guard config',
    description: 'YAML config of the upload-guard reverse proxy (see SPEC.md "Config").',
    ...body,
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

const runAsScript = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (runAsScript) {
  writeFileSync(SCHEMA_PATH, renderConfigJsonSchema());
  console.log(`wrote ${SCHEMA_PATH}`);
}
