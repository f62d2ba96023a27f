// The Dockerfile without a Docker engine: its runtime stage replayed into a clean temp folder
// (the COPY lines from the build context, the prod-deps stage's `npm ci --omit=dev
// --ignore-scripts`, dist/ from `npm run build`), the folder made read-only like the image's
// root filesystem, and the guard started from it as an unprivileged user (nobody, via setpriv;
// the image runs as UID 10001) with the image's own config, ENV and ENTRYPOINT/CMD. Then one
// upload through it to a recording upstream, and the image's HEALTHCHECK command run as written.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { freePort } from '../helpers/net.ts';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startGuardCli, type GuardCli } from '../helpers/guard-cli.ts';
import { buildMultipart, parseMultipart } from '../helpers/multipart-builder.ts';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.ts';
import { pngBytes } from '../helpers/samples.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NOBODY = { uid: 65534, gid: 65534 };
const asRoot = process.getuid?.() === 0;

// ---------------------------------------------------------------------------------------------
// A small Dockerfile reader: instructions per stage, line continuations joined, ARG defaults
// substituted into FROM.

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name: string | null;
  steps: Instruction[];
}

function readDockerfile(text: string): { stages: Stage[]; globalArgs: Record<string, string> } {
  const logical: string[] = [];
  let current = '';
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line)) continue; // comments, also inside a continuation
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    if (current.trim() !== '') logical.push(current.trim());
    current = '';
  }
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of logical) {
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const op = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (op === 'ARG' && stages.length === 0) {
      const [name, value] = args.split('=', 2) as [string, string | undefined];
      globalArgs[name] = value ?? '';
    } else if (op === 'FROM') {
      const fm = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!;
      const from = fm[1]!.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a?: string, b?: string) => globalArgs[(a ?? b)!] ?? '');
      stages.push({ from, name: fm[2] ?? null, steps: [] });
    } else {
      assert.ok(stages.length > 0, `${op} before FROM`);
      stages.at(-1)!.steps.push({ op, args });
    }
  }
  return { stages, globalArgs };
}

const dockerfile = readDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const runtime = dockerfile.stages.at(-1)!;
const stage = (name: string): Stage => {
  const found = dockerfile.stages.find((s) => s.name === name);
  assert.ok(found, `Dockerfile has no stage ${name}`);
  return found;
};
const stepsOf = (s: Stage, op: string): string[] => s.steps.filter((i) => i.op === op).map((i) => i.args);
const execForm = (args: string): string[] => {
  const parsed: unknown = JSON.parse(args);
  assert.ok(Array.isArray(parsed) && parsed.every((a) => typeof a === 'string'), `exec form expected: ${args}`);
  return parsed as string[];
};
/** ENV lines of a stage, both `K=V K2=V2` and `K V` forms. */
function envOf(s: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const args of stepsOf(s, 'ENV')) {
    if (/^\w+=/.test(args)) for (const m of args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
    else {
      const [k, ...v] = args.split(/\s+/);
      env[k!] = v.join(' ');
    }
  }
  return env;
}

// ---------------------------------------------------------------------------------------------


function replace(text: string, from: string, to: string, what: string): string {
  assert.ok(text.includes(from), `${what} no longer contains ${JSON.stringify(from)}: update this test`);
  return text.split(from).join(to);
}

const scratch = mkdtempSync(join(tmpdir(), 'ug-docker-'));
const app = join(scratch, 'app'); // the image's WORKDIR /app
const volume = join(scratch, 'volume'); // VOLUME /tmp/upload-guard
let workdir = '';
let upstream: RecordingUpstream;
let guard: GuardCli;
let healthcheck: string[] = [];

