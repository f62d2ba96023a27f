// The admin listener in front of a real guard and a real (recording) upstream: probes, metrics,
// the status page and its JSON; then the built CLI serving both listeners as a user runs it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadConfigText } from '../../src/config/load.ts';
import type { CompiledConfig } from '../../src/config/types.ts';
import { GuardMetrics } from '../../src/observe/metrics.ts';
import { StatusBoard } from '../../src/observe/status-board.ts';
import { AdminServer, type StatusJson } from '../../src/server/admin-server.ts';
import { GuardServer } from '../../src/server/guard-server.ts';
import { buildMultipart } from '../helpers/multipart-builder.ts';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.ts';
import { pngBytes } from '../helpers/samples.ts';

let upstream: RecordingUpstream;
let config: CompiledConfig;
let guard: GuardServer;
let admin: AdminServer;
let metrics: GuardMetrics;
let board: StatusBoard;
let guardUrl = '';
let adminUrl = '';

function configFor(upstreamUrl: string, storagePath?: string): CompiledConfig {
  const loaded = loadConfigText(`
listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:0 }
upstream: { url: "${upstreamUrl}" }
routes: [{ name: upload, path: /upload, methods: [POST], policy: images }]
policies:
  images: { allow: [png, jpg], maxFileSize: 1MiB, maxRequestSize: 2MiB }
${storagePath !== undefined ? `storage: { path: "${storagePath}", minFree: 1 }` : ''}
`);
  assert.ok('config' in loaded, JSON.stringify(loaded));
  return loaded.config;
}

