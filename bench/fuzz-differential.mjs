#!/usr/bin/env node
// Long runs of the Werkzeug differential test (test/integration/multipart-differential.test.ts).
//
//   node bench/fuzz-differential.mjs                      # 20000 requests, random seed, survey mode
//   FUZZ_RUNS=100000 FUZZ_SEED=7 node bench/fuzz-differential.mjs
//   FUZZ_STOP=1 node bench/fuzz-differential.mjs          # stop at the first failure and shrink it
//
// Survey mode (FUZZ_COLLECT=1, the default here) does not stop at the first failing request: it
// reports every failure, grouped by the mutations that produced it, with the smallest example of
// each group. The guard's per-request JSON log lines are dropped from the output. Needs the
// Debian python3-werkzeug (the test's oracle) and tsx (the test imports src/ directly).

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const env = {
  ...process.env,
  FUZZ_RUNS: process.env.FUZZ_RUNS ?? '20000',
  FUZZ_SEED: process.env.FUZZ_SEED ?? String(Math.floor(Math.random() * 2 ** 31)),
};
if (process.env.FUZZ_STOP === undefined) env.FUZZ_COLLECT ??= '1';
console.log(`fuzz-differential: FUZZ_RUNS=${env.FUZZ_RUNS} FUZZ_SEED=${env.FUZZ_SEED}${env.FUZZ_COLLECT ? ' FUZZ_COLLECT=1' : ''}`);

const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=tap', '--test-name-pattern=differential against Werkzeug', 'test/integration/multipart-differential.test.ts'],
  { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] },
);
createInterface({ input: child.stdout }).on('line', (line) => {
  if (line.startsWith('# {"time"')) return; // the guard's request log
  console.log(line);
});
child.on('exit', (code) => process.exit(code ?? 1));
