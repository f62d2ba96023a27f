// End to end, as deployed with nginx: client -> real nginx (Debian nginx-light, the shipped
// nginx/upload-guard-plain.conf and upload-guard.conf with their real snippets) -> upload-guard
// (`node dist/cli.js serve`) -> the seed's Flask uploader. nginx runs from a temp prefix on free
// loopback ports (`nginx -p DIR -c DIR/nginx.conf -g 'daemon off;'`); the top-level conf files
// are used with only their ports, upstream port, uploads folder and certificate paths replaced,
// and the snippets are the repository's own files (DIR/snippets -> nginx/snippets).

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { freePort } from '../helpers/net.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startFlaskUploader, type FlaskUploader } from '../helpers/flask-app.ts';
import { startGuardCli, type GuardCli } from '../helpers/guard-cli.ts';
import { buildMultipart } from '../helpers/multipart-builder.ts';
import { rawRequest, type RawResponse } from '../helpers/raw-http.ts';
import { gifBytes, pngBytes } from '../helpers/samples.ts';

const NGINX = '/usr/sbin/nginx';
const OPENSSL = '/usr/bin/openssl';
const NGINX_DIR = fileURLToPath(new URL('../../nginx/', import.meta.url));
const MiB = 1024 * 1024;

const uploads = mkdtempSync(join(tmpdir(), 'ug-nginx-uploads-'));
const scratch = mkdtempSync(join(tmpdir(), 'ug-nginx-'));
let flask: FlaskUploader;
let guard: GuardCli;
let plain: Nginx;
let tls: Nginx;
let tlsCert: Buffer;

// ---------------------------------------------------------------------------------------------
// nginx from a temp prefix

interface Nginx {
  ports: Record<string, number>;
  stop(): Promise<void>;
  log(): string;
}


function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** `text` with every `from` replaced; each must occur (so a changed shipped file fails loudly). */
function substitute(text: string, replacements: Array<[string, string]>, file: string): string {
  let out = text;
  for (const [from, to] of replacements) {
    assert.ok(out.includes(from), `${file} no longer contains ${JSON.stringify(from)}: update this test`);
    out = out.split(from).join(to);
  }
  return out;
}

