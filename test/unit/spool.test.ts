import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Spool } from '../../src/forward/spool.ts';

const dir = mkdtempSync(join(tmpdir(), 'spool-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function readAll(stream: NodeJS.ReadableStream | Buffer): Promise<Buffer> {
  if (Buffer.isBuffer(stream)) return stream;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('a body under the memory threshold comes back from memory, byte for byte', async () => {
  const spool = new Spool(dir, 64 * 1024);
  const parts = [randomBytes(10), randomBytes(1000), Buffer.alloc(0), randomBytes(20_000)];
  for (const part of parts) await spool.write(part);
  assert.equal(spool.length, 21_010);
  const body = await spool.reader();
  assert.ok(Buffer.isBuffer(body), 'a body in memory is handed over whole');
  assert.equal(sha256(body), sha256(Buffer.concat(parts)));
  assert.deepEqual(readdirSync(dir), []);
});

test('a body spooled to disk in batches comes back byte for byte, whatever the chunk sizes', async () => {
  const spool = new Spool(dir, 100 * 1024);
  const parts: Buffer[] = [];
  // many tiny chunks before the threshold, then sizes around and far over the 1 MiB batch
  for (let i = 0; i < 3000; i++) parts.push(randomBytes(1 + (i % 50)));
  for (const size of [65536, 1, 1024 * 1024 - 1, 3 * 1024 * 1024, 7, 65536, 200_000]) parts.push(randomBytes(size));
  for (const part of parts) await spool.write(part);
  // the temp file is unlinked as soon as it is opened: never visible in the directory
  assert.deepEqual(readdirSync(dir), []);
  const expected = Buffer.concat(parts);
  assert.equal(spool.length, expected.length);
  const stream = await spool.reader();
  assert.ok(!Buffer.isBuffer(stream), 'a body on disk is streamed');
  const got = await readAll(stream);
  assert.equal(got.length, expected.length);
  assert.equal(sha256(got), sha256(expected));
});

test('release while a batch is being written: no stray rejection, later writes refused', async () => {
  const spool = new Spool(dir, 0);
  for (let i = 0; i < 5; i++) await spool.write(randomBytes(512 * 1024)); // a batch is in flight now
  await spool.release();
  await spool.release(); // twice is fine
  await assert.rejects(spool.write(Buffer.from('x')), /released/);
  assert.deepEqual(readdirSync(dir), []);
});
