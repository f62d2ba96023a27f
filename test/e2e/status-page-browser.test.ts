// The admin status page in a real headless Chromium (Debian package `chromium`, driven by npm
// playwright-core): the inline script runs under the page's CSP, polls /status.json and renders
// it; a hostile filename stays text. The screenshot goes to a temp dir; with
// UPDATE_SCREENSHOTS=1 it also replaces docs/status-page.png (the README's picture), so an ordinary
// test run leaves the work tree as it was.
// Without the browser the test fails under CI=true (CI installs it) and is skipped elsewhere.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { loadConfigText } from '../../src/config/load.ts';
import { GuardMetrics } from '../../src/observe/metrics.ts';
import { StatusBoard } from '../../src/observe/status-board.ts';
import { AdminServer } from '../../src/server/admin-server.ts';
import { GuardServer } from '../../src/server/guard-server.ts';
import { buildMultipart } from '../helpers/multipart-builder.ts';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.ts';
import { pngBytes } from '../helpers/samples.ts';

// the page's DOM, as far as the functions below that run inside the browser use it (no DOM lib here)
declare const document: { querySelector(selector: string): { textContent: string | null } | null };

const CHROMIUM = '/usr/bin/chromium';
const installed = existsSync(CHROMIUM);
const skip = !installed && process.env.CI !== 'true' ? `${CHROMIUM} not installed (apt-get install chromium)` : false;
const HOSTILE = '<img src=x onerror=alert(1)><script>alert(2)</script>.php';

let upstream: RecordingUpstream;
let guard: GuardServer;
let admin: AdminServer;
let board: StatusBoard;
let browser: Browser | undefined;
let guardUrl = '';
let adminUrl = '';

before(async () => {
  if (skip) return;
  assert.ok(installed, `${CHROMIUM} missing: apt-get install chromium (CI must install it)`);
  upstream = await startRecordingUpstream();
  const loaded = loadConfigText(`
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
upstream: { url: "${upstream.url}" }
routes:
  - { name: upload, path: /upload, methods: [POST], policy: images }
  - { name: avatars, path: /avatars, methods: [POST], policy: images }
policies:
  images: { allow: [png, jpg], maxFileSize: 1MiB, maxRequestSize: 2MiB }
`);
  assert.ok('config' in loaded, JSON.stringify(loaded));
  const metrics = new GuardMetrics({ routes: ['upload', 'avatars'] });
  board = new StatusBoard();
  guard = new GuardServer(loaded.config, { observers: [metrics, board] });
  guardUrl = `http://127.0.0.1:${(await guard.listen()).port}`;
  admin = new AdminServer(loaded.config, { metrics, board, limiterStats: () => ({ trackedBuckets: 12, activeBans: 1 }) });
  adminUrl = `http://127.0.0.1:${(await admin.listen()).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--disable-gpu', '--disable-dev-shm-usage'] });
});

after(async () => {
  await browser?.close();
  await admin?.close();
  await guard?.close();
  await upstream?.stop();
});

async function upload(path: string, filename: string, data: Buffer | string): Promise<number> {
  const built = buildMultipart([{ name: 'file', filename, data }]);
  const res = await fetch(`${guardUrl}${path}`, { method: 'POST', body: built.body, headers: { 'content-type': built.contentType } });
  await res.arrayBuffer();
  return res.status;
}

test('the status page renders live data in Chromium under its CSP, hostile names stay text', { skip, timeout: 120_000 }, async () => {
  for (let i = 0; i < 3; i++) assert.equal(await upload('/upload', `holiday-${i}.png`, pngBytes(1000 * i)), 200);
  assert.equal(await upload('/upload', 'shell.php', '<?php system($_GET[1]); ?>'), 400);
  assert.equal(await upload('/avatars', 'me.png', 'GIF89a<?php echo 1; ?>'), 400);
  assert.equal(await upload('/upload', 'big.png', pngBytes(1_200_000)), 413);

  const page = await browser!.newPage({ viewport: { width: 1200, height: 900 } });
  const dialogs: string[] = [];
  const consoleErrors: string[] = [];
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (err) => consoleErrors.push(err.message));

  const response = await page.goto(`${adminUrl}/`);
  assert.equal(response?.status(), 200);
  assert.equal(await page.title(), 'upload-guard status');
  assert.equal(await page.textContent('#ready'), 'ready');

  // A rejection that arrives after the page loaded: only the polling script can show it.
  board.finished({ id: 'late', route: 'upload', ip: '203.0.113.7', method: 'POST', path: '/upload', outcome: 'rejected', status: 400, code: 'EXTENSION_NOT_ALLOWED', bytes: 90, ms: 2, filename: HOSTILE });
  await page.waitForFunction((name) => document.querySelector('#recent tr td:nth-child(7)')?.textContent === name, HOSTILE, { timeout: 30_000 });
  const firstRow = await page.$$eval('#recent tr:first-child td', (cells) => cells.map((c) => c.textContent));
  assert.equal(firstRow[1], 'upload');
  assert.equal(firstRow[2], '203.0.113.7');
  assert.equal(firstRow[5], 'EXTENSION_NOT_ALLOWED');
  assert.equal(await page.locator('#recent img, #recent script').count(), 0, 'the filename was never parsed as HTML');
  assert.equal(await page.locator('#recent tr').count(), 4);
  const codes = await page.$$eval('#codes tr td:first-child', (cells) => cells.map((c) => c.textContent));
  assert.deepEqual(codes, ['CONTENT_MISMATCH', 'EXTENSION_NOT_ALLOWED', 'FILE_TOO_LARGE']);
  assert.equal(Number(await page.textContent('#total')), 7);
  assert.match((await page.textContent('#limiter')) ?? '', /activeBans1trackedBuckets12/);
  assert.deepEqual(dialogs, [], 'no script from the data ran');
  assert.deepEqual(consoleErrors, [], 'no CSP violation or script error');

  // draining turns the badge red on the next poll
  admin.setDraining(true);
  await page.waitForFunction(() => document.querySelector('#ready')?.textContent === 'draining', undefined, { timeout: 30_000 });
  admin.setDraining(false);
  await page.waitForFunction(() => document.querySelector('#ready')?.textContent === 'ready', undefined, { timeout: 30_000 });

  const shot = await page.screenshot({ path: join(mkdtempSync(join(tmpdir(), 'ug-status-page-')), 'status-page.png'), fullPage: true });
  assert.ok(shot.subarray(1, 4).toString() === 'PNG' && shot.length > 10_000, 'a real screenshot');
  if (process.env.UPDATE_SCREENSHOTS === '1') {
    mkdirSync('docs', { recursive: true });
    writeFileSync('docs/status-page.png', shot);
  }
  await page.close();
});
