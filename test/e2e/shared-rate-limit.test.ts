// Two guard processes (replicas) on one real redis-server: together they admit no more than one
// bucket allows. Redis killed mid-test: each replica answers per its onStoreError (deny / allow);
// Redis back: shared limiting resumes by itself, with no restart of the guards.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type GuardCli, startGuardCli } from '../helpers/guard-cli.ts';
import { buildMultipart } from '../helpers/multipart-builder.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { type RecordingUpstream, startRecordingUpstream } from '../helpers/recording-upstream.ts';
import { freePort, REDIS_SERVER, startRedis, stopRedis } from '../helpers/redis-server.ts';
import { pngBytes } from '../helpers/samples.ts';

function guardYaml(upstreamUrl: string, redisPort: number, onStoreError: 'deny' | 'allow'): string {
  return `
listen: 127.0.0.1:0
admin: false
upstream: { url: "${upstreamUrl}" }
trustProxy: [127.0.0.1/32]
rateLimitStore: redis://127.0.0.1:${redisPort}/0
rateLimitStoreOptions: { timeout: 200ms, onStoreError: ${onStoreError} }
routes:
  - { name: upload, path: /upload, methods: [POST], policy: images }
policies:
  images: { allow: [png], rateLimit: { rate: 1/hour, burst: 10 } }
`;
}

const configDir = mkdtempSync(join(tmpdir(), 'shared-rate-limit-'));
after(() => rmSync(configDir, { recursive: true, force: true }));

/** One replica: `node dist/cli.js serve` with its own config file. */
function startReplica(name: string, yaml: string): Promise<GuardCli> {
  const path = join(configDir, `${name}.yaml`);
  writeFileSync(path, yaml);
  return startGuardCli({ args: ['serve', '--config', path] });
}

const form = buildMultipart([{ name: 'file', filename: 'a.png', contentType: 'image/png', data: pngBytes(256) }]);

async function upload(port: number, client: string): Promise<number> {
  const head = `POST /upload HTTP/1.1\r\nHost: guard\r\nContent-Type: ${form.contentType}\r\nContent-Length: ${form.body.length}\r\nX-Forwarded-For: ${client}\r\n\r\n`;
  const response = await rawRequest(port, Buffer.concat([Buffer.from(head, 'latin1'), form.body]), { stopWritingOnResponse: true });
  return response.status;
}

async function until(condition: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('two replicas on one redis-server', { skip: REDIS_SERVER === null ? 'redis-server not installed' : false }, () => {
  let redisPort: number;
  let redis: ChildProcess;
  let upstream: RecordingUpstream;
  let replicaA: GuardCli;
  let replicaB: GuardCli;
  let allowing: GuardCli;

  before(async () => {
    redisPort = await freePort();
    redis = await startRedis(redisPort);
    upstream = await startRecordingUpstream();
    [replicaA, replicaB, allowing] = await Promise.all([
      startReplica('a', guardYaml(upstream.url, redisPort, 'deny')),
      startReplica('b', guardYaml(upstream.url, redisPort, 'deny')),
      startReplica('allowing', guardYaml(upstream.url, redisPort, 'allow')),
    ]);
  });

  after(async () => {
    await Promise.all([replicaA?.stop(), replicaB?.stop(), allowing?.stop()]);
    if (redis) await stopRedis(redis);
    await upstream?.stop();
  });

  test('30 concurrent uploads spread over both replicas: exactly the burst of 10 pass', async () => {
    await until(async () => (await upload(replicaA.port, '192.0.2.200')) === 200, 10_000, 'replica A to reach redis');
    await until(async () => (await upload(replicaB.port, '192.0.2.201')) === 200, 10_000, 'replica B to reach redis');
    upstream.clear();
    const statuses = await Promise.all(Array.from({ length: 30 }, (_, i) => upload(i % 2 === 0 ? replicaA.port : replicaB.port, '198.51.100.7')));
    assert.equal(statuses.filter((s) => s === 200).length, 10, statuses.join(','));
    assert.equal(statuses.filter((s) => s === 429).length, 20, statuses.join(','));
    // each replica got 15: with a bucket per replica 20 would have passed, so the bucket is shared
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(upstream.requests.filter((r) => r.complete).length, 10);
  });

  test('redis down: the deny replica refuses with 429, the allow replica lets uploads through', async () => {
    await stopRedis(redis);
    assert.equal(await upload(replicaA.port, '192.0.2.210'), 429);
    assert.equal(await upload(replicaB.port, '192.0.2.211'), 429);
    // 12 from one client: with redis up, the 11th would be refused
    const allowed: number[] = [];
    for (let i = 0; i < 12; i++) allowed.push(await upload(allowing.port, '192.0.2.212'));
    assert.deepEqual(new Set(allowed), new Set([200]));
  });

  test('redis back on the same port: the replicas limit again without a restart', async () => {
    redis = await startRedis(redisPort);
    await until(async () => (await upload(replicaA.port, '192.0.2.220')) === 200, 15_000, 'replica A to reconnect');
    await until(async () => (await upload(replicaB.port, '192.0.2.221')) === 200, 15_000, 'replica B to reconnect');
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push(await upload(i % 2 === 0 ? replicaA.port : replicaB.port, '198.51.100.8'));
    assert.equal(statuses.filter((s) => s === 200).length, 10, statuses.join(','));
  });
});
