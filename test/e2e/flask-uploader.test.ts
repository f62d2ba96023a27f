// End to end: the guard in front of the seed's real Flask uploader (Debian python3-flask).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { openAsBlob } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadConfigText } from '../../src/config/load.ts';
import { GuardServer } from '../../src/server/guard-server.ts';

const PYTHON = '/usr/bin/python3';
let flask: ChildProcess;
let guard: GuardServer;
let guardUrl = '';
const uploads = mkdtempSync(join(tmpdir(), 'ug-flask-uploads-'));

before(async () => {
  // No skip: without Flask this fails loudly (CI installs python3-flask).
  assert.ok(existsSync(PYTHON), `${PYTHON} missing: apt-get install python3-flask`);
  flask = spawn(PYTHON, ['examples/flask-uploader/app.py'], {
    env: { ...process.env, PORT: '0', UPLOAD_DIR: uploads, MAX_CONTENT_LENGTH: String(200 * 1024 * 1024) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  flask.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    flask.stdout!.on('data', (c: Buffer) => {
      const m = /LISTENING (\d+)/.exec(c.toString());
      if (m) resolve(Number(m[1]));
    });
    flask.once('exit', (code) => reject(new Error(`Flask app exited (${code}): ${stderr} — is python3-flask installed?`)));
  });
  const loaded = loadConfigText(`
listen: 127.0.0.1:0
admin: false
upstream: { url: "http://127.0.0.1:${port}" }
routes: [{ name: upload, path: /upload, methods: [POST], policy: images }]
policies:
  images: { allow: [png, jpg, jpeg, gif, mp4, mov], maxFileSize: 150MiB, maxRequestSize: 150MiB }
`);
  assert.ok('config' in loaded);
  guard = new GuardServer(loaded.config);
  guardUrl = `http://127.0.0.1:${(await guard.listen()).port}`;
});

after(async () => {
  await guard?.close();
  flask?.kill();
});

const ONE_PIXEL_PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b550000000a49444154789c636000000002000148afa4710000000049454e44ae426082', 'hex');

async function upload(name: string, blob: Blob): Promise<{ status: number; json: Record<string, unknown> }> {
  const form = new FormData();
  form.append('file', blob, name);
  const res = await fetch(`${guardUrl}/upload`, { method: 'POST', body: form });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

test('a PNG is saved under its secure name', async () => {
  const res = await upload('../../My holiday.png', new Blob([ONE_PIXEL_PNG]));
  assert.equal(res.status, 200, JSON.stringify(res.json));
  assert.equal(res.json.filename, 'My_holiday.png');
  assert.deepEqual(readFileSync(join(uploads, 'images', 'My_holiday.png')), ONE_PIXEL_PNG);
});

test('a disguised .php is refused and never saved', async () => {
  for (const [name, bytes, code] of [
    ['shell.php', '<?php system($_GET[1]); ?>', 'EXTENSION_NOT_ALLOWED'],
    // filenameRules.doubleExtensions: the executable inner extension is refused before the content
    ['shell.php.png', 'GIF89a<?php system($_GET[1]); ?>', 'EXTENSION_NOT_ALLOWED'],
    ['shell.png', 'GIF89a<?php system($_GET[1]); ?>', 'CONTENT_MISMATCH'],
    ['avatar.jpg', Buffer.concat([ONE_PIXEL_PNG, Buffer.from('<?php echo 1; ?>')]), 'CONTENT_MISMATCH'],
  ] as const) {
    const res = await upload(name, new Blob([bytes]));
    assert.equal(res.json.code, code, name);
  }
  const stored = existsSync(join(uploads, 'images')) ? readdirSync(join(uploads, 'images')) : [];
  assert.deepEqual(stored.filter((f) => f !== 'My_holiday.png'), []);
});

test('a 100 MiB file arrives intact', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'ug-big-')), 'big.png');
  writeFileSync(path, Buffer.concat([ONE_PIXEL_PNG, randomBytes(100 * 1024 * 1024)]));
  const expected = createHash('sha256').update(readFileSync(path)).digest('hex');
  const res = await upload('big.png', await openAsBlob(path));
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(join(uploads, 'images', 'big.png'))) hash.update(chunk as Buffer);
  assert.equal(hash.digest('hex'), expected);
});
