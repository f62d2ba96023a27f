// End to end: a real Prometheus (Debian package `prometheus`) scrapes the admin port of the built
// CLI (`upload-guard serve`) while traffic goes through it; then every query of the Grafana
// dashboard and every alert rule is run through Prometheus' HTTP API, and promtool checks and
// unit-tests the rules. Without the binary the test fails under CI=true (CI installs it) and is
// skipped elsewhere.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { freePort } from '../helpers/net.ts';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { buildMultipart } from '../helpers/multipart-builder.ts';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.ts';
import { pngBytes } from '../helpers/samples.ts';

const PROMETHEUS = '/usr/bin/prometheus';
const PROMTOOL = '/usr/bin/promtool';
const DASHBOARD = 'deploy/grafana/upload-guard.json';
const ALERTS = 'deploy/prometheus/alerts.yaml';
const installed = existsSync(PROMETHEUS) && existsSync(PROMTOOL);
const skip = !installed && process.env.CI !== 'true' ? `${PROMETHEUS} not installed (apt-get install prometheus)` : false;

/**
 * Dashboard queries that may legitimately return no data with this test's traffic, and why
 * (none today: the traffic below reaches every panel). Everything else must return data.
 */
const VALIDITY_ONLY: ReadonlyMap<RegExp, string> = new Map<RegExp, string>([]);

interface Target {
  panel: string;
  expr: string;
}
interface QueryResult {
  status: string;
  error?: string;
  data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

const dir = mkdtempSync(join(tmpdir(), 'ug-prometheus-'));
let upstream: RecordingUpstream;
let guard: ChildProcess | undefined;
let prometheus: ChildProcess | undefined;
let guardUrl = '';
let promUrl = '';
let prometheusLog = '';
let sent = 0;

/** A TCP port that nothing listens on (bound, then released). */

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, attempt: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await attempt();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}\nprometheus log:\n${prometheusLog.slice(-3000)}`);
    await delay(500);
  }
}

async function query(expr: string): Promise<QueryResult> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  return (await res.json()) as QueryResult;
}

function dashboardTargets(): Target[] {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ title: string; panels?: unknown[]; targets?: Array<{ expr?: string }> }> };
  const out: Target[] = [];
  const walk = (panels: typeof dashboard.panels): void => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) if (target.expr) out.push({ panel: panel.title, expr: target.expr });
      walk((panel.panels ?? []) as typeof dashboard.panels);
    }
  };
  walk(dashboard.panels);
  return out;
}

/** Grafana's template variables as an "All" selection over a 1 s scrape interval would expand them. */
function substitute(expr: string): string {
  const out = expr
    .replaceAll('${route}', '.*')
    .replaceAll('$route', '.*')
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '15s')
    .replaceAll('$__range', '5m');
  assert.doesNotMatch(out, /\$/, `unsubstituted variable in ${expr}`);
  return out;
}

function alertRules(): Array<{ name: string; expr: string }> {
  const doc = parseYaml(readFileSync(ALERTS, 'utf8')) as { groups: Array<{ rules: Array<{ alert?: string; record?: string; expr: string }> }> };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ name: r.alert ?? r.record ?? '?', expr: String(r.expr) })));
}

async function upload(path: string, filename: string, data: Buffer | string, headers: Record<string, string> = {}): Promise<number> {
  const built = buildMultipart([{ name: 'file', filename, data }]);
  const res = await fetch(`${guardUrl}${path}`, { method: 'POST', body: built.body, headers: { 'content-type': built.contentType, ...headers } });
  await res.arrayBuffer();
  sent++;
  return res.status;
}

/** One round of everything the dashboard shows: accepted, refused, upstream failures, rate limits, passthrough. */
async function traffic(): Promise<void> {
  for (const size of [500, 20_000, 300_000, 2_000_000]) assert.equal(await upload('/upload', `cat-${size}.png`, pngBytes(size)), 200);
  assert.equal(await upload('/upload', 'shell.php', '<?php system($_GET[1]); ?>'), 400);
  assert.equal(await upload('/upload', 'avatar.png', 'GIF89a<?php system($_GET[1]); ?>'), 400);
  assert.equal(await upload('/upload', 'huge.png', pngBytes(5 * 1024 * 1024)), 413);
  assert.equal(await upload('/upload', 'cat.png', pngBytes(100), { 'x-test-upstream': 'destroy' }), 502);
  // reportOnly: forwarded anyway, counted in upload_guard_would_reject_total
  assert.equal(await upload('/shadow', 'shell.php', '<?php system($_GET[1]); ?>'), 200);
  const limited: number[] = [];
  for (let i = 0; i < 4; i++) limited.push(await upload('/limited', 'cat.png', pngBytes(100)));
  assert.ok(limited.includes(429), `the limited route answered ${limited.join(',')}`);
  for (const path of ['/', '/static/app.js', `/page/${Math.random()}`]) {
    const res = await fetch(`${guardUrl}${path}`);
    await res.arrayBuffer();
    sent++;
  }
}

before(async () => {
  if (skip) return;
  assert.ok(installed, `${PROMETHEUS} / ${PROMTOOL} missing: apt-get install prometheus (CI must install it)`);
  upstream = await startRecordingUpstream({ behaviour: (r) => (r.headers['x-test-upstream'] === 'destroy' ? { mode: 'destroy' } : {}) });

  const adminPort = await freePort();
  const configFile = join(dir, 'guard.yaml');
  writeFileSync(
    configFile,
    `listen: 127.0.0.1:0
