// What the admin status page shows (server/admin-server.ts): request and rejection rates over the
// last minute, totals since start, in-flight uploads, and the last rejections in a ring buffer.
// An observer like the metrics: O(1) per request, bounded memory (per-second slots for one
// window, a fixed-size ring, code keys bounded by codeLabel()).

import { codeLabel, PASSTHROUGH_ROUTE } from './metrics.js';
import type { FinishedRequest, RequestObserver } from './request-observer.js';

export interface RecentRejection {
  /** ISO time the request finished */
  time: string;
  id: string;
  route: string;
  ip: string;
  method: string;
  status: number;
  /** rejected | error; "report-only" for a reportOnly policy's would-be rejection (forwarded) */
  outcome: string;
  code: string;
  /** sanitised file name the rejection is about, when there is one */
  filename?: string;
}

export interface StatusSnapshot {
  generatedAt: string;
  startedAt: string;
  uptimeSeconds: number;
  /** seconds the rates are averaged over (the window, or the uptime while shorter) */
  rateWindowSeconds: number;
  rates: {
    requestsPerSecond: number;
    rejectionsPerSecond: number;
    /** rejections and errors per second by code */
    byCode: Record<string, number>;
  };
  totals: {
    requests: number;
    byOutcome: Record<string, number>;
    /** rejections and errors by code since start */
    byCode: Record<string, number>;
  };
  inflight: Record<string, number>;
  /** newest first */
  recent: RecentRejection[];
}

export interface StatusBoardOptions {
  /** rejections kept for the page; default 100 */
  capacity?: number;
  /** seconds the rates are averaged over; default 60 */
  windowSeconds?: number;
  /** clock in ms (tests); default Date.now */
  now?: () => number;
}

interface Slot {
  /** whole second this slot counts, -1 when unused */
  second: number;
  requests: number;
  rejections: number;
  byCode: Map<string, number>;
}

const MAX_TEXT = 160;
// C0/C1 controls, bidi and other format characters, line/paragraph separators
const UNPRINTABLE = /[\p{Cc}\p{Cf}\u2028\u2029]/gu;

/** Printable and short: what an operator may safely see of a client-supplied string (still HTML-escaped on output). */
export function displayText(text: string, max = MAX_TEXT): string {
  const clean = text.replace(UNPRINTABLE, '\uFFFD');
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

export class StatusBoard implements RequestObserver {
  readonly #capacity: number;
  readonly #windowSeconds: number;
  readonly #now: () => number;
  readonly #startedAt: number;
  readonly #ring: RecentRejection[] = [];
  /** next write position once the ring is full */
  #next = 0;
  readonly #slots: Slot[];
  #requests = 0;
  readonly #byOutcome = new Map<string, number>();
  readonly #byCode = new Map<string, number>();
  readonly #inflight = new Map<string, number>();

  constructor(options: StatusBoardOptions = {}) {
    this.#capacity = Math.max(1, options.capacity ?? 100);
    this.#windowSeconds = Math.max(1, options.windowSeconds ?? 60);
    this.#now = options.now ?? Date.now;
    this.#startedAt = this.#now();
    this.#slots = Array.from({ length: this.#windowSeconds }, () => ({ second: -1, requests: 0, rejections: 0, byCode: new Map<string, number>() }));
  }

  started(route: string): void {
    this.#inflight.set(route, (this.#inflight.get(route) ?? 0) + 1);
  }

  finished(request: FinishedRequest): void {
    const now = this.#now();
    const route = request.route ?? PASSTHROUGH_ROUTE;
    if (request.route !== null) {
      const left = (this.#inflight.get(route) ?? 0) - 1;
      if (left >= 0) this.#inflight.set(route, left);
    }
    this.#requests++;
    increment(this.#byOutcome, request.outcome);
    const slot = this.#slot(now);
    slot.requests++;
    const failed = request.outcome === 'rejected' || request.outcome === 'error';
    if (failed) {
      const code = codeLabel(request.code);
      increment(this.#byCode, code);
      slot.rejections++;
      increment(slot.byCode, code);
    }
    if (failed || request.wouldReject !== undefined) {
      this.#remember({
        time: new Date(now).toISOString(),
        id: displayText(request.id, 128),
        route,
        ip: displayText(request.ip, 64),
        method: displayText(request.method, 16),
        status: request.status,
        outcome: failed ? request.outcome : 'report-only',
        code: codeLabel(failed ? request.code : request.wouldReject),
        ...(request.filename !== undefined ? { filename: displayText(request.filename) } : {}),
      });
    }
  }

  snapshot(): StatusSnapshot {
    const now = this.#now();
    const second = Math.floor(now / 1000);
    const uptimeSeconds = Math.max(0, (now - this.#startedAt) / 1000);
    const windowSeconds = Math.min(this.#windowSeconds, Math.max(1, Math.ceil(uptimeSeconds)));
    let requests = 0;
    let rejections = 0;
    const byCode = new Map<string, number>();
    for (const slot of this.#slots) {
      if (slot.second < 0 || slot.second <= second - this.#windowSeconds || slot.second > second) continue;
      requests += slot.requests;
      rejections += slot.rejections;
      for (const [code, n] of slot.byCode) increment(byCode, code, n);
    }
    const perSecond = (n: number): number => Math.round((n / windowSeconds) * 1000) / 1000;
    return {
      generatedAt: new Date(now).toISOString(),
      startedAt: new Date(this.#startedAt).toISOString(),
      uptimeSeconds: Math.round(uptimeSeconds),
      rateWindowSeconds: windowSeconds,
      rates: {
        requestsPerSecond: perSecond(requests),
        rejectionsPerSecond: perSecond(rejections),
        byCode: Object.fromEntries([...byCode].sort().map(([code, n]) => [code, perSecond(n)])),
      },
      totals: {
        requests: this.#requests,
        byOutcome: Object.fromEntries([...this.#byOutcome].sort()),
        byCode: Object.fromEntries([...this.#byCode].sort()),
      },
      inflight: Object.fromEntries([...this.#inflight].sort()),
      recent: this.recent(),
    };
  }

  /** The kept rejections, newest first. */
  recent(): RecentRejection[] {
    if (this.#ring.length < this.#capacity) return [...this.#ring].reverse();
    return [...this.#ring.slice(this.#next), ...this.#ring.slice(0, this.#next)].reverse();
  }

  #remember(entry: RecentRejection): void {
    if (this.#ring.length < this.#capacity) {
      this.#ring.push(entry);
      return;
    }
    this.#ring[this.#next] = entry;
    this.#next = (this.#next + 1) % this.#capacity;
  }

  #slot(now: number): Slot {
    const second = Math.floor(now / 1000);
    const slot = this.#slots[second % this.#windowSeconds]!;
    if (slot.second !== second) {
      slot.second = second;
      slot.requests = 0;
      slot.rejections = 0;
      slot.byCode.clear();
    }
    return slot;
  }
}

function increment(map: Map<string, number>, key: string, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}