async function startNginx(name: string, site: string, ports: Record<string, number>): Promise<Nginx> {
  // No skip: without nginx the deployment is untested (CI installs nginx-light).
  assert.ok(existsSync(NGINX), `${NGINX} missing: apt-get install nginx-light (or run .ci/run)`);
  const prefix = join(scratch, name);
  mkdirSync(prefix);
  symlinkSync(join(NGINX_DIR, 'snippets'), join(prefix, 'snippets'), 'dir');
  writeFileSync(join(prefix, 'site.conf'), site);
  const asRoot = process.getuid?.() === 0;
  writeFileSync(
    join(prefix, 'nginx.conf'),
    `${asRoot ? 'user nobody nogroup;\n' : ''}worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log notice;
events { worker_connections 1024; }
http {
    access_log ${prefix}/access.log;
    client_body_temp_path ${prefix}/client_body;
    proxy_temp_path ${prefix}/proxy;
    fastcgi_temp_path ${prefix}/fastcgi;
    uwsgi_temp_path ${prefix}/uwsgi;
    scgi_temp_path ${prefix}/scgi;
    # as Debian's /etc/nginx/nginx.conf: the uploads location must override these types
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    include site.conf;
}
`,
  );
  const log = (): string => (existsSync(join(prefix, 'error.log')) ? readFileSync(join(prefix, 'error.log'), 'utf8') : '');
  const check = spawnSync(NGINX, ['-t', '-p', prefix, '-c', join(prefix, 'nginx.conf')], { encoding: 'utf8' });
  assert.equal(check.status, 0, `nginx -t: ${check.stderr}`);
  const child: ChildProcess = spawn(NGINX, ['-p', prefix, '-c', join(prefix, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): ${stderr}\n${log()}`);
    if ((await Promise.all(Object.values(ports).map(canConnect))).every(Boolean)) break;
    if (i > 300) throw new Error(`nginx did not listen on ${JSON.stringify(ports)} within 30 s: ${stderr}\n${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    ports,
    log,
    async stop() {
      process.removeListener('exit', killOnExit);
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// requests

function uploadRequest(file: { name: string; data: Buffer; type?: string }, extraHeaders: string[] = [], path = '/upload'): Buffer {
  const { body, contentType } = buildMultipart([{ name: 'file', filename: file.name, contentType: file.type ?? 'application/octet-stream', data: file.data }]);
  const head = [`POST ${path} HTTP/1.1`, 'Host: uploads.example.com', `Content-Type: ${contentType}`, `Content-Length: ${body.length}`, 'Connection: close', ...extraHeaders, '', ''].join('\r\n');
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

function get(path: string, extraHeaders: string[] = [], method = 'GET'): Buffer {
  return Buffer.from([`${method} ${path} HTTP/1.1`, 'Host: uploads.example.com', 'Connection: close', ...extraHeaders, '', ''].join('\r\n'), 'latin1');
}

const json = (res: RawResponse): Record<string, unknown> => JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
const stored = (folder: string): string[] => (existsSync(join(uploads, folder)) ? readdirSync(join(uploads, folder)).sort() : []);

// ---------------------------------------------------------------------------------------------

before(async () => {
  // Flask (root here) writes files nginx's workers (nobody) must read: the usual 022 umask.
  process.umask(0o022);
  chmodSync(uploads, 0o755);
  chmodSync(scratch, 0o755);
  flask = await startFlaskUploader({ uploadDir: uploads, env: { MAX_CONTENT_LENGTH: String(52 * MiB) } });

  const spool = join(scratch, 'spool');
  const configPath = join(scratch, 'guard.yaml');
  writeFileSync(
    configPath,
    `listen: 127.0.0.1:0
admin: false
upstream: { url: "${flask.url}" }
trustProxy: [127.0.0.1/32]            # nginx, and only nginx
routes: [{ name: upload, path: /upload, methods: [POST], policy: images }]
policies:
  images: { allow: [png, jpg, jpeg, gif, mp4, mov], maxFileSize: 50MiB, maxRequestSize: 50MiB, spoolDir: "${spool}" }
`,
  );
  guard = await startGuardCli({ args: ['serve', '--config', configPath] });

  // Plain :80 variant.
  const plainPort = await freePort();
  const plainFile = join(NGINX_DIR, 'upload-guard-plain.conf');
  const plainSite = substitute(
    readFileSync(plainFile, 'utf8'),
    [
      ['listen 80;', `listen 127.0.0.1:${plainPort};`],
      ['listen [::]:80;', ''],
      ['server 127.0.0.1:8080;', `server 127.0.0.1:${guard.port};`],
      ['set $upload_guard_uploads /srv/uploader/uploads;', `set $upload_guard_uploads ${uploads};`],
    ],
    plainFile,
  );
  plain = await startNginx('nginx-plain', plainSite, { http: plainPort });

  // TLS variant with a throw-away self-signed certificate.
  assert.ok(existsSync(OPENSSL), `${OPENSSL} missing: apt-get install openssl`);
  const certDir = join(scratch, 'certs');
  mkdirSync(certDir);
  const made = spawnSync(
    OPENSSL,
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(certDir, 'privkey.pem'), '-out', join(certDir, 'fullchain.pem')],
    { encoding: 'utf8' },
  );
  assert.equal(made.status, 0, made.stderr);
  chmodSync(certDir, 0o755);
  tlsCert = readFileSync(join(certDir, 'fullchain.pem'));
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  const tlsFile = join(NGINX_DIR, 'upload-guard.conf');
  const tlsSite = substitute(
    readFileSync(tlsFile, 'utf8'),
    [
      ['listen 80;', `listen 127.0.0.1:${httpPort};`],
      ['listen [::]:80;', ''],
      ['listen 443 ssl http2;', `listen 127.0.0.1:${httpsPort} ssl http2;`],
      ['listen [::]:443 ssl http2;', ''],
      ['/etc/ssl/upload-guard/fullchain.pem', join(certDir, 'fullchain.pem')],
      ['/etc/ssl/upload-guard/privkey.pem', join(certDir, 'privkey.pem')],
      ['server 127.0.0.1:8080;', `server 127.0.0.1:${guard.port};`],
      ['set $upload_guard_uploads /srv/uploader/uploads;', `set $upload_guard_uploads ${uploads};`],
    ],
    tlsFile,
  );
  tls = await startNginx('nginx-tls', tlsSite, { http: httpPort, https: httpsPort });
});

after(async () => {
  await plain?.stop();
  await tls?.stop();
  await guard?.stop();
  await flask?.stop();
  rmSync(scratch, { recursive: true, force: true });
  rmSync(uploads, { recursive: true, force: true });
});

test('a PNG uploaded through nginx lands under its secure name and comes back as a download', async () => {
  const png = pngBytes(3000);
  const res = await rawRequest(plain.ports.http!, uploadRequest({ name: '../../My holiday.png', data: png, type: 'image/png' }), { timeoutMs: 30_000 });
  assert.equal(res.status, 200, res.body.toString());
  assert.equal(json(res).filename, 'My_holiday.png');
  assert.deepEqual(readFileSync(join(uploads, 'images', 'My_holiday.png')), png);

  const back = await rawRequest(plain.ports.http!, get('/uploads/images/My_holiday.png'));
  assert.equal(back.status, 200);
  assert.deepEqual(back.body, png);
  assert.equal(back.headers['content-type'], 'application/octet-stream');
  assert.equal(back.headers['content-disposition'], 'attachment');
  assert.equal(back.headers['x-content-type-options'], 'nosniff');
});

test('refused uploads never land', async () => {
  const before = stored('images');
  for (const [name, data, type, code] of [
    ['shell.php', Buffer.from('<?php system($_GET["c"]); ?>'), 'image/png', 'EXTENSION_NOT_ALLOWED'],
    ['cat.png.php', Buffer.from('<?php echo 1; ?>'), 'image/png', 'EXTENSION_NOT_ALLOWED'],
    ['page.html', Buffer.from('<script>alert(1)</script>'), 'text/html', 'EXTENSION_NOT_ALLOWED'],
    ['avatar.gif', Buffer.concat([gifBytes(), Buffer.from('<?php system($_GET["c"]); ?>')]), 'image/gif', 'CONTENT_MISMATCH'],
  ] as const) {
    const res = await rawRequest(plain.ports.http!, uploadRequest({ name, data, type }), { timeoutMs: 30_000 });
    assert.equal(res.status, 400, `${name}: ${res.body.toString()}`);
    assert.equal(json(res).code, code, name);
  }
  assert.deepEqual(stored('images'), before);
  assert.deepEqual(stored('files'), []);
  const everything = readdirSync(uploads, { recursive: true }).map(String);
  assert.ok(!everything.some((f) => /\.(php|html)$/.test(f) || /avatar/.test(f)), everything.join(', '));
});

test('a .php or .html put straight into the uploads folder is only ever a download', async () => {
  const files: Record<string, Buffer> = {
    'images/shell.php': Buffer.from('<?php system($_GET["c"]); echo "executed"; ?>\n'),
    'images/evil.phtml': Buffer.from('<?= "executed" ?>\n'),
    'files/page.html': Buffer.from('<!doctype html><script>document.title="rendered"</script>\n'),
    'files/vector.svg': Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>\n'),
    'run.sh': Buffer.from('#!/bin/sh\necho executed\n'),
  };
  for (const [path, bytes] of Object.entries(files)) {
    mkdirSync(join(uploads, path, '..'), { recursive: true, mode: 0o755 });
    writeFileSync(join(uploads, path), bytes, { mode: 0o644 });
  }
  for (const [path, bytes] of Object.entries(files)) {
    for (const suffix of ['', '?c=id', '/']) {
      const res = await rawRequest(plain.ports.http!, get(`/uploads/${path}${suffix}`));
      if (suffix === '/') {
        assert.notEqual(res.status, 200, `${path}/ (PATH_INFO-style) must not be served`);
        continue;
      }
      assert.equal(res.status, 200, `${path}${suffix}`);
      assert.deepEqual(res.body, bytes, `${path}: the raw source, never its output`);
      assert.equal(res.headers['content-type'], 'application/octet-stream', path);
      assert.equal(res.headers['content-disposition'], 'attachment', path);
      assert.equal(res.headers['x-content-type-options'], 'nosniff', path);
      assert.match(res.headers['content-security-policy'] ?? '', /sandbox/, path);
    }
  }
  // Only GET/HEAD; no listings, no dotfiles, no way out of the folder.
  writeFileSync(join(uploads, '.htaccess'), 'php_flag engine on\n', { mode: 0o644 });
  assert.equal((await rawRequest(plain.ports.http!, get('/uploads/images/shell.php', [], 'HEAD'))).status, 200);
  const post = await rawRequest(plain.ports.http!, Buffer.concat([get('/uploads/images/shell.php', ['Content-Length: 2'], 'POST'), Buffer.from('{}')]));
  assert.equal(post.status, 403);
  assert.equal((await rawRequest(plain.ports.http!, get('/uploads/.htaccess'))).status, 403);
  assert.equal((await rawRequest(plain.ports.http!, get('/uploads/images/'))).status, 403);
  for (const path of ['/uploads/../../../../etc/passwd', '/uploads/..%2f..%2f..%2f..%2fetc%2fpasswd', '/uploads../etc/passwd', '/uploads/%2e%2e/%2e%2e/etc/passwd']) {
    const res = await rawRequest(plain.ports.http!, get(path));
    assert.ok(!res.body.toString('latin1').includes('root:x:0:0'), `${path} escaped the uploads folder`);
  }
});

test('the guard sees the real client through X-Forwarded-For, and no spoofed one', async () => {
  // The client connects from 127.0.0.2; nginx reaches the guard from 127.0.0.1 (trustProxy).
  const probe = `/nginx-xff-probe-${process.pid}-${Date.now()}`;
  const res = await rawRequest(plain.ports.http!, get(probe, ['X-Forwarded-For: 203.0.113.9', 'X-Real-IP: 203.0.113.9']), { localAddress: '127.0.0.2' });
  assert.equal(res.status, 404, 'passthrough to Flask');
  const line = await guard.waitForLog((l) => l.path === probe);
  assert.equal(line.ip, '127.0.0.2', JSON.stringify(line));
  assert.match(String(line.id), /^[0-9a-f]{32}$/, "the guard logs under nginx's $request_id");

  const up = await rawRequest(plain.ports.http!, uploadRequest({ name: 'from-two.png', data: pngBytes() }, ['X-Forwarded-For: 198.51.100.1']), { localAddress: '127.0.0.2', timeoutMs: 30_000 });
  assert.equal(up.status, 200, up.body.toString());
  const upLine = await guard.waitForLog((l) => l.route === 'upload' && l.ip === '127.0.0.2' && l.outcome === 'forwarded');
  assert.equal(upLine.status, 200);
  assert.ok(!guard.logs().some((l) => l.ip === '203.0.113.9' || l.ip === '198.51.100.1'), 'a client-sent X-Forwarded-For is never believed');
});

test("sizes line up: just over 50 MiB gets the guard's JSON 413, far over nginx's", async () => {
  const head = (length: number): Buffer =>
    Buffer.from(['POST /upload HTTP/1.1', 'Host: uploads.example.com', 'Content-Type: multipart/form-data; boundary=xyz', `Content-Length: ${length}`, '', ''].join('\r\n'), 'latin1');
  // 50.5 MiB: under nginx's 51m, over the guard's maxRequestSize, refused by Content-Length.
  const guardSized = await rawRequest(plain.ports.http!, head(50 * MiB + MiB / 2), { timeoutMs: 30_000 });
  assert.equal(guardSized.status, 413, guardSized.raw.toString('latin1').slice(0, 500));
  assert.equal(json(guardSized).code, 'REQUEST_TOO_LARGE');
  // 60 MiB: nginx refuses it itself before the guard is involved.
  const nginxSized = await rawRequest(plain.ports.http!, head(60 * MiB), { timeoutMs: 30_000 });
  assert.equal(nginxSized.status, 413);
  assert.match(nginxSized.headers['content-type'] ?? '', /text\/html/);
});

test('the outer limit_req zone sheds a flood of POSTs from one address; GETs are not counted', async () => {
  const flood = await Promise.all(
    Array.from({ length: 80 }, () => rawRequest(plain.ports.http!, Buffer.concat([get('/flood', ['Content-Length: 2'], 'POST'), Buffer.from('{}')]), { localAddress: '127.0.0.3', timeoutMs: 60_000 })),
  );
  const statuses = flood.map((r) => r.status);
  assert.ok(statuses.includes(429), `no 429 among ${statuses.join(',')}`);
  assert.ok(statuses.every((s) => s === 429 || s === 404 || s === 405), statuses.join(','));
  // Downloads from another address, 30 at once: none limited.
  const reads = await Promise.all(Array.from({ length: 30 }, () => rawRequest(plain.ports.http!, get('/uploads/images/My_holiday.png'), { localAddress: '127.0.0.4', timeoutMs: 60_000 })));
  assert.deepEqual([...new Set(reads.map((r) => r.status))], [200]);
});

test('the TLS server: plain HTTP is redirected with 308, an upload over HTTPS lands', async () => {
  const redirect = await rawRequest(tls.ports.http!, get('/upload?x=1'));
  assert.equal(redirect.status, 308);
  assert.match(redirect.headers.location ?? '', /^https:\/\/[^/]+\/upload\?x=1$/);

  const png = pngBytes(100);
  const res = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const { body, contentType } = buildMultipart([{ name: 'file', filename: 'over tls.png', contentType: 'image/png', data: png }]);
    const req = httpsRequest(
      { host: '127.0.0.1', port: tls.ports.https, path: '/upload', method: 'POST', ca: tlsCert, headers: { 'content-type': contentType, 'content-length': body.length } },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (c: string) => (text += c));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }));
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('HTTPS upload timed out')));
    req.once('error', reject);
    req.end(body);
  });
  assert.equal(res.status, 200, res.body);
  assert.equal((JSON.parse(res.body) as { filename: string }).filename, 'over_tls.png');
  assert.match(String(res.headers['strict-transport-security']), /max-age=\d+/);
  assert.deepEqual(readFileSync(join(uploads, 'images', 'over_tls.png')), png);
});
