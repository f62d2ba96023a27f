// The upstream client for guarded uploads: one undici Pool per upstream origin. Its errors are
// translated to the SPEC codes (502 refused/reset, 504 too slow) in one place.

import type { Readable } from 'node:stream';
import { Pool, errors as undiciErrors } from 'undici';
import { GuardError } from '../errors.js';

export interface UpstreamRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  /** A whole body, a stream, or an async iterable when the body must go chunked whatever its length. */
  body: Buffer | Readable | AsyncIterable<Buffer>;
  signal?: AbortSignal;
}

export interface UpstreamResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

export class Upstream {
  readonly pool: Pool;

  constructor(url: URL, timeoutMs: number) {
    this.pool = upstreamPool(url, timeoutMs, 64);
  }

  async send(request: UpstreamRequest): Promise<UpstreamResponse> {
    try {
      const response = await this.pool.request({
        method: request.method as 'POST',
        path: request.path,
        headers: request.headers,
        // undici takes async iterables too (docs/api/Dispatcher.md); its types lag behind
        body: request.body as Readable,
        signal: request.signal,
      });
      return { statusCode: response.statusCode, headers: response.headers, body: response.body };
    } catch (err) {
      throw upstreamFailure(err);
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** An undici pool to the upstream; `connections` null: no limit. */
export function upstreamPool(url: URL, timeoutMs: number, connections: number | null): Pool {
  return new Pool(url.origin, {
    connections,
    pipelining: 1,
    // below gunicorn's 2 s keep-alive so a reused socket is never one the upstream just closed
    keepAliveTimeout: 1_000,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect: { timeout: Math.min(timeoutMs, 10_000) },
  });
}

/** Maps an undici or socket failure to the SPEC code the client should see. */
export function upstreamFailure(err: unknown): GuardError {
  if (err instanceof GuardError) return err;
  if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
    return new GuardError('UPSTREAM_TIMEOUT');
  }
  if (err instanceof undiciErrors.ConnectTimeoutError) return new GuardError('UPSTREAM_TIMEOUT');
  return new GuardError('UPSTREAM_UNAVAILABLE');
}
