// The things the bench uploads through: the sink itself ("direct"), the plain undici pipe, nginx,
// and the guard in spool and stream mode, with one process or several (config `workers`). Each
// start function returns { port, child } where child is the measured proxy process (null for
// direct; a cluster primary whose workers are its children), after writing the config it needs.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startChild, waitForOutput, waitForPort } from './processes.mjs';
// The V8 heap settings the guard is started with everywhere (npm start, the container, systemd);
// the plain pipe gets them too, so both Node proxies run with the same runtime settings.
import { HEAP_FLAGS } from '../../dist/lifecycle/heap-flags.js';

export { HEAP_FLAGS };

export const PROJECT = fileURLToPath(new URL('../..', import.meta.url));
const BENCH = join(PROJECT, 'bench');
const GUARD_CLI = join(PROJECT, 'dist', 'cli.js');
export const NGINX = '/usr/sbin/nginx';

/** The sink, with an IPC channel for its counters. */
export async function startSink() {
  const port = await freePort();
  const child = startChild('sink', process.execPath, [join(BENCH, 'sink-server.mjs'), String(port)], { ipc: true });
  await waitForPort(port, child);
  // One question at a time, so the next 'message' is the answer.
  const ask = (message) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`sink did not answer ${message}`)), 5_000);
      child.proc.once('message', (reply) => {
        clearTimeout(timer);
        resolve(reply.stats);
      });
      child.proc.send(message);
    });
  return { port, child, stats: () => ask('stats'), reset: () => ask('reset') };
}

/**
 * glibc malloc settings for the "plain pipe (malloc tuned)" target: no heap trimming below 64 MiB,
 * allocations up to 4 MiB from the heap. After the bench's load the bare plain pipe loses a third
 * of its big-upload speed to glibc trimming and regrowing its heap around the 64 KiB socket buffers
 * (strace: 3.7x the brk calls); tuned, it keeps its fresh speed. The guard gains little from it
 * (its 1 MiB batches already move glibc's dynamic thresholds), so this target shows what the
 * guard's checks cost against a plain pipe that does not suffer that (bench/README.md).
 */
export const TUNED_MALLOC_ENV = { GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=67108864:glibc.malloc.mmap_threshold=4194304' };

export async function startPlainPipe(sinkPort, { tunedMalloc = false } = {}) {
  const port = await freePort();
  const name = tunedMalloc ? 'plain pipe (malloc tuned)' : 'plain pipe';
  const child = startChild(name, process.execPath, [...HEAP_FLAGS, join(BENCH, 'plain-proxy.mjs'), String(port), String(sinkPort)], { ipc: true, env: tunedMalloc ? TUNED_MALLOC_ENV : undefined });
  await waitForPort(port, child);
  return { port, child };
}

/** The guard's YAML: one upload route, PNG only, limits high enough for the big upload. */
function guardConfig({ port, sinkPort, mode, workers, spoolDir }) {
  return [
    `listen: 127.0.0.1:${port}`,
    'admin: false',
    `workers: ${workers}`,
    `upstream: { url: "http://127.0.0.1:${sinkPort}" }`,
    'routes:',
    '  - { name: upload, path: /upload, methods: [POST], policy: bench }',
    'policies:',
    '  bench:',
    '    allow: [png]',
    '    verifyContent: true',
    '    maxFileSize: 2GiB',
    '    maxRequestSize: 2GiB',
    `    mode: ${mode}`,
    `    spoolDir: ${JSON.stringify(spoolDir)}`,
    '',
  ].join('\n');
}

/** The guard in `mode` with `workers` processes (config key `workers`, node:cluster when > 1). */
export async function startGuard({ mode, workers = 1 }, sinkPort, tmp) {
  if (!existsSync(GUARD_CLI)) throw new Error(`${GUARD_CLI} is missing: run \`npm run build\` (npm run bench does)`);
  const port = await freePort();
  const id = `${mode}-${workers}w`;
  const configPath = join(tmp, `guard-${id}.yaml`);
  writeFileSync(configPath, guardConfig({ port, sinkPort, mode, workers, spoolDir: join(tmp, `spool-${id}`) }));
  // check-config first: a schema mistake then reads as the guard's own file:line message.
  execFileSync(process.execPath, [GUARD_CLI, 'check-config', '--config', configPath], { cwd: PROJECT, stdio: 'pipe' });
  const child = startChild(`guard ${mode} (${workers} worker${workers > 1 ? 's' : ''})`, process.execPath, [...HEAP_FLAGS, GUARD_CLI, 'serve', '--config', configPath], { cwd: PROJECT });
  await waitForPort(port, child);
  // With workers the port opens as soon as the first worker listens; the primary logs "listening"
  // only once all of them do, and a measurement must not start on half the workers.
  if (workers > 1) await waitForOutput(child, /"msg":"listening"/);
  return { port, child };
}

/**
 * nginx as a streaming proxy: one worker in the foreground process (master_process off) so the
 * single pid we sample is the one doing the work; request buffering off so it streams like the
 * guard's stream mode instead of spooling to client_body_temp.
 */
function nginxConfig({ port, sinkPort, dir }) {
  return `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream sink {
    server 127.0.0.1:${sinkPort};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 2g;
    location / {
      proxy_pass http://sink;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_read_timeout 300s;
      proxy_send_timeout 300s;
    }
  }
}
`;
}

export async function startNginx(sinkPort, tmp) {
  const port = await freePort();
  const dir = join(tmp, 'nginx');
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, 'nginx.conf');
  writeFileSync(configPath, nginxConfig({ port, sinkPort, dir }));
  // -e: nginx opens its error log before reading the config; keep even that one in the temp dir.
  const child = startChild('nginx', NGINX, ['-p', dir, '-e', join(dir, 'error.log'), '-c', configPath]);
  await waitForPort(port, child);
  return { port, child };
}
