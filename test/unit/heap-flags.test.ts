// The heap flags (src/lifecycle/heap-flags.ts) are written in four places that cannot import
// them: package.json's start script, the Dockerfile's ENTRYPOINT, the systemd unit and the bench
// (which imports them). These tests keep the copies equal to the constant.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { HEAP_FLAGS, missingHeapFlags } from '../../src/lifecycle/heap-flags.ts';

const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

describe('heap flags', () => {
  it('names the flags missing from a command line, whatever value a given one has', () => {
    assert.deepEqual(missingHeapFlags(['dist/cli.js']), [...HEAP_FLAGS]);
    assert.deepEqual(missingHeapFlags([...HEAP_FLAGS]), []);
    assert.deepEqual(missingHeapFlags(['--initial_old_space_size=512']), HEAP_FLAGS.slice(1));
    assert.deepEqual(missingHeapFlags(['--max-semi-space-size=2', '--inspect']), HEAP_FLAGS.slice(0, 1));
  });

  it('npm start, the container and the systemd unit start node with them', () => {
    const start = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.start!;
    assert.equal(start, `node ${HEAP_FLAGS.join(' ')} dist/cli.js serve`);
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(read('Dockerfile'))?.[1];
    assert.deepEqual(JSON.parse(entrypoint ?? 'null'), ['node', ...HEAP_FLAGS, '/app/dist/cli.js']);
    assert.match(read('deploy/systemd/upload-guard.service'), new RegExp(`^ExecStart=/usr/bin/node ${HEAP_FLAGS.join(' ')} /opt/upload-guard/dist/cli.js serve`, 'm'));
  });
});