admin: { listen: 127.0.0.1:${adminPort} }
upstream: { url: "${upstream.url}", timeout: 30s }
routes:
  - { name: upload, path: /upload, methods: [POST], policy: images }
  - { name: limited, path: /limited, methods: [POST], policy: limited }
  - { name: shadow, path: /shadow, methods: [POST], policy: shadow }
policies:
  shadow: { allow: [png], reportOnly: true }
  images: { allow: [png, jpg], maxFileSize: 4MiB, maxRequestSize: 8MiB }
  limited: { allow: [png], rateLimit: { rate: 1/min, burst: 2 } }
storage: { path: "${dir}", minFree: 1 }
`,
  );
  guard = spawn(process.execPath, ['dist/cli.js', 'serve', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let guardErr = '';
  guard.stderr!.on('data', (c: Buffer) => (guardErr += c.toString()));
  guardUrl = await new Promise<string>((resolvePort, reject) => {
    let out = '';
    let listen = '';
    guard!.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      listen ||= /"msg":"listening","listen":"([^"]+)"/.exec(out)?.[1] ?? '';
      if (listen && out.includes('"msg":"admin listening"')) resolvePort(`http://${listen}`);
    });
    guard!.once('exit', (code) => reject(new Error(`upload-guard serve exited ${code}: ${guardErr}`)));
  });

  const promPort = await freePort();
  const promConfig = join(dir, 'prometheus.yml');
  writeFileSync(
    promConfig,
    `global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: ["${resolve(ALERTS)}"]
scrape_configs:
  - job_name: upload-guard
    static_configs: [{ targets: ["127.0.0.1:${adminPort}"] }]
`,
  );
  prometheus = spawn(PROMETHEUS, [`--config.file=${promConfig}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  prometheus.stdout!.on('data', (c: Buffer) => (prometheusLog += c.toString()));
  prometheus.stderr!.on('data', (c: Buffer) => (prometheusLog += c.toString()));
  promUrl = `http://127.0.0.1:${promPort}`;
  await until('Prometheus ready', 90_000, async () => ((await fetch(`${promUrl}/-/ready`)).status === 200 ? true : undefined));
});

after(async () => {
  prometheus?.kill('SIGTERM');
  guard?.kill('SIGTERM');
  await upstream?.stop();
  await Promise.all(
    [prometheus, guard].map((child) => (child && child.exitCode === null && child.signalCode === null ? new Promise((r) => child.once('exit', r)) : undefined)),
  );
  rmSync(dir, { recursive: true, force: true });
});

test('the dashboard is importable: datasource and route variables, every panel on ${datasource}', { skip }, () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    uid: string;
    title: string;
    templating: { list: Array<{ name: string; type: string; query: unknown; includeAll?: boolean; allValue?: string }> };
    panels: Array<{ type: string; title: string; datasource?: { uid: string }; targets?: Array<{ datasource?: { uid: string } }> }>;
  };
  assert.equal(dashboard.uid, 'upload-guard');
  const [ds, route] = dashboard.templating.list;
  assert.equal(ds?.name, 'datasource');
  assert.equal(ds?.type, 'datasource');
  assert.equal(ds?.query, 'prometheus');
  assert.equal(route?.name, 'route');
  assert.equal(route?.includeAll, true);
  assert.equal(route?.allValue, '.*');
  const titles = dashboard.panels.map((p) => p.title);
  for (const wanted of ['Traffic by outcome', 'Rejections by code', 'Throughput', 'File sizes', 'Request latency', 'Upstream latency', 'Upstream errors', 'In-flight uploads', 'Rate limiting by scope', 'Config reloads']) {
    assert.ok(titles.includes(wanted), `panel ${wanted}`);
  }
  for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
    assert.equal(panel.datasource?.uid, '${datasource}', panel.title);
    for (const target of panel.targets ?? []) assert.equal(target.datasource?.uid, '${datasource}', panel.title);
  }
});

