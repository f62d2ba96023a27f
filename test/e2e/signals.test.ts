// The guard process as Kubernetes and systemd drive it (`node dist/cli.js serve`):
// - SIGHUP / config file change: a bad config is refused and the old one keeps serving; a good one
//   takes effect; both counted in upload_guard_config_reloads_total{result}.
// - SIGTERM: /readyz fails at once, new connections are refused, the upload in flight finishes,
//   exit 0. A second SIGTERM exits at once.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HEAP_FLAGS } from '../../src/lifecycle/heap-flags.ts';
import { type GuardCli, startGuardCli } from '../helpers/guard-cli.ts';
import { buildMultipart } from '../helpers/multipart-builder.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/recording-upstream.ts';
import { gifBytes, pngBytes } from '../helpers/samples.ts';
import { connectionRefused } from '../helpers/net.ts';

let upstream: RecordingUpstream;
let dir: string;

before(async () => {
  upstream = await startRecordingUpstream();
  dir = mkdtempSync(join(tmpdir(), 'guard-signals-'));
});
after(async () => {
  await upstream.stop();
  rmSync(dir, { recursive: true, force: true });
});

function yaml(allow: string, drainTimeout = '10s'): string {
  return `
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
drainTimeout: ${drainTimeout}
upstream: { url: "${upstream.url}" }
routes: [{ name: upload, path: /upload, methods: [POST], policy: images }]
policies: { images: { allow: [${allow}] } }
`;
}

async function startWith(text: string): Promise<{ guard: GuardCli; configPath: string }> {
  const configPath = join(mkdtempSync(join(dir, 'cfg-')), 'guard.yaml');
  writeFileSync(configPath, text);
  const guard = await startGuardCli({ args: ['serve', '--config', configPath], admin: true });
  return { guard, configPath };
}

function uploadPieces(filename: string, data: Buffer): [Buffer, Buffer] {
  const form = buildMultipart([{ name: 'file', filename, contentType: 'application/octet-stream', data }]);
  const head = Buffer.from(`POST /upload HTTP/1.1\r\nHost: guard\r\nContent-Type: ${form.contentType}\r\nContent-Length: ${form.body.length}\r\n\r\n`, 'latin1');
  const whole = Buffer.concat([head, form.body]);
  return [whole.subarray(0, head.length + 2000), whole.subarray(head.length + 2000)];
}

async function uploadStatus(port: number, filename: string, data: Buffer): Promise<number> {
  return (await rawRequest(port, Buffer.concat(uploadPieces(filename, data)))).status;
}

async function reloadsCounted(adminPort: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const match of text.matchAll(/^upload_guard_config_reloads_total\{result="(\w+)"\} (\d+)/gm)) counts[match[1]!] = Number(match[2]);
  return counts;
}

const gif = Buffer.concat([gifBytes(), Buffer.alloc(100)]);

describe('start', () => {
  test('started without the heap flags: one warning naming them (the container and npm start give them)', async () => {
    const { guard } = await startWith(yaml('png'));
    try {
      const warnings = guard.logs().filter((l) => String(l.msg).includes('heap flags'));
      assert.equal(warnings.length, 1, JSON.stringify(guard.logs()));
      assert.equal(warnings[0]!.missing, HEAP_FLAGS.join(' '));
    } finally {
      await guard.stop();
    }
  });
});

describe('reload', () => {
  test('SIGHUP with an invalid file keeps the old config; a valid change applies on its own (file watch)', async () => {
    const { guard, configPath } = await startWith(yaml('png'));
    try {
      assert.equal(await uploadStatus(guard.port, 'a.png', pngBytes(10)), 200);
      writeFileSync(configPath, yaml('png').replace('allow: [png]', 'allow: [png], maxFiles: lots'));
      guard.child.kill('SIGHUP');
      const refusedLine = await guard.waitForLog((l) => String(l.msg).startsWith('config reload refused'));
      assert.match(JSON.stringify(refusedLine.errors), /maxFiles/);
      assert.equal(await uploadStatus(guard.port, 'a.png', pngBytes(10)), 200, 'old config still serving');
      assert.ok((await reloadsCounted(guard.adminPort!)).failure! >= 1);

      writeFileSync(configPath, yaml('gif'));
      await guard.waitForLog((l) => l.msg === 'config reloaded');
      assert.equal(await uploadStatus(guard.port, 'b.gif', gif), 200, 'gif allowed after the reload');
      assert.equal(await uploadStatus(guard.port, 'c.png', pngBytes(10)), 400, 'png no longer allowed');
      assert.ok((await reloadsCounted(guard.adminPort!)).success! >= 1);
    } finally {
      await guard.stop();
    }
  });
});

describe('drain', () => {
  test('SIGTERM: readyz fails at once, new connections are refused, the upload in flight finishes, exit 0', async () => {
    const { guard } = await startWith(yaml('png'));
    upstream.clear();
    const inFlight = rawRequest(guard.port, uploadPieces('slow.png', pngBytes(100_000)), { delayBetweenMs: 2000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const exited = once(guard.child, 'exit');
    guard.child.kill('SIGTERM');
    await guard.waitForLog((l) => l.msg === 'draining');
    const ready = await fetch(`http://127.0.0.1:${guard.adminPort}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(await connectionRefused(guard.port), true);
    const response = await inFlight;
    assert.equal(response.status, 200);
    const [code] = await exited;
    assert.equal(code, 0);
    const [received] = await upstream.waitForRequests(1);
    assert.equal(received!.complete, true);
  });

  test('a second SIGTERM exits at once, without waiting for the drain', async () => {
    const { guard } = await startWith(yaml('png', '10m'));
    const stalled = rawRequest(guard.port, uploadPieces('stalled.png', pngBytes(100_000)), { delayBetweenMs: 5000, timeoutMs: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const exited = once(guard.child, 'exit');
    guard.child.kill('SIGTERM');
    await guard.waitForLog((l) => l.msg === 'draining');
    guard.child.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 1);
    assert.equal((await stalled).status, 0, 'the stalled upload got no answer: the process is gone');
  });
});
