// The Prometheus metrics of SPEC.md "Metrics", fed from finished-request records
// (request-observer.ts) and served on the admin port (server/admin-server.ts).
//
// Labels stay bounded whatever clients send:
//   route    the configured route name; "passthrough" for every request no route matched
//            (including targets refused before routing); never a raw path
//   outcome  forwarded | rejected | passthrough | error (anything else counts as "error")
//   code     a SPEC error code (errors.ts ERROR_TABLE); "none" when the request has no code;
//            "OTHER" for a code the table does not know (never a client-chosen string)
//   category image | video | document | other
//   scope    ip | key | bytes
// Every metric lives in this instance's own Registry (no global state), so tests and a reload
// can create as many as they like.

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ERROR_TABLE } from '../errors.js';
import { categoryOf } from '../upload/file-kinds.js';
import { finalExtension } from '../upload/filenames.js';
import type { FinishedRequest, RateLimitScope, RequestObserver } from './request-observer.js';

/** route label of requests that matched no configured route */
export const PASSTHROUGH_ROUTE = 'passthrough';
/** code label of requests without an error code */
export const NO_CODE = 'none';
/** code label of a code outside the SPEC table */
export const OTHER_CODE = 'OTHER';

const OUTCOMES = new Set(['forwarded', 'rejected', 'passthrough', 'error']);
const CATEGORIES = new Set(['image', 'video', 'document', 'other']);
const SCOPES: readonly RateLimitScope[] = ['ip', 'key', 'bytes'];
const KNOWN_CODES: ReadonlySet<string> = new Set(Object.keys(ERROR_TABLE));

/** 1 KiB .. 4 GiB in powers of 4: 1K 4K 16K 64K 256K 1M 4M 16M 64M 256M 1G 4G */
export const BYTE_BUCKETS: readonly number[] = Object.freeze(Array.from({ length: 12 }, (_, i) => 1024 * 4 ** i));
/** 5 ms .. 10 min */
export const SECOND_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]);

export type ReloadResult = 'success' | 'failure';

export interface GuardMetricsOptions {
  /** configured route names: their zero-valued series exist from the start (rate() and alerts
   *  see the first increment, dashboards show 0 instead of "no data") */
  routes?: readonly string[];
  /** collect prom-client's default process metrics (prefix upload_guard_); default true */
  defaultMetrics?: boolean;
}

export class GuardMetrics implements RequestObserver {
  readonly registry: Registry;
  readonly #requests: Counter<'route' | 'outcome' | 'code'>;
  readonly #files: Counter<'route' | 'category' | 'outcome'>;
  readonly #receivedBytes: Counter<'route'>;
  readonly #forwardedBytes: Counter<'route'>;
  readonly #fileSize: Histogram<'route'>;
  readonly #requestDuration: Histogram<'route' | 'outcome'>;
  readonly #upstreamDuration: Histogram<'route'>;
  readonly #inflight: Gauge<'route'>;
  readonly #rateLimited: Counter<'route' | 'scope'>;
  readonly #reloads: Counter<'result'>;
  readonly #wouldReject: Counter<'route' | 'code'>;
  readonly #storageFree: Gauge;
  /** in-flight count per route, kept here so an unmatched finish can never drive the gauge negative */
  readonly #inflightCounts = new Map<string, number>();

