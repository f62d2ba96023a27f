// One request to the upstream through an undici pool, as a dispatch handler: the answer's head
// comes back as a promise, and its body is written straight to the client's ServerResponse once
// the caller relays it, at the client's pace (the upstream is paused until 'drain'). A client that
// goes away aborts the upstream request.
//
// Why not undici's request(): its response body is a Readable that then has to be piped to the
// client; dispatching to the ServerResponse directly saves that stream per request (passthrough
// GETs and small uploads are mostly per-request cost).

import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';

export interface UpstreamAnswer {
  statusCode: number;
  /** the reason phrase the upstream sent, if any */
  statusMessage: string | undefined;
  headers: Record<string, string | string[]>;
}

export class UpstreamExchange implements Dispatcher.DispatchHandler {
  /** Resolves with the answer's head (1xx interim answers skipped); rejects with undici's error. */
  readonly answer: Promise<UpstreamAnswer>;
  private settleAnswer!: { resolve: (answer: UpstreamAnswer) => void; reject: (err: Error) => void };
  private controller: Dispatcher.DispatchController | null = null;
  private abortReason: Error | null = null;
  private res: ServerResponse | null = null;
  /** body bytes that arrived before relay() */
  private early: Buffer[] = [];
  private ended = false;
  private failed = false;
  private watching = false;
  /** called once when the exchange is over, whichever way (see finally()) */
  private onFinished: (() => void) | null = null;

  constructor() {
    this.answer = new Promise((resolve, reject) => {
      this.settleAnswer = { resolve, reject };
    });
  }

  /** Hands the request to `pool` with this exchange as its handler. */
  send(pool: Dispatcher, options: Dispatcher.DispatchOptions): this {
    try {
      pool.dispatch(options, this);
    } catch (err) {
      // undici refuses some requests before sending anything (a header value it rejects)
      this.onResponseError(null, err as Error);
    }
    return this;
  }

  /** Stops the upstream request (now, or as soon as undici starts it). */
  abort(reason: Error): void {
    this.abortReason ??= reason;
    this.controller?.abort(reason);
  }

  /** Calls `done` once the exchange is over: the answer complete, or the request failed. */
  finally(done: () => void): void {
    this.onFinished = done;
  }

  /** Aborts the upstream request when `res` closes before the whole answer was written to it. */
  abortWhenClosed(res: ServerResponse): void {
    if (res.destroyed) return this.abort(new Error('client closed the connection'));
    if (this.watching) return;
    this.watching = true;
    res.once('close', () => {
      if (!res.writableFinished) this.abort(new Error('client closed the connection'));
    });
  }

  /** Writes the answer's body to `res` (its head already written) and ends it. */
  relay(res: ServerResponse): void {
    this.res = res;
    this.abortWhenClosed(res);
    let room = true;
    for (const chunk of this.early) room = res.write(chunk);
    this.early = [];
    if (this.failed) res.destroy();
    else if (this.ended) res.end();
    else if (room) this.controller?.resume();
    else res.once('drain', () => this.controller?.resume());
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.abortReason !== null) controller.abort(this.abortReason);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[]>, statusMessage?: string): void {
    if (statusCode < 200) return;
    // the body waits for relay(): for an upload, until the guard's verdict on what it sent
    if (this.res === null) controller.pause();
    this.settleAnswer.resolve({ statusCode, statusMessage: statusMessage || undefined, headers });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const res = this.res;
    if (res === null) {
      this.early.push(chunk);
      controller.pause();
      return;
    }
    if (res.write(chunk)) return;
    controller.pause();
    res.once('drain', () => controller.resume());
  }

  onResponseEnd(): void {
    this.ended = true;
    this.res?.end();
    this.finish();
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, err: Error): void {
    this.failed = true;
    this.early = [];
    this.settleAnswer.reject(err); // no-op once the head was in
    // once the status line is out, all that can be said is that the answer is incomplete
    if (this.res !== null && !this.res.destroyed) this.res.destroy();
    this.finish();
  }

  private finish(): void {
    const done = this.onFinished;
    this.onFinished = null;
    done?.();
  }
}
