// `workers: 2` (node:cluster): two processes serve the public port, the rate-limit bucket stays
// exact across them (the primary holds the memory store), /metrics in the primary counts every
// worker's requests, SIGHUP reloads every worker, SIGTERM drains them all and exits 0.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HEAP_FLAGS, missingHeapFlags } from '../../src/lifecycle/heap-flags.ts';
import { type GuardCli, startGuardCli } from '../helpers/guard-cli.ts';
import { buildMultipart } from '../helpers/multipart-builder.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/recording-upstream.ts';
import { gifBytes, pngBytes } from '../helpers/samples.ts';

let upstream: RecordingUpstream;
let dir: string;
let guard: GuardCli;
let configPath: string;

function yaml(allow: string): string {
  return `
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
workers: 2
upstream: { url: "${upstream.url}" }
trustProxy: [127.0.0.1/32]
routes:
  - { name: upload, path: /upload, methods: [POST], policy: images }
  - { name: limited, path: /limited, methods: [POST], policy: limited }
policies:
  images: { allow: [${allow}] }
  limited: { allow: [png], rateLimit: { rate: 1/hour, burst: 10 } }
`;
}

before(async () => {
  upstream = await startRecordingUpstream();
  dir = mkdtempSync(join(tmpdir(), 'guard-workers-'));
  configPath = join(dir, 'guard.yaml');
  writeFileSync(configPath, yaml('png'));
  guard = await startGuardCli({ args: ['serve', '--config', configPath], admin: true });
});

after(async () => {
  await guard?.stop();
  await upstream.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function upload(path: string, filename: string, data: Buffer, client = '198.51.100.1'): Promise<number> {
  const form = buildMultipart([{ name: 'file', filename, contentType: 'application/octet-stream', data }]);
  const head = `POST ${path} HTTP/1.1\r\nHost: guard\r\nContent-Type: ${form.contentType}\r\nContent-Length: ${form.body.length}\r\nX-Forwarded-For: ${client}\r\n\r\n`;
  return (await rawRequest(guard.port, Buffer.concat([Buffer.from(head, 'latin1'), form.body]))).status;
}

function childPids(pid: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((entry) => {
      try {
        return readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ')[1] === String(pid);
      } catch {
        return false;
      }
    })
    .map(Number);
}

const commandLine = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');

async function requestsCounted(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${guard.adminPort}/metrics`)).text();
  let total = 0;
  for (const match of text.matchAll(/^upload_guard_requests_total\{[^}]*\} (\d+)/gm)) total += Number(match[1]);
  return total;
}

describe('workers: 2', () => {
  test('two worker processes serve the port, started with the heap flags though the primary was not', () => {
    const workers = childPids(guard.child.pid!);
    assert.equal(workers.length, 2);
    assert.deepEqual(missingHeapFlags(commandLine(guard.child.pid!)), HEAP_FLAGS, 'the test starts the primary without them');
    for (const pid of workers) assert.deepEqual(missingHeapFlags(commandLine(pid)), [], `worker ${pid}: ${commandLine(pid).join(' ')}`);
  });

  test('30 concurrent uploads from one client: exactly the burst of 10 pass across both workers', async () => {
    const statuses = await Promise.all(Array.from({ length: 30 }, () => upload('/limited', 'a.png', pngBytes(200))));
    assert.equal(statuses.filter((s) => s === 200).length, 10, statuses.join(','));
    assert.equal(statuses.filter((s) => s === 429).length, 20, statuses.join(','));
  });

  test("the primary's /metrics counts every worker's requests", async () => {
    const deadline = Date.now() + 5000;
    let counted = 0;
    while ((counted = await requestsCounted()) < 30 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(counted, 30);
  });

  test('SIGHUP: every worker reloads', async () => {
    writeFileSync(configPath, yaml('gif'));
    guard.child.kill('SIGHUP');
    await guard.waitForLog((l) => l.msg === 'config reloaded');
    await new Promise((resolve) => setTimeout(resolve, 500));
    const gif = Buffer.concat([gifBytes(), Buffer.alloc(100)]);
    // several requests, so both workers are asked (each connection may land on either)
    const statuses = await Promise.all(Array.from({ length: 8 }, (_, i) => upload('/upload', `g${i}.gif`, gif, `203.0.113.${i}`)));
    assert.deepEqual(new Set(statuses), new Set([200]));
    assert.equal(await upload('/upload', 'late.png', pngBytes(10)), 400);
  });

  test('SIGTERM: all workers drain and the primary exits 0', async () => {
    const exited = once(guard.child, 'exit');
    guard.child.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0);
  });
});