before(async () => {
  // The install runs as root, as `docker build` does; the service runs as nobody, as USER does.
  if (process.env.CI === 'true') assert.ok(asRoot, 'CI runs as root: the unprivileged run needs setpriv from root');
  chmodSync(scratch, 0o755);
  workdir = stepsOf(runtime, 'WORKDIR').at(-1) ?? '/';
  const toHost = (path: string): string => (path.startsWith(workdir) ? join(app, path.slice(workdir.length)) : path);
  mkdirSync(app);

  // prod-deps stage: its COPY lines, then its `npm ci --omit=dev --ignore-scripts`.
  const deps = stage('prod-deps');
  const depsDir = join(scratch, 'prod-deps');
  mkdirSync(depsDir);
  for (const copy of stepsOf(deps, 'COPY')) {
    const parts = copy.split(/\s+/);
    for (const source of parts.slice(0, -1)) cpSync(join(ROOT, source), join(depsDir, source), { recursive: true });
  }
  const install = stepsOf(deps, 'RUN').find((r) => r.includes('npm ci'));
  assert.ok(install, 'the prod-deps stage runs npm ci');
  const npmCi = /npm ci[^&;]*/.exec(install)![0].trim().split(/\s+/);
  assert.ok(npmCi.includes('--omit=dev') && npmCi.includes('--ignore-scripts'), install);
  const npm = spawnSync('npm', [...npmCi.slice(1), '--prefer-offline'], { cwd: depsDir, encoding: 'utf8', timeout: 300_000, env: { ...process.env, npm_config_update_notifier: 'false' } });
  assert.equal(npm.status, 0, `npm ${npmCi.slice(1).join(' ')}: ${npm.stdout}${npm.stderr}`);

  // runtime stage: COPY from the context, from the builder (dist/, built by `npm run build`) and
  // from prod-deps; RUN mkdir of the spool dir -> the volume folder, owned by the service user.
  for (const copy of stepsOf(runtime, 'COPY')) {
    const parts = copy.split(/\s+/);
    const fromFlag = parts[0]!.startsWith('--from=') ? parts.shift()!.slice('--from='.length) : null;
    const dest = parts.pop()!;
    for (const source of parts) {
      let hostSource: string;
      if (fromFlag === null) hostSource = join(ROOT, source);
      else if (fromFlag === 'prod-deps') hostSource = join(depsDir, posix.relative(stepsOf(deps, 'WORKDIR').at(-1)!, source));
      else if (fromFlag === 'builder') hostSource = join(ROOT, posix.relative(stepsOf(stage('builder'), 'WORKDIR').at(-1)!, source));
      else throw new Error(`COPY --from=${fromFlag}: unknown stage`);
      assert.ok(existsSync(hostSource), `COPY ${copy}: ${hostSource} missing${fromFlag === 'builder' ? ' (npm run build first)' : ''}`);
      const target = dest.endsWith('/') && !statSync(hostSource).isDirectory() ? join(toHost(posix.resolve(workdir, dest)), posix.basename(source)) : toHost(posix.resolve(workdir, dest));
      mkdirSync(dirname(target), { recursive: true });
      cpSync(hostSource, target, { recursive: true, verbatimSymlinks: true }) // as COPY: links kept as they are;
    }
  }
  // The image's root filesystem is read-only to the service: owned by root, no write bits.
  spawnSync('chmod', ['-R', 'a-w,a+rX', app]);
  mkdirSync(volume, { mode: 0o700 });
  if (asRoot) chownSync(volume, NOBODY.uid, NOBODY.gid);

  upstream = await startRecordingUpstream();
  // The image's own config, with what `docker run -p/-v/-e` would change: free loopback ports
  // instead of 8080/9090, the volume's host path; passed the image's way (UPLOAD_GUARD_CONFIG).
  const env = envOf(runtime);
  const imageConfig = toHost(env.UPLOAD_GUARD_CONFIG!);
  const [port, adminPort] = [await freePort(), await freePort()];
  let config = readFileSync(imageConfig, 'utf8');
  config = replace(config, 'listen: 0.0.0.0:8080', `listen: 127.0.0.1:${port}`, imageConfig);
  config = replace(config, 'listen: 0.0.0.0:9090', `listen: 127.0.0.1:${adminPort}`, imageConfig);
  config = replace(config, 'spoolDir: /tmp/upload-guard', `spoolDir: ${volume}`, imageConfig);
  // Make sure spooling really goes to the volume (a file, not memory).
  config = replace(config, '    mode: spool\n', '    mode: spool\n    spoolMemoryThreshold: 64KiB\n', imageConfig);
  const mounted = join(scratch, 'mounted-config.yaml');
  writeFileSync(mounted, config, { mode: 0o644 });

  const entrypoint = execForm(stepsOf(runtime, 'ENTRYPOINT').at(-1)!);
  const cmd = execForm(stepsOf(runtime, 'CMD').at(-1)!);
  assert.equal(entrypoint[0], 'node');
  // node [flags...] /app/dist/cli.js
  const script = entrypoint.findIndex((arg, i) => i > 0 && !arg.startsWith('-'));
  assert.ok(script > 0, `no script in ENTRYPOINT ${JSON.stringify(entrypoint)}`);
  healthcheck = execForm(stepsOf(runtime, 'HEALTHCHECK').at(-1)!.replace(/^.*?CMD\s+/, '')).map((a) => a.replace(':9090/', `:${adminPort}/`));
  guard = await startGuardCli({
    cli: toHost(entrypoint[script]!),
    nodeFlags: entrypoint.slice(1, script),
    args: [...entrypoint.slice(script + 1), ...cmd],
    cwd: app,
    // a container's environment: the image's ENV, no HOME to write to
    env: { PATH: process.env.PATH, HOME: '/nonexistent', ...env, UPSTREAM_URL: upstream.url, UPLOAD_GUARD_CONFIG: mounted },
    ...(asRoot ? { user: NOBODY } : {}),
    admin: true,
  });
});

after(async () => {
  await guard?.stop();
  await upstream?.stop();
  spawnSync('chmod', ['-R', 'u+w', scratch]);
  rmSync(scratch, { recursive: true, force: true });
});