test('promtool: the alert rules are valid, their unit tests pass, the example config is valid', { skip }, () => {
  const check = spawnSync(PROMTOOL, ['check', 'rules', ALERTS], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  const unit = spawnSync(PROMTOOL, ['test', 'rules', 'alerts.test.yaml'], { encoding: 'utf8', cwd: 'deploy/prometheus' });
  assert.equal(unit.status, 0, unit.stdout + unit.stderr);
  const example = spawnSync(PROMTOOL, ['check', 'config', 'prometheus.example.yml'], { encoding: 'utf8', cwd: 'deploy/prometheus' });
  assert.equal(example.status, 0, example.stdout + example.stderr);
});

test('Prometheus scrapes the guard; every dashboard query returns data and every alert expression is valid', { skip, timeout: 300_000 }, async () => {
  await until('the first scrape', 60_000, async () => {
    const up = await query('up{job="upload-guard"}');
    return up.data?.result[0]?.value[1] === '1' ? true : undefined;
  });
  await traffic();
  // a second round once Prometheus has seen the first, so every rate() has an increase to show
  const firstRound = sent;
  await until(`Prometheus to count ${firstRound} requests`, 60_000, async () => {
    const total = await query('sum(upload_guard_requests_total)');
    return Number(total.data?.result[0]?.value[1] ?? 0) >= firstRound ? true : undefined;
  });
  await delay(2000); // the limited route's bucket stays empty (1/min): the second round is refused there too
  await traffic();
  await until(`Prometheus to count ${sent} requests`, 60_000, async () => {
    const total = await query('sum(upload_guard_requests_total)');
    return Number(total.data?.result[0]?.value[1] ?? 0) >= sent ? true : undefined;
  });

  const counted = await query('sum by (outcome) (upload_guard_requests_total)');
  const byOutcome = Object.fromEntries(counted.data!.result.map((r) => [r.metric.outcome, Number(r.value[1])]));
  assert.ok(byOutcome.forwarded! >= 8 && byOutcome.rejected! >= 6 && byOutcome.error === 2 && byOutcome.passthrough === 6, JSON.stringify(byOutcome));
  const limitedByScope = await query('sum(upload_guard_rate_limited_total{route="limited",scope="ip"})');
  assert.ok(Number(limitedByScope.data?.result[0]?.value[1]) >= 2, JSON.stringify(limitedByScope));

  const targets = dashboardTargets();
  assert.ok(targets.length >= 20, `dashboard has ${targets.length} queries`);
  const validityOnly: string[] = [];
  for (const target of targets) {
    const expr = substitute(target.expr);
    const reason = [...VALIDITY_ONLY].find(([pattern]) => pattern.test(expr))?.[1];
    if (reason !== undefined) {
      const result = await query(expr);
      assert.equal(result.status, 'success', `${target.panel}: ${expr}: ${result.error}`);
      validityOnly.push(`${target.panel} (${reason})`);
      continue;
    }
    // scrapes every second: a series that is there is seen within a few seconds at most
    const result = await until(`data for panel "${target.panel}": ${expr}`, 30_000, async () => {
      const r = await query(expr);
      assert.equal(r.status, 'success', `${target.panel}: ${expr}: ${r.error}`);
      return r.data!.result.length > 0 ? r : undefined;
    });
    assert.ok(result.data!.result.length > 0);
  }
  assert.equal(validityOnly.length, VALIDITY_ONLY.size, `validity-only queries: ${validityOnly.join('; ')}`);

  const rules = alertRules();
  assert.ok(rules.length >= 5);
  for (const rule of rules) {
    const result = await query(rule.expr);
    assert.equal(result.status, 'success', `${rule.name}: ${rule.expr}: ${result.error}`);
  }
  // Prometheus itself loaded the same file and evaluates every rule without error
  const evaluated = await until('every rule evaluated', 60_000, async () => {
    const res = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> } };
    const all = res.data.groups.flatMap((g) => g.rules);
    return all.length === rules.length && all.every((r) => r.health !== 'unknown') ? all : undefined;
  });
  for (const rule of evaluated) assert.equal(rule.health, 'ok', `${rule.name}: ${rule.lastError}`);
  // the traffic above (2 of 24 uploads failing upstream) is not enough to fire anything but
  // UploadGuardUpstreamFailing's condition, which needs 5 minutes: nothing is firing yet
  const alerts = (await (await fetch(`${promUrl}/api/v1/alerts`)).json()) as { data: { alerts: Array<{ labels: Record<string, string>; state: string }> } };
  assert.deepEqual(alerts.data.alerts.filter((a) => a.state === 'firing'), []);
});
