// deploy/systemd/upload-guard.service: `systemd-analyze verify` accepts it, and
// `systemd-analyze security --offline=true` rates its sandbox at an overall exposure <= 2.0.
// No running systemd needed (systemd-analyze works on the unit file alone; Debian's systemd
// package, present on the node machines).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const UNIT = fileURLToPath(new URL('../../deploy/systemd/upload-guard.service', import.meta.url));
const ANALYZE = '/usr/bin/systemd-analyze';
const MAX_EXPOSURE = 2.0;

function analyze(args: string[]): { status: number | null; stdout: string; stderr: string } {
  // No skip: without systemd-analyze this fails, naming the package.
  assert.ok(existsSync(ANALYZE), `${ANALYZE} missing: apt-get install systemd`);
  const run = spawnSync(ANALYZE, args, { encoding: 'utf8', timeout: 120_000, env: { ...process.env, SYSTEMD_LOG_COLOR: '0', SYSTEMD_COLORS: '0', NO_COLOR: '1' } });
  assert.equal(run.error, undefined, String(run.error));
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/**
 * The unit as shipped, in a temp dir of its own (systemd-analyze names units by file name). Its
 * ExecStart is /usr/bin/node; where node lives elsewhere, the copy points at this node instead,
 * since verify insists the binary exists.
 */
function unitCopy(): { path: string; done(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'ug-systemd-'));
  const path = join(dir, 'upload-guard.service');
  if (existsSync('/usr/bin/node')) copyFileSync(UNIT, path);
  else writeFileSync(path, readFileSync(UNIT, 'utf8').replace(/^ExecStart=\/usr\/bin\/node /m, `ExecStart=${process.execPath} `));
  return { path, done: () => rmSync(dir, { recursive: true, force: true }) };
}

test('systemd-analyze verify accepts the unit', () => {
  const unit = unitCopy();
  try {
    const run = analyze(['verify', unit.path]);
    assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
    // verify also loads the units ours depends on; only complaints about ours count.
    const ours = `${run.stdout}${run.stderr}`.split('\n').filter((line) => line.includes('upload-guard'));
    assert.deepEqual(ours, [], 'no warnings about upload-guard.service');
  } finally {
    unit.done();
  }
});

test(`systemd-analyze security rates the sandbox at <= ${MAX_EXPOSURE}`, () => {
  const unit = unitCopy();
  try {
    const run = analyze(['security', '--offline=true', '--no-pager', unit.path]);
    const output = `${run.stdout}${run.stderr}`;
    const m = /Overall exposure level for upload-guard\.service:\s*(\d+(?:\.\d+)?)/.exec(output);
    assert.ok(m, `no "Overall exposure level" in:\n${output}`);
    const exposure = Number(m[1]);
    assert.ok(exposure <= MAX_EXPOSURE, `overall exposure ${exposure} > ${MAX_EXPOSURE}:\n${output.split('\n').filter((l) => l.includes('✗')).join('\n')}`);
  } finally {
    unit.done();
  }
});

test('the unit keeps the settings the exposure number does not show', () => {
  const text = readFileSync(UNIT, 'utf8');
  const settings = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) settings.set(m[1]!, [...(settings.get(m[1]!) ?? []), m[2]!]);
  }
  const get = (key: string): string | undefined => settings.get(key)?.at(-1);
  assert.ok(get('DynamicUser') === 'yes' || (get('User') !== undefined && get('User') !== 'root'), 'runs as its own user');
  assert.equal(get('Restart'), 'on-failure');
  assert.equal(get('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.equal(get('ProtectSystem'), 'strict');
  assert.equal(get('NoNewPrivileges'), 'yes');
  assert.equal(get('CapabilityBoundingSet'), '');
  assert.deepEqual(settings.get('SystemCallFilter')?.[0], '@system-service');
  // V8's JIT needs writable-then-executable pages: MemoryDenyWriteExecute=yes kills node at start.
  assert.notEqual(get('MemoryDenyWriteExecute'), 'yes');
  assert.match(get('ExecStart') ?? '', /dist\/cli\.js serve --config /);
});
