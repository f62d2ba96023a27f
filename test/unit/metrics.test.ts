// GuardMetrics fed with finished-request records; assertions on the registry's text exposition.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { BYTE_BUCKETS, GuardMetrics, SECOND_BUCKETS } from '../../src/observe/metrics.ts';
import type { FinishedRequest } from '../../src/observe/request-observer.ts';

function request(over: Partial<FinishedRequest>): FinishedRequest {
  return { id: 'r1', route: 'upload', ip: '127.0.0.1', method: 'POST', path: '/upload', outcome: 'forwarded', status: 200, bytes: 0, ms: 12, ...over };
}

/** value of one sample line, e.g. sample(text, 'upload_guard_requests_total{route="upload",outcome="forwarded",code="none"}') */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

function seriesOf(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

test('every SPEC metric is exported with its labels, plus default process metrics with the prefix', async () => {
  const metrics = new GuardMetrics({ routes: ['upload'] });
  metrics.started('upload');
  metrics.finished(request({ bytes: 5000, forwardedBytes: 5200, upstreamMs: 40, files: [{ field: 'file', filename: 'a.png', bytes: 4900, category: 'image' }] }));
  metrics.configReloaded('success');
  metrics.storageFree(123456);
  const text = await metrics.metrics();
  for (const [name, type] of [
    ['upload_guard_requests_total', 'counter'],
    ['upload_guard_files_total', 'counter'],
    ['upload_guard_received_bytes_total', 'counter'],
    ['upload_guard_forwarded_bytes_total', 'counter'],
    ['upload_guard_file_size_bytes', 'histogram'],
    ['upload_guard_request_duration_seconds', 'histogram'],
    ['upload_guard_upstream_duration_seconds', 'histogram'],
    ['upload_guard_inflight_requests', 'gauge'],
    ['upload_guard_rate_limited_total', 'counter'],
    ['upload_guard_config_reloads_total', 'counter'],
    ['upload_guard_would_reject_total', 'counter'],
    ['upload_guard_storage_free_bytes', 'gauge'],
    ['upload_guard_process_cpu_seconds_total', 'counter'],
    ['upload_guard_process_resident_memory_bytes', 'gauge'],
    ['upload_guard_nodejs_eventloop_lag_seconds', 'gauge'],
  ]) {
    assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), name);
  }
  assert.equal(sample(text, 'upload_guard_requests_total{route="upload",outcome="forwarded",code="none"}'), 1);
  assert.equal(sample(text, 'upload_guard_files_total{route="upload",category="image",outcome="forwarded"}'), 1);
  assert.equal(sample(text, 'upload_guard_received_bytes_total{route="upload"}'), 5000);
  assert.equal(sample(text, 'upload_guard_forwarded_bytes_total{route="upload"}'), 5200);
  assert.equal(sample(text, 'upload_guard_file_size_bytes_bucket{le="4096",route="upload"}'), 0);
  assert.equal(sample(text, 'upload_guard_file_size_bytes_bucket{le="16384",route="upload"}'), 1);
  assert.equal(sample(text, 'upload_guard_file_size_bytes_sum{route="upload"}'), 4900);
  assert.equal(sample(text, 'upload_guard_request_duration_seconds_sum{route="upload",outcome="forwarded"}'), 0.012);
  assert.equal(sample(text, 'upload_guard_upstream_duration_seconds_sum{route="upload"}'), 0.04);
  assert.equal(sample(text, 'upload_guard_upstream_duration_seconds_count{route="upload"}'), 1);
  assert.equal(sample(text, 'upload_guard_inflight_requests{route="upload"}'), 0);
  assert.equal(sample(text, 'upload_guard_config_reloads_total{result="success"}'), 1);
  assert.equal(sample(text, 'upload_guard_config_reloads_total{result="failure"}'), 0);
  assert.equal(sample(text, 'upload_guard_storage_free_bytes'), 123456);
});

test('buckets: bytes 1 KiB..4 GiB in powers of 4, seconds 5 ms..10 min', async () => {
  assert.equal(BYTE_BUCKETS[0], 1024);
  assert.equal(BYTE_BUCKETS.at(-1), 4 * 1024 ** 3);
  for (let i = 1; i < BYTE_BUCKETS.length; i++) assert.equal(BYTE_BUCKETS[i], BYTE_BUCKETS[i - 1]! * 4);
  assert.equal(SECOND_BUCKETS[0], 0.005);
  assert.equal(SECOND_BUCKETS.at(-1), 600);
  const text = await new GuardMetrics({ defaultMetrics: false }).metrics();
  assert.ok(!text.includes('process_'), 'defaultMetrics: false leaves process metrics out');
});

test('configured routes have zero-valued series from the start', async () => {
  const text = await new GuardMetrics({ routes: ['upload', 'bulk'], defaultMetrics: false }).metrics();
  for (const route of ['upload', 'bulk']) {
    assert.equal(sample(text, `upload_guard_inflight_requests{route="${route}"}`), 0);
    for (const scope of ['ip', 'key', 'bytes']) assert.equal(sample(text, `upload_guard_rate_limited_total{route="${route}",scope="${scope}"}`), 0);
    assert.equal(sample(text, `upload_guard_received_bytes_total{route="${route}"}`), 0);
  }
});

