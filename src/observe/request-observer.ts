// What the request path tells the outside about each request: the log line (always), and any
// number of observers (metrics, the admin status page). Observers must not throw or block: they
// run on the hot path, after the response is finished.

import type { FilteredFile } from '../upload/multipart-filter.js';

export type RequestOutcome = 'forwarded' | 'rejected' | 'passthrough' | 'error';
export type RateLimitScope = 'ip' | 'key' | 'bytes';

/** One finished request, as logged (one JSON line) and counted. */
export interface FinishedRequest {
  id: string;
  /** configured route name; null for passthrough */
  route: string | null;
  ip: string;
  method: string;
  /** normalised path (for logs only; never a metric label) */
  path: string;
  outcome: RequestOutcome;
  status: number;
  /** SPEC error code when rejected or failed */
  code?: string;
  /** request body bytes received from the client */
  bytes: number;
  /** canonical body bytes handed to the upstream (upload routes) */
  forwardedBytes?: number;
  /** total time, ms */
  ms: number;
  /** ms from the complete, validated body to the upstream's response headers (upload routes) */
  upstreamMs?: number;
  /** files that passed the checks (forwarded or not); the rejected file's name is in `filename` */
  files?: FilteredFile[];
  /** sanitised name of the file a rejection is about */
  filename?: string;
  /** API key name (never the key) */
  apiKey?: string;
  /** which bucket refused, for RATE_LIMITED */
  rateLimitScope?: RateLimitScope;
  /** reportOnly: the code that would have rejected, the request was forwarded anyway */
  wouldReject?: string;
}

export interface RequestObserver {
  /** an upload route started handling a request (in-flight gauges) */
  started?(route: string): void;
  finished(request: FinishedRequest): void;
  /** free bytes of the watched upload volume (config `storage`), sampled every few seconds */
  storageFree?(bytes: number): void;
}
