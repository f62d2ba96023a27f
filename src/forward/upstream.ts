// The upstream client for guarded uploads: one undici Pool per upstream origin. Its errors are
// translated to the SPEC codes (502 refused/reset, 504 too slow) in one place.

import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { Pool, errors as undiciErrors } from 'undici';
import { GuardError } from '../errors.js';
import { type UpstreamAnswer, UpstreamExchange } from './upstream-exchange.js';

export interface UpstreamRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  /** A whole body, a stream, or an async iterable when the body must go chunked whatever its length. */
  body: Buffer | Readable | AsyncIterable<Buffer>;
}

/** The upstream's answer: its head, and relay() to write its body to the client (head written first). */
export interface UpstreamResponse extends UpstreamAnswer {
  relay(res: ServerResponse): void;
}

/** A request on its way to the upstream. */
export interface UpstreamCall {
  /** Settles with the answer's head; rejects with the SPEC error (502/504) when there is none. */
  response: Promise<UpstreamResponse>;
  /** Stops the request; the upstream never receives the rest of its body. */
  abort(reason: Error): void;
}

export class Upstream {
  private readonly pool: Pool;

  constructor(url: URL, timeoutMs: number) {
    this.pool = upstreamPool(url, timeoutMs, 64);
  }

  start(request: UpstreamRequest): UpstreamCall {
    const exchange = new UpstreamExchange();
    const body = request.body;
    // undici's dispatch leaves a stream body alone when the request fails or the answer comes
    // before the body was all sent (request() destroyed it): the spool's file stream must close
    // then, or its descriptor is left to the garbage collector
    if (body instanceof Readable) exchange.finally(() => body.destroy());
    // undici takes async iterables too (docs/api/Dispatcher.md); its types lag behind
    exchange.send(this.pool, { method: request.method, path: request.path, headers: request.headers, body: body as Readable });
    const response = exchange.answer.then(
      (answer) => ({ ...answer, relay: (res: ServerResponse) => exchange.relay(res) }),
      (err: unknown) => {
        throw upstreamFailure(err);
      },
    );
    return { response, abort: (reason) => exchange.abort(reason) };
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