test('in-flight gauge: started +1, finished -1, never negative', async () => {
  const metrics = new GuardMetrics({ defaultMetrics: false });
  metrics.started('upload');
  metrics.started('upload');
  metrics.started('bulk');
  assert.equal(sample(await metrics.metrics(), 'upload_guard_inflight_requests{route="upload"}'), 2);
  metrics.finished(request({}));
  metrics.finished(request({ route: 'bulk' }));
  metrics.finished(request({ route: 'bulk' })); // unmatched: stays at 0
  metrics.finished(request({ route: null, outcome: 'passthrough' })); // passthrough never touches the gauge
  const text = await metrics.metrics();
  assert.equal(sample(text, 'upload_guard_inflight_requests{route="upload"}'), 1);
  assert.equal(sample(text, 'upload_guard_inflight_requests{route="bulk"}'), 0);
  assert.equal(seriesOf(text, 'upload_guard_inflight_requests').length, 2);
});

test('rejections: code label, rejected file counted by category, rate limits by scope, reportOnly', async () => {
  const metrics = new GuardMetrics({ defaultMetrics: false });
  metrics.finished(request({ outcome: 'rejected', status: 400, code: 'EXTENSION_NOT_ALLOWED', filename: 'shell.php', files: [{ field: 'a', filename: 'ok.png', bytes: 10, category: 'image' }] }));
  metrics.finished(request({ outcome: 'rejected', status: 400, code: 'CONTENT_MISMATCH', filename: 'x.jpg' }));
  metrics.finished(request({ outcome: 'rejected', status: 429, code: 'RATE_LIMITED', rateLimitScope: 'bytes' }));
  metrics.finished(request({ outcome: 'rejected', status: 429, code: 'RATE_LIMITED', rateLimitScope: 'key' }));
  metrics.finished(request({ outcome: 'rejected', status: 429, code: 'RATE_LIMITED' }));
  metrics.finished(request({ outcome: 'error', status: 502, code: 'UPSTREAM_UNAVAILABLE' }));
  metrics.finished(request({ outcome: 'forwarded', wouldReject: 'FILE_TOO_LARGE' }));
  metrics.finished(request({ outcome: 'rejected', status: 400, code: 'SOMETHING_NEW' }));
  metrics.configReloaded('failure');
  const text = await metrics.metrics();
  assert.equal(sample(text, 'upload_guard_requests_total{route="upload",outcome="rejected",code="EXTENSION_NOT_ALLOWED"}'), 1);
  assert.equal(sample(text, 'upload_guard_requests_total{route="upload",outcome="rejected",code="RATE_LIMITED"}'), 3);
  assert.equal(sample(text, 'upload_guard_requests_total{route="upload",outcome="error",code="UPSTREAM_UNAVAILABLE"}'), 1);
  assert.equal(sample(text, 'upload_guard_requests_total{route="upload",outcome="rejected",code="OTHER"}'), 1, 'unknown codes are folded');
  assert.equal(sample(text, 'upload_guard_files_total{route="upload",category="other",outcome="rejected"}'), 1);
  assert.equal(sample(text, 'upload_guard_files_total{route="upload",category="image",outcome="rejected"}'), 1);
  assert.equal(sample(text, 'upload_guard_files_total{route="upload",category="image",outcome="discarded"}'), 1);
  assert.equal(sample(text, 'upload_guard_rate_limited_total{route="upload",scope="bytes"}'), 1);
  assert.equal(sample(text, 'upload_guard_rate_limited_total{route="upload",scope="key"}'), 1);
  assert.equal(sample(text, 'upload_guard_rate_limited_total{route="upload",scope="ip"}'), 1, 'a missing scope counts as ip');
  assert.equal(sample(text, 'upload_guard_would_reject_total{route="upload",code="FILE_TOO_LARGE"}'), 1);
  assert.equal(sample(text, 'upload_guard_config_reloads_total{result="failure"}'), 1);
});

test('passthrough uses route="passthrough": 1000 random paths add no series', async () => {
  const metrics = new GuardMetrics({ routes: ['upload'], defaultMetrics: false });
  const count = (text: string): number => text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
  metrics.finished(request({ route: null, outcome: 'passthrough', method: 'GET', path: '/warm' }));
  metrics.finished(request({ route: null, outcome: 'rejected', status: 400, code: 'MALFORMED_REQUEST', path: '/%2f' }));
  const before = await metrics.metrics();
  for (let i = 0; i < 1000; i++) {
    const path = `/${randomBytes(8).toString('hex')}/${encodeURIComponent(randomBytes(6).toString('latin1'))}?q=${i}`;
    metrics.finished(request({ route: null, outcome: 'passthrough', method: i % 2 ? 'GET' : 'PUT', path, ip: `10.0.${i % 256}.${i >> 8}`, id: String(i), ms: i % 50, status: 200 + (i % 5) }));
  }
  const after = await metrics.metrics();
  assert.equal(count(after), count(before), 'series count unchanged');
  assert.equal(sample(after, 'upload_guard_requests_total{route="passthrough",outcome="passthrough",code="none"}'), 1001);
  assert.doesNotMatch(after, /route="\/|path=|ip=/);
});
