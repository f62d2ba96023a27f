import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

// Runs the built CLI (npm test builds dist/ first) the way a user does.
function cli(...args: string[]) {
  return spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8' });
}

test('check-config accepts the default config and reports every error as file:line', () => {
  assert.equal(cli('check-config', '--config', 'config/default.yaml').status, 0);
  const dir = mkdtempSync(join(tmpdir(), 'ug-cli-'));
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'listen: 0.0.0.0:8080\nlsten: 1\npolicies:\n  p: { maxFileSize: lots }\n');
  const run = cli('check-config', '--config', bad);
  assert.equal(run.status, 1);
  assert.match(run.stderr, new RegExp(`${bad.replace(/[.]/g, '\\.')}:2: .*lsten`));
  assert.match(run.stderr, /:4: .*maxFileSize/);
});

test('inspect gives a verdict per file and exits 1 when one is rejected', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ug-cli-'));
  const gif = join(dir, 'ok.gif');
  writeFileSync(gif, Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1'));
  const disguised = join(dir, 'shell.gif');
  writeFileSync(disguised, 'GIF89a<?php system($_GET[1]); ?>');
  const good = cli('inspect', '--config', 'config/default.yaml', '--route', 'upload', gif);
  assert.equal(good.status, 0, good.stdout + good.stderr);
  // a valid GIF under a double extension: refused by the filename rules, as an upload would be
  const doubled = join(dir, 'shell.php.gif');
  writeFileSync(doubled, Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1'));
  const run = cli('inspect', '--config', 'config/default.yaml', '--route', 'upload', gif, disguised, join(dir, 'x.php'), doubled);
  assert.equal(run.status, 1);
  const verdicts = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as { verdict: string; code?: string; forwardedAs?: string });
  assert.deepEqual(verdicts.map((v) => v.code ?? v.verdict), ['accepted', 'CONTENT_MISMATCH', 'EXTENSION_NOT_ALLOWED', 'EXTENSION_NOT_ALLOWED']);
  assert.equal(verdicts[0]!.forwardedAs, 'ok.gif');
});

test('demo serves the guard in front of a bundled uploader', async () => {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['dist/cli.js', 'demo', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const line = await new Promise<{ listen: string; uploads: string }>((resolve) => {
      child.stdout.on('data', (c: Buffer) => {
        const m = /\{.*"msg":"demo".*\}/.exec(c.toString());
        if (m) resolve(JSON.parse(m[0]));
      });
    });
    const port = line.listen.split(':').pop();
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b550000000a49444154789c636000000002000148afa4710000000049454e44ae426082', 'hex');
    const ok = new FormData();
    ok.append('file', new Blob([png]), 'my cat.png');
    const res = await fetch(`http://127.0.0.1:${port}/upload`, { method: 'POST', body: ok });
    assert.equal(res.status, 200);
    const { readFileSync } = await import('node:fs');
    assert.deepEqual(readFileSync(join(line.uploads, 'my_cat.png')), png);
    const bad = new FormData();
    bad.append('file', new Blob(['<?php ?>']), 'x.php');
    const refused = await fetch(`http://127.0.0.1:${port}/upload`, { method: 'POST', body: bad });
    assert.equal(((await refused.json()) as { code: string }).code, 'EXTENSION_NOT_ALLOWED');
  } finally {
    child.kill();
  }
});