  constructor(options: GuardMetricsOptions = {}) {
    this.registry = new Registry();
    const registers = [this.registry];
    this.#requests = new Counter({
      name: 'upload_guard_requests_total',
      help: 'Requests by route (configured name or "passthrough"), outcome (forwarded|rejected|passthrough|error) and SPEC error code ("none" without one)',
      labelNames: ['route', 'outcome', 'code'],
      registers,
    });
    this.#files = new Counter({
      name: 'upload_guard_files_total',
      help: 'Files in upload requests by category; outcome forwarded (sent upstream), rejected (the file a rejection was about) or discarded (passed its checks, but the request was not forwarded)',
      labelNames: ['route', 'category', 'outcome'],
      registers,
    });
    this.#receivedBytes = new Counter({
      name: 'upload_guard_received_bytes_total',
      help: 'Request body bytes received from clients on upload routes',
      labelNames: ['route'],
      registers,
    });
    this.#forwardedBytes = new Counter({
      name: 'upload_guard_forwarded_bytes_total',
      help: 'Canonical body bytes handed to the upstream on upload routes',
      labelNames: ['route'],
      registers,
    });
    this.#fileSize = new Histogram({
      name: 'upload_guard_file_size_bytes',
      help: 'Size of files that passed their checks',
      labelNames: ['route'],
      buckets: [...BYTE_BUCKETS],
      registers,
    });
    this.#requestDuration = new Histogram({
      name: 'upload_guard_request_duration_seconds',
      help: 'Time from the request head to the end of the response',
      labelNames: ['route', 'outcome'],
      buckets: [...SECOND_BUCKETS],
      registers,
    });
    this.#upstreamDuration = new Histogram({
      name: 'upload_guard_upstream_duration_seconds',
      help: 'Upload routes: time from the complete, validated body to the upstream response headers',
      labelNames: ['route'],
      buckets: [...SECOND_BUCKETS],
      registers,
    });
    this.#inflight = new Gauge({
      name: 'upload_guard_inflight_requests',
      help: 'Upload requests being handled now',
      labelNames: ['route'],
      registers,
    });
    this.#rateLimited = new Counter({
      name: 'upload_guard_rate_limited_total',
      help: 'Requests refused with RATE_LIMITED, by the bucket that refused (ip|key|bytes)',
      labelNames: ['route', 'scope'],
      registers,
    });
    this.#reloads = new Counter({
      name: 'upload_guard_config_reloads_total',
      help: 'Config reloads (SIGHUP) by result; a failed reload keeps the old config',
      labelNames: ['result'],
      registers,
    });
    this.#wouldReject = new Counter({
      name: 'upload_guard_would_reject_total',
      help: 'reportOnly policies: requests forwarded although this code would have rejected them',
      labelNames: ['route', 'code'],
      registers,
    });
    this.#storageFree = new Gauge({
      name: 'upload_guard_storage_free_bytes',
      help: 'Free bytes on the watched upload volume (config storage.path)',
      registers,
    });
    for (const result of ['success', 'failure'] as const) this.#reloads.inc({ result }, 0);
    this.addRoutes(options.routes ?? []);
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'upload_guard_' });
  }

  /** Creates the zero-valued series of these routes (at start and after a reload). */
  addRoutes(routes: readonly string[]): void {
    for (const route of routes) {
      if (!this.#inflightCounts.has(route)) {
        this.#inflightCounts.set(route, 0);
        this.#inflight.set({ route }, 0);
      }
      for (const scope of SCOPES) this.#rateLimited.inc({ route, scope }, 0);
      this.#receivedBytes.inc({ route }, 0);
      this.#forwardedBytes.inc({ route }, 0);
    }
  }

  /** Prometheus text exposition of every metric. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  started(route: string): void {
    const now = (this.#inflightCounts.get(route) ?? 0) + 1;
    this.#inflightCounts.set(route, now);
    this.#inflight.set({ route }, now);
  }

  finished(request: FinishedRequest): void {
    const route = request.route ?? PASSTHROUGH_ROUTE;
    const outcome = OUTCOMES.has(request.outcome) ? request.outcome : 'error';
    const code = codeLabel(request.code);
    this.#requests.inc({ route, outcome, code });
    this.#requestDuration.observe({ route, outcome }, Math.max(0, request.ms) / 1000);
    if (request.route !== null) {
      const now = this.#inflightCounts.get(route) ?? 0;
      if (now > 0) {
        this.#inflightCounts.set(route, now - 1);
        this.#inflight.set({ route }, now - 1);
      }
    }
    if (request.bytes > 0 || request.route !== null) this.#receivedBytes.inc({ route }, Math.max(0, request.bytes));
    if (request.forwardedBytes !== undefined) this.#forwardedBytes.inc({ route }, Math.max(0, request.forwardedBytes));
    if (request.upstreamMs !== undefined) this.#upstreamDuration.observe({ route }, Math.max(0, request.upstreamMs) / 1000);
    const fileOutcome = outcome === 'forwarded' ? 'forwarded' : 'discarded';
    for (const file of request.files ?? []) {
      const category = CATEGORIES.has(file.category) ? file.category : 'other';
      this.#files.inc({ route, category, outcome: fileOutcome });
      this.#fileSize.observe({ route }, Math.max(0, file.bytes));
    }
    if (request.filename !== undefined && outcome === 'rejected') {
      const ext = finalExtension(request.filename);
      this.#files.inc({ route, category: ext === null ? 'other' : categoryOf(ext), outcome: 'rejected' });
    }
    if (request.code === 'RATE_LIMITED') {
      const scope = request.rateLimitScope !== undefined && SCOPES.includes(request.rateLimitScope) ? request.rateLimitScope : 'ip';
      this.#rateLimited.inc({ route, scope });
    }
    if (request.wouldReject !== undefined) this.#wouldReject.inc({ route, code: codeLabel(request.wouldReject) });
  }

  configReloaded(result: ReloadResult): void {
    this.#reloads.inc({ result: result === 'success' ? 'success' : 'failure' });
  }

  storageFree(bytes: number): void {
    this.#storageFree.set(bytes);
  }
}

/** The bounded code label: a SPEC code, "none" when absent, "OTHER" for anything else. */
export function codeLabel(code: string | undefined): string {
  if (code === undefined || code === '') return NO_CODE;
  return KNOWN_CODES.has(code) ? code : OTHER_CODE;
}
