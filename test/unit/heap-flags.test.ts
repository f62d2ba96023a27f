// The heap flags (src/lifecycle/heap-flags.ts) are written in four places that cannot import
// them: package.json's start script, the Dockerfile's ENTRYPOINT, the systemd unit and the bench
// (which imports them). These tests keep the copies equal to the constant.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { applyRuntimeHeapFlags, HEAP_FLAGS, missingHeapFlags } from '../../src/lifecycle/heap-flags.ts';

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

  it('sets no runtime flag on a V8 that lacks them (Node 20)', () => {
    assert.deepEqual(applyRuntimeHeapFlags('11.3.244.8-node.33'), []);
  });

  // What the runtime flags are for: young ArrayBuffers (a big upload's socket reads) freed by
  // scavenges, not by mark-compacts. Node 20 does this by itself; Node 24 ran 4-5 mark-compacts
  // over these 512 MiB without the flags.
  it('512 MiB of short-lived 64 KiB buffers cost no mark-compact, as the guard starts', () => {
    const heapFlags = new URL('../../dist/lifecycle/heap-flags.js', import.meta.url).href;
    const churn = `
      import { PerformanceObserver, constants } from 'node:perf_hooks';
      import { applyRuntimeHeapFlags } from ${JSON.stringify(heapFlags)};
      applyRuntimeHeapFlags();
      let major = 0;
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++;
      }).observe({ entryTypes: ['gc'] });
      const inFlight = [];
      for (let i = 0; i < 8192; i++) {
        const chunk = Buffer.allocUnsafe(65536);
        chunk.fill(i);
        inFlight.push(chunk);
        if (inFlight.length > 16) inFlight.shift();
        if (i % 16 === 0) await new Promise((resolve) => setImmediate(resolve));
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
      console.log(major);`;
    const majors = Number(execFileSync(process.execPath, [...HEAP_FLAGS, '--input-type=module', '-e', churn], { encoding: 'utf8' }).trim());
    assert.ok(majors <= 1, `${majors} mark-compacts`);
  });
});

