// The pieces of malware scanning that need no clamd: reading clamd's answers, the policy `scan`
// config (addresses, defaults, errors), and what the shipped full example configures.
// The protocol against a real clamd is test/e2e/clamd.test.ts.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseClamdAddress } from '../../src/config/address.ts';
import { loadConfigFile, loadConfigText, type LoadResult } from '../../src/config/load.ts';
import type { CompiledConfig } from '../../src/config/types.ts';
import { parseClamdReply } from '../../src/upload/clamd-scanner.ts';

const configDir = fileURLToPath(new URL('../../config/', import.meta.url));

function expectConfig(result: LoadResult): CompiledConfig {
  if ('errors' in result) assert.fail(`expected a valid config, got:\n${result.errors.join('\n')}`);
  return result.config;
}

const withScan = (scan: string): LoadResult =>
  loadConfigText(`routes:\n  - { name: up, path: /upload, policy: p }\npolicies:\n  p:\n    allow: [png]\n    scan: ${scan}\n`, 'test.yaml', { env: {} });

describe("clamd's answers", () => {
  it('reads OK, FOUND (signature kept, made printable), size limit and errors', () => {
    assert.deepEqual(parseClamdReply('stream: OK'), { kind: 'clean' });
    assert.deepEqual(parseClamdReply('1: stream: OK'), { kind: 'clean' });
    assert.deepEqual(parseClamdReply('stream: Win.Test.EICAR_HDB-1 FOUND'), { kind: 'infected', signature: 'Win.Test.EICAR_HDB-1' });
    assert.deepEqual(parseClamdReply('stream: Bad\x01Name "x" FOUND'), { kind: 'infected', signature: 'Bad?Name?"x"' });
    assert.equal(parseClamdReply('INSTREAM size limit exceeded. ERROR').kind, 'too-large');
    assert.deepEqual(parseClamdReply("stream: Can't create temporary file ERROR"), {
      kind: 'error',
      detail: "clamd: stream: Can't create temporary file ERROR",
      timeout: false,
    });
  });

  it('never reads anything else as clean', () => {
    for (const reply of ['', 'OK', 'stream: OKAY', 'stream: OK FOUND?', 'PONG', 'stream:OK']) {
      assert.notEqual(parseClamdReply(reply).kind, 'clean', JSON.stringify(reply));
    }
  });
});

describe('policy scan config', () => {
  it('parses tcp:// and unix: addresses, with the usual port by default', () => {
    assert.deepEqual(parseClamdAddress('tcp://127.0.0.1:3310'), { kind: 'tcp', host: '127.0.0.1', port: 3310 });
    assert.deepEqual(parseClamdAddress('tcp://clamav'), { kind: 'tcp', host: 'clamav', port: 3310 });
    assert.deepEqual(parseClamdAddress('tcp://[::1]:3311'), { kind: 'tcp', host: '::1', port: 3311 });
    assert.deepEqual(parseClamdAddress('unix:/run/clamav/clamd.ctl'), { kind: 'unix', path: '/run/clamav/clamd.ctl' });
    assert.deepEqual(parseClamdAddress('unix:///run/clamav/clamd.ctl'), { kind: 'unix', path: '/run/clamav/clamd.ctl' });
    for (const bad of ['127.0.0.1:3310', 'http://clamav:3310', 'tcp://clamav:0', 'tcp://clamav:3310/x', 'unix:clamd.ctl', 'tcp://a b']) {
      assert.throws(() => parseClamdAddress(bad), /invalid clamd address/, bad);
    }
  });

  it('compiles with fail-closed defaults, and is absent when not configured', () => {
    const config = expectConfig(withScan('{ clamd: "tcp://127.0.0.1:3310" }'));
    assert.deepEqual(config.routes[0]!.policy.scan, {
      clamd: { kind: 'tcp', host: '127.0.0.1', port: 3310 },
      timeoutMs: 30_000,
      onScannerError: 'reject',
      maxScanSize: null,
    });
    const full = expectConfig(withScan('{ clamd: "unix:/run/clamd.ctl", timeout: 5s, onScannerError: allow, maxScanSize: 20MiB }'));
    assert.deepEqual(full.routes[0]!.policy.scan, { clamd: { kind: 'unix', path: '/run/clamd.ctl' }, timeoutMs: 5000, onScannerError: 'allow', maxScanSize: 20 * 2 ** 20 });
    const none = expectConfig(loadConfigText('routes:\n  - { name: up, path: /upload, policy: p }\npolicies:\n  p: { allow: [png] }\n', 'test.yaml', { env: {} }));
    assert.equal('scan' in none.routes[0]!.policy, false);
  });

  it('reports mistakes at their line', () => {
    const result = withScan('{ clamd: "localhost:3310", onScannerError: ignore, timeout: 0 }');
    assert.ok('errors' in result);
    const text = result.errors.join('\n');
    assert.match(text, /test\.yaml:6: .*clamd.*invalid clamd address/);
    assert.match(text, /onScannerError/);
    assert.match(text, /timeout/);
    assert.ok('errors' in withScan('{ timeout: 5s }'), 'clamd is required');
    assert.ok('errors' in withScan('{ clamd: "tcp://h", retries: 3 }'), 'unknown keys are refused');
  });

  it('config/examples/full.yaml shows every scan key', () => {
    const config = expectConfig(loadConfigFile(join(configDir, 'examples/full.yaml'), { env: { API_KEY: 'k' } }));
    const scanned = config.routes.map((route) => route.policy.scan).find((scan) => scan !== undefined);
    assert.deepEqual(scanned, { clamd: { kind: 'tcp', host: '127.0.0.1', port: 3310 }, timeoutMs: 30_000, onScannerError: 'reject', maxScanSize: 20 * 2 ** 20 });
  });
});