test('an upload goes through the guard started from the read-only install', async () => {
  if (asRoot) {
    const status = readFileSync(`/proc/${guard.child.pid}/status`, 'utf8');
    assert.match(status, new RegExp(`^Uid:\\s+${NOBODY.uid}\\s+${NOBODY.uid}\\s+${NOBODY.uid}`, 'm'), 'the guard runs as nobody');
    assert.match(status, /^Groups:\s*$/m, 'with no supplementary groups');
  }
  assert.deepEqual(guard.logs().filter((l) => String(l.msg).includes('heap flags')), [], 'the ENTRYPOINT gives node the heap flags');
  const png = pngBytes(256 * 1024); // over the 64 KiB threshold: spooled to a file on the volume
  const { body, contentType } = buildMultipart([{ name: 'file', filename: '../Holiday pic.png', contentType: 'image/png', data: png }]);
  const res = await fetch(`http://127.0.0.1:${guard.port}/upload`, { method: 'POST', headers: { 'content-type': contentType }, body });
  assert.equal(res.status, 200, await res.text());
  const [forwarded] = await upstream.waitForRequests(1, 30_000);
  const parts = parseMultipart(forwarded!.body!, String(forwarded!.headers['content-type']));
  assert.equal(parts.length, 1);
  assert.equal(parts[0]!.filename, 'Holiday_pic.png');
  assert.deepEqual(parts[0]!.data, png);
  // a refusal from the same install
  const bad = buildMultipart([{ name: 'file', filename: 'shell.php', data: '<?php echo 1; ?>' }]);
  const refused = await fetch(`http://127.0.0.1:${guard.port}/upload`, { method: 'POST', headers: { 'content-type': bad.contentType }, body: bad.body });
  assert.equal(refused.status, 400);
  assert.equal(((await refused.json()) as { code: string }).code, 'EXTENSION_NOT_ALLOWED');
  assert.equal(upstream.requests.length, 1);
  // spool files are unlinked at once: the volume is left empty
  assert.deepEqual(readdirSync(volume), []);
});

test('/healthz answers on the admin port, and the image HEALTHCHECK command passes', async () => {
  assert.ok(guard.adminPort, 'the image config enables the admin listener');
  const res = await fetch(`http://127.0.0.1:${guard.adminPort}/healthz`);
  assert.equal(res.status, 200);
  assert.equal(healthcheck[0], 'node', 'HEALTHCHECK uses node (no curl in the image)');
  const run = spawnSync(process.execPath, healthcheck.slice(1), { encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 0, `HEALTHCHECK ${healthcheck.join(' ')}: ${run.stderr}`);
});

test('the install holds production dependencies only, and none needs an install script', () => {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; hasInstallScript?: boolean; optional?: boolean }> };
  const prodWithScripts = Object.entries(lock.packages).filter(([path, p]) => path !== '' && !p.dev && p.hasInstallScript);
  assert.deepEqual(prodWithScripts.map(([path]) => path), [], '--ignore-scripts would break these');
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  for (const name of Object.keys(pkg.dependencies)) assert.ok(existsSync(join(app, 'node_modules', name)), `${name} installed`);
  for (const name of Object.keys(pkg.devDependencies)) assert.ok(!existsSync(join(app, 'node_modules', name)), `dev dependency ${name} not installed`);
  assert.ok(!existsSync(join(app, 'src')), 'no TypeScript sources in the runtime image');
});

test('the service user cannot write to the install', () => {
  if (!asRoot) return; // as a non-root developer the install is already not root's
  const probe = spawnSync('/usr/bin/setpriv', [`--reuid=${NOBODY.uid}`, `--regid=${NOBODY.gid}`, '--clear-groups', '--', process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(join(app, 'dist', 'x'))}, 'x')`], { encoding: 'utf8' });
  assert.notEqual(probe.status, 0, 'nobody could write into dist/');
  assert.match(probe.stderr, /EACCES/);
});

test('the Dockerfile: node:24 images, a non-root numeric USER, HEALTHCHECK, ports, volume', () => {
  for (const s of dockerfile.stages) assert.match(s.from, /^node:24([.-]|$)/, `FROM ${s.from}`);
  const user = stepsOf(runtime, 'USER').at(-1);
  assert.ok(user, 'USER set in the runtime stage');
  const [uid, gid] = user.split(':').map(Number);
  assert.ok(Number.isInteger(uid) && uid! > 0, `USER ${user}: numeric, not root`);
  assert.ok(gid === undefined || (Number.isInteger(gid) && gid > 0), `USER ${user}`);
  assert.ok(stepsOf(runtime, 'HEALTHCHECK').at(-1)?.includes('/healthz'));
  assert.deepEqual(stepsOf(runtime, 'EXPOSE').join(' ').split(/\s+/).sort(), ['8080', '9090']);
  assert.deepEqual(stepsOf(runtime, 'VOLUME').map((v) => execForm(v)).flat(), ['/tmp/upload-guard']);
  // Every file the build context must provide is let through .dockerignore.
  const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  assert.equal(ignore[0], '*', '.dockerignore starts from nothing');
  for (const s of dockerfile.stages) {
    for (const copy of stepsOf(s, 'COPY').filter((c) => !c.startsWith('--from='))) {
      for (const source of copy.split(/\s+/).slice(0, -1)) {
        const allowed = ignore.some((p) => p.startsWith('!') && (source === p.slice(1).replace(/\/$/, '') || source.startsWith(p.slice(1))));
        assert.ok(allowed, `COPY ${source} is excluded by .dockerignore`);
      }
    }
  }
});