/** A TCP port that nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

before(async () => {
  upstream = await startRecordingUpstream();
  config = configFor(upstream.url, tmpdir());
  metrics = new GuardMetrics({ routes: ['upload'] });
  board = new StatusBoard();
  guard = new GuardServer(config, { observers: [metrics, board] });
  guardUrl = `http://127.0.0.1:${(await guard.listen()).port}`;
  admin = new AdminServer(config, { metrics, board, limiterStats: () => ({ trackedBuckets: 3, activeBans: 1 }) });
  adminUrl = `http://127.0.0.1:${(await admin.listen()).port}`;
});

after(async () => {
  await admin?.close();
  await guard?.close();
  await upstream?.stop();
});

async function upload(filename: string, data: Buffer | string): Promise<{ status: number; body: Record<string, unknown> }> {
  const built = buildMultipart([{ name: 'file', filename, data }]);
  const res = await fetch(`${guardUrl}/upload`, { method: 'POST', body: built.body, headers: { 'content-type': built.contentType } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test('/healthz answers 200 {"status":"ok"}; HEAD too; other paths 404, other methods 405', async () => {
  const res = await fetch(`${adminUrl}/healthz`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: 'ok' });
  assert.equal((await fetch(`${adminUrl}/healthz`, { method: 'HEAD' })).status, 200);
  for (const path of ['/upload', '/metrics/x', '/healthz/', '/../etc/passwd', '/admin']) {
    const other = await fetch(`${adminUrl}${path}`);
    assert.equal(other.status, 404, path);
    await other.arrayBuffer();
  }
  const post = await fetch(`${adminUrl}/metrics`, { method: 'POST', body: 'x' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get('allow'), 'GET, HEAD');
  await post.arrayBuffer();
});

test('the admin endpoints are not on the public port', async () => {
  // /metrics on the guard's port is an ordinary passthrough request to the upstream
  const before = upstream.requests.length;
  const res = await fetch(`${guardUrl}/metrics`);
  const text = await res.text();
  assert.doesNotMatch(text, /upload_guard_/);
  assert.equal(upstream.requests.length, before + 1);
  assert.equal(upstream.requests.at(-1)!.url, '/metrics');
});

test('/readyz: 200 with the upstream reachable, 503 with reasons when it is closed or the guard drains', async () => {
  const ready = await fetch(`${adminUrl}/readyz`);
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { status: 'ready' });

  const closed = await closedPort();
  const other = new AdminServer(configFor(`http://127.0.0.1:${closed}`), { metrics: new GuardMetrics({ defaultMetrics: false }), probeCacheMs: 0 });
  const url = `http://127.0.0.1:${(await other.listen()).port}`;
  try {
    const res = await fetch(`${url}/readyz`);
    assert.equal(res.status, 503);
    const body = (await res.json()) as { status: string; reasons: string[] };
    assert.equal(body.status, 'not ready');
    assert.equal(body.reasons.length, 1);
    assert.match(body.reasons[0]!, new RegExp(`^upstream 127\\.0\\.0\\.1:${closed} unreachable: ECONNREFUSED`));
    assert.equal((await fetch(`${url}/healthz`)).status, 200, 'alive although not ready');
    // the upstream comes up on that port: ready again (no cache in this instance)
    const late = createServer((s) => s.end());
    await new Promise<void>((resolve) => late.listen(closed, '127.0.0.1', resolve));
    try {
      const now = await fetch(`${url}/readyz`);
      assert.equal(now.status, 200, await now.text());
    } finally {
      late.close();
    }
  } finally {
    await other.close();
  }

  admin.setDraining(true);
  try {
    const draining = await fetch(`${adminUrl}/readyz`);
    assert.equal(draining.status, 503);
    assert.deepEqual(await draining.json(), { status: 'not ready', reasons: ['draining'] });
  } finally {
    admin.setDraining(false);
  }
  assert.equal((await fetch(`${adminUrl}/readyz`)).status, 200);
});

test('/metrics and /status.json count real traffic through the guard', async () => {
  assert.equal((await upload('cat.png', pngBytes(2000))).status, 200);
  const refused = await upload('shell.php', '<?php system($_GET[1]); ?>');
  assert.equal(refused.body.code, 'EXTENSION_NOT_ALLOWED');
  const passthrough = await fetch(`${guardUrl}/some/page?x=1`);
  await passthrough.arrayBuffer();

  const res = await fetch(`${adminUrl}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  assert.match(text, /^upload_guard_requests_total\{route="upload",outcome="forwarded",code="none"\} 1$/m);
  assert.match(text, /^upload_guard_requests_total\{route="upload",outcome="rejected",code="EXTENSION_NOT_ALLOWED"\} 1$/m);
  assert.match(text, /^upload_guard_requests_total\{route="passthrough",outcome="passthrough",code="none"\} \d+$/m);
  assert.match(text, /^upload_guard_files_total\{route="upload",category="image",outcome="forwarded"\} 1$/m);
  assert.match(text, /^upload_guard_upstream_duration_seconds_count\{route="upload"\} 1$/m);
  assert.match(text, /^upload_guard_inflight_requests\{route="upload"\} 0$/m);
  assert.match(text, /^upload_guard_storage_free_bytes [1-9]\d*$/m, 'storage.path is measured at scrape time');
  assert.match(text, /^upload_guard_process_resident_memory_bytes \d+/m);

  const status = (await (await fetch(`${adminUrl}/status.json`)).json()) as StatusJson;
  assert.equal(status.ready, true);
  assert.equal(status.draining, false);
  assert.equal(status.upstream, upstream.url);
  assert.deepEqual(status.limiter, { trackedBuckets: 3, activeBans: 1 });
  const snapshot = status.status!;
  assert.ok(snapshot.totals.requests >= 3);
  assert.equal(snapshot.totals.byOutcome.forwarded, 1);
  assert.equal(snapshot.totals.byOutcome.rejected, 1);
  assert.deepEqual(snapshot.totals.byCode, { EXTENSION_NOT_ALLOWED: 1 });
  assert.ok(snapshot.rates.requestsPerSecond > 0);
  assert.ok((snapshot.rates.byCode.EXTENSION_NOT_ALLOWED ?? 0) > 0);
  assert.deepEqual(snapshot.inflight, { upload: 0 });
  assert.equal(snapshot.recent.length, 1);
  const [rejection] = snapshot.recent;
  assert.equal(rejection!.route, 'upload');
  assert.equal(rejection!.code, 'EXTENSION_NOT_ALLOWED');
  assert.equal(rejection!.status, 400);
  assert.equal(rejection!.ip, '127.0.0.1');
  assert.equal(rejection!.filename, 'shell.php');
  assert.ok(!Number.isNaN(Date.parse(rejection!.time)));
});

test('the status page escapes client-supplied text and ships a CSP that allows exactly its inline script', async () => {
  board.finished({
    id: 'evil-1', route: 'upload', ip: '127.0.0.1', method: 'POST', path: '/upload', outcome: 'rejected', status: 400,
    code: 'EXTENSION_NOT_ALLOWED', bytes: 10, ms: 1, filename: '<script>alert("x")</script>&\u202e.php',
  });
  const res = await fetch(`${adminUrl}/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
  const html = await res.text();
  assert.ok(html.includes('&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;&#38;\uFFFD.php'), 'filename escaped, bidi override replaced');
  assert.ok(!html.includes('alert("x")'));
  assert.equal(html.match(/<script>/g)?.length, 1, 'only the page\'s own script tag');
  assert.match(html, /Recent rejections/);
  assert.match(html, /trackedBuckets/);

  const csp = res.headers.get('content-security-policy') ?? '';
  const script = /<script>([\s\S]*)<\/script>/.exec(html)![1]!;
  const style = /<style>([\s\S]*)<\/style>/.exec(html)![1]!;
  const digest = (t: string): string => `'sha256-${createHash('sha256').update(t).digest('base64')}'`;
  assert.ok(csp.includes(`script-src ${digest(script)}`), csp);
  assert.ok(csp.includes(`style-src ${digest(style)}`), csp);
  assert.match(csp, /default-src 'none'/);

  const json = await (await fetch(`${adminUrl}/status.json`)).text();
  assert.ok(!json.includes('<script>'), 'JSON escapes < as \\u003c');
  const parsed = JSON.parse(json) as StatusJson;
  assert.equal(parsed.status!.recent[0]!.filename, '<script>alert("x")</script>&\uFFFD.php');
});

test('upload-guard serve: the built CLI serves the admin listener and stops on SIGTERM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ug-admin-cli-'));
  const file = join(dir, 'guard.yaml');
  const adminPort = await closedPort();
  writeFileSync(file, `listen: 127.0.0.1:0\nadmin: { listen: 127.0.0.1:${adminPort} }\nupstream: { url: "${upstream.url}" }\nroutes: [{ name: upload, path: /upload, methods: [POST], policy: images }]\npolicies: { images: { allow: [png] } }\n`);
  const child = spawn(process.execPath, ['dist/cli.js', 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('"msg":"admin listening"')) resolve();
      });
      void exited.then((code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
    });
    const base = `http://127.0.0.1:${adminPort}`;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.match(text, /^upload_guard_rate_limited_total\{route="upload",scope="ip"\} 0$/m);
    assert.match(text, /^upload_guard_config_reloads_total\{result="failure"\} 0$/m);
    assert.match(await (await fetch(`${base}/`)).text(), /<title>upload-guard status<\/title>/);
  } finally {
    child.kill('SIGTERM');
  }
  assert.equal(await exited, 0, stderr);
});
