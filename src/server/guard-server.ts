// The public listener: normalise the target, pick the route, then either pass the request
// through untouched or run the guarded upload path (head admission → body filter → forward).

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import type { CompiledConfig, CompiledPolicy, CompiledRoute } from '../config/types.js';
import { AdmissionGate, type Client, RateLimitedError } from '../admission/admission-gate.js';
import { clientIp, rateLimitKey } from '../admission/client-ip.js';
import type { RateLimitStore } from '../admission/rate-limit-store.js';
import { StorageWatch } from '../admission/storage-watch.js';
import { createRateLimitStore } from '../admission/store-factory.js';
import { ERROR_TABLE, GuardError } from '../errors.js';
import { type BodySink, SpoolSink, StreamSink } from '../forward/body-sink.js';
import { DiscardSink } from '../forward/discard-sink.js';
import { forwardedHeaders } from '../forward/forwarded-headers.js';
import { clientResponseHeaders, upstreamRequestHeaders } from '../forward/hop-by-hop.js';
import { Passthrough } from '../forward/passthrough.js';
import { Upstream, upstreamFailure } from '../forward/upstream.js';
import { logRequest, type RequestLogLine } from '../observe/log.js';
import type { RequestObserver } from '../observe/request-observer.js';
import { CanonicalEncoder } from '../upload/canonical-encoder.js';
import { admitBodyHeaders, authenticateHead } from '../upload/header-admission.js';
import { filterMultipart } from '../upload/multipart-filter.js';
import { answerClientError } from './client-errors.js';
import { normalizeTarget } from './normalize-target.js';
import { isClosing, sendRejection } from './reject.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface GuardServerOptions {
  /** told about every finished request (metrics, status page), after the log line */
  observers?: readonly RequestObserver[];
  /** buckets and bans; default: built from config.rateLimitStore at listen() and closed by close() */
  store?: RateLimitStore;
}

export class GuardServer {
  readonly server: Server;
  private config: CompiledConfig;
  private readonly observers: readonly RequestObserver[];
  private store: RateLimitStore | null;
  private readonly ownsStore: boolean;
  private gate: AdmissionGate | null;
  private storage: StorageWatch | null;
  private upstream: Upstream;
  private passthrough: Passthrough;
  private draining = false;
  /** responses not yet closed (drain tells them to close their connections) */
  private readonly inFlight = new Set<ServerResponse>();

  constructor(config: CompiledConfig, options: GuardServerOptions = {}) {
    this.config = config;
    this.observers = options.observers ?? [];
    this.store = options.store ?? null;
    this.ownsStore = options.store === undefined;
    this.gate = this.store === null ? null : new AdmissionGate(this.store);
    this.storage = this.storageWatchFor(config);
    this.upstream = new Upstream(config.upstream.url, config.upstream.timeoutMs);
    this.passthrough = this.passthroughFor(config);
    this.server = createServer({
      headersTimeout: config.timeouts.headersMs,
      requestTimeout: config.timeouts.requestMs,
      maxHeaderSize: config.headerLimits.maxSize,
      // how often Node checks the headers and request timeouts (default 30 s: far too coarse)
      connectionsCheckingInterval: 1000,
    });
    // One more than allowed, so an over-limit head is seen (Node drops the rest silently).
    this.server.maxHeadersCount = config.headerLimits.maxCount + 1;
    this.server.on('clientError', (err: Error & { code?: string }, socket: Socket) => this.clientError(err, socket));
    this.server.on('request', (req, res) => void this.handle(req, res, false));
    this.server.on('checkContinue', (req, res) => void this.handle(req, res, true));
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.upgrade(req, socket, head));
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Bucket and ban counts of the rate-limit store, for the status page. */
  limiterStats(): Record<string, number> {
    return this.store?.stats() ?? {};
  }

  get inFlightRequests(): number {
    return this.inFlight.size;
  }

  async listen(): Promise<{ host: string; port: number }> {
    if (this.store === null) {
      this.store = await createRateLimitStore(this.config);
      this.gate = new AdmissionGate(this.store);
    }
    await this.storage?.start();
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.listen.port, this.config.listen.host, () => {
        const address = this.server.address();
        resolve({ host: this.config.listen.host, port: typeof address === 'object' && address ? address.port : 0 });
      });
    });
  }

  /**
   * A reloaded config for new requests; requests in flight finish with the config they started
   * with (they hold their route, policy, upstream pool and store). `listen` cannot move without a
   * restart; everything else can.
   */
  async applyConfig(next: CompiledConfig): Promise<void> {
    const previous = this.config;
    this.config = next;
    this.server.headersTimeout = next.timeouts.headersMs;
    this.server.requestTimeout = next.timeouts.requestMs;
    this.server.maxHeadersCount = next.headerLimits.maxCount + 1;
    if (next.upstream.url.href !== previous.upstream.url.href || next.upstream.timeoutMs !== previous.upstream.timeoutMs) {
      const [oldUpstream, oldPassthrough] = [this.upstream, this.passthrough];
      this.upstream = new Upstream(next.upstream.url, next.upstream.timeoutMs);
      this.passthrough = this.passthroughFor(next);
      // Pool.close waits for the requests still using the old pool.
      void oldUpstream.close();
      void oldPassthrough.close();
    }
    if (JSON.stringify(next.storage) !== JSON.stringify(previous.storage)) {
      this.storage?.stop();
      this.storage = this.storageWatchFor(next);
      await this.storage?.start();
    }
    const storeOf = (c: CompiledConfig): string => JSON.stringify([c.rateLimitStore, c.rateLimitStoreOptions]);
    if (this.ownsStore && storeOf(next) !== storeOf(previous)) {
      const oldStore = this.store;
      this.store = await createRateLimitStore(next);
      this.gate = new AdmissionGate(this.store);
      void oldStore?.close();
    }
  }

  /**
   * SIGTERM: stop accepting connections at once, let requests in flight finish within
   * drainTimeout, then close everything. Resolves true when everything finished in time.
   */
  async drain(): Promise<boolean> {
    this.draining = true;
    for (const res of this.inFlight) if (!res.headersSent) res.shouldKeepAlive = false;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), this.config.drainTimeoutMs);
    });
    const finished = await Promise.race([closed.then(() => true), timedOut]);
    clearTimeout(timer);
    if (!finished) this.server.closeAllConnections();
    await this.releaseResources();
    return finished;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await this.releaseResources();
  }

  private async releaseResources(): Promise<void> {
    await this.passthrough.close();
    await this.upstream.close();
    if (this.ownsStore) await this.store?.close();
    this.storage?.stop();
  }

  private passthroughFor(config: CompiledConfig): Passthrough {
    return new Passthrough(config.upstream.url, config.upstream.timeoutMs, (err, req, res) => {
      sendRejection(req, res, err, requestIdOf(req));
    });
  }

  /** What the guard adds to a request it passes through. */
  private passthroughHeaders(req: IncomingMessage, id: string): Record<string, string> {
    return { ...forwardedHeaders(req, this.config.isTrustedProxy), 'x-request-id': id };
  }

  private storageWatchFor(config: CompiledConfig): StorageWatch | null {
    if (config.storage === null) return null;
    return new StorageWatch(config.storage.path, config.storage.minFree, (free) => {
      for (const observer of this.observers) observer.storageFree?.(free);
    });
  }

  private clientError(err: Error & { code?: string }, socket: Socket): void {
    const code = answerClientError(err, socket);
    if (code === null) return;
    const ip = clientIp(socket.remoteAddress ?? '', undefined, () => false);
    const line: RequestLogLine = { id: '', route: null, ip, method: '', path: '', outcome: 'rejected', status: ERROR_TABLE[code].status, code, bytes: 0, ms: 0 };
    logRequest(line);
    for (const observer of this.observers) observer.finished(line);
  }

  private upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    try {
      req.url = normalizeTarget(req.url ?? '', req.method).forwardTarget;
    } catch {
      socket.destroy();
      return;
    }
    this.passthrough.upgrade(req, socket, head, this.passthroughHeaders(req, requestIdOf(req)));
  }

  private async handle(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): Promise<void> {
    // pipelined behind a request already refused with Connection: close: part of what is discarded
    if (isClosing(req.socket)) {
      req.resume();
      return;
    }
    const started = performance.now();
    const id = requestIdOf(req);
    const ip = clientIp(req.socket.remoteAddress ?? '', req.headers['x-forwarded-for'], this.config.isTrustedProxy);
    const log: RequestLogLine = { id, route: null, ip, method: req.method ?? '', path: req.url ?? '', outcome: 'passthrough', status: 0, bytes: 0, ms: 0 };
    const context: RequestContext = { req, res, id, log, client: { key: rateLimitKey(ip), apiKeyName: null }, expectsContinue, verdict: null };
    this.inFlight.add(res);
    // While draining, every answer closes its connection so keep-alive clients move elsewhere.
    if (this.draining) res.shouldKeepAlive = false;
    res.once('close', () => {
      this.inFlight.delete(res);
      // a keep-alive connection that just finished its last request must not hold the drain up
      if (this.draining) setImmediate(() => this.server.closeIdleConnections());
      log.status = res.statusCode;
      log.ms = Math.round(performance.now() - started);
      const report = (): void => {
        logRequest(log);
        for (const observer of this.observers) observer.finished(log);
      };
      // report-only: the line carries the shadow verdict, which may come after the response
      if (context.verdict === null) report();
      else void context.verdict.finally(report);
    });
    let route: CompiledRoute | undefined;
    try {
      if (req.rawHeaders.length / 2 > this.config.headerLimits.maxCount) throw new GuardError('HEADERS_TOO_LARGE', 'Too many header fields');
      const target = normalizeTarget(req.url ?? '', req.method);
      log.path = target.path;
      route = this.config.routes.find((r) => r.matchesPath(target.matchPath) && r.methods.has(req.method ?? ''));
      req.url = target.forwardTarget;
      if (route === undefined) {
        if (expectsContinue) res.writeContinue();
        this.passthrough.web(req, res, this.passthroughHeaders(req, id));
        return;
      }
      log.route = route.name;
      for (const observer of this.observers) observer.started?.(route.name);
      if (route.policy.reportOnly) await this.reportOnlyUpload(context, route);
      else await this.upload(context, route);
    } catch (err) {
      const rejection = err instanceof GuardError ? err : upstreamFailure(err);
      const isGuardVerdict = !rejection.code.startsWith('UPSTREAM');
      log.outcome = isGuardVerdict ? 'rejected' : 'error';
      log.code = rejection.code;
      if (rejection instanceof RateLimitedError) log.rateLimitScope = rejection.scope;
      if (rejection.details.filename !== undefined) log.filename = rejection.details.filename;
      sendRejection(req, res, rejection, id, rejection.responseHeaders);
      if (route !== undefined && isGuardVerdict) void this.gate?.recordRejection(route.policy, context.client, rejection.code);
    }
  }

  /** Everything decided on the head; throws the refusal. Returns the RateLimit headers of the answer. */
  private async admitHead(context: RequestContext, policy: CompiledPolicy): Promise<Record<string, string>> {
    const { req, log, client } = context;
    if (this.storage?.isFull) throw new GuardError('STORAGE_FULL');
    const gate = this.gate!;
    await gate.checkBan(policy, client);
    client.apiKeyName = authenticateHead(req, policy, this.config);
    if (client.apiKeyName !== null) log.apiKey = client.apiKeyName;
    const rateLimitHeaders = await gate.admit(policy, client);
    admitBodyHeaders(req, policy);
    return rateLimitHeaders;
  }

  private async upload(context: RequestContext, route: CompiledRoute): Promise<void> {
    const { req, res, id, log, client } = context;
    const policy = route.policy;
    const gate = this.gate!;
    const rateLimitHeaders = await this.admitHead(context, policy);
    // Only now may the client send the body (RFC 9110 10.1.1): a refusal above costs it nothing.
    if (context.expectsContinue) res.writeContinue();
    const meter = gate.byteMeter(policy, client);
    const encoder = new CanonicalEncoder();
    const headers = upstreamRequestHeaders(req.rawHeaders, this.config.stripApiKey ? apiKeyHeaders(req, this.config.apiKeyHeader) : new Set());
    headers['content-type'] = encoder.contentType;
    Object.assign(headers, forwardedHeaders(req, this.config.isTrustedProxy));
    headers['x-request-id'] = id;
    if (req.headers.host !== undefined) headers.host = req.headers.host;
    const head = { method: req.method ?? 'POST', path: req.url ?? '/', headers };
    const sink: BodySink = policy.mode === 'stream' ? new StreamSink(this.upstream, head) : new SpoolSink(this.upstream, head, policy.spoolDir, policy.spoolMemoryThreshold);
    const onClientGone = (): void => {
      if (!req.complete) sink.abort();
    };
    req.once('close', onClientGone);
    const result = await filterMultipart(req, policy, encoder, sink, this.config.timeouts.bodyIdleMs, meter === null ? undefined : (bytes, fail) => meter.record(bytes, fail)).finally(() => meter?.settle());
    log.bytes = result.receivedBytes;
    log.files = result.files;
    const upstreamStarted = performance.now();
    const response = await sink.complete();
    log.upstreamMs = Math.round(performance.now() - upstreamStarted);
    log.forwardedBytes = sink.length;
    log.outcome = 'forwarded';
    res.writeHead(response.statusCode, response.statusMessage, { ...clientResponseHeaders(response.headers), ...rateLimitHeaders });
    response.relay(res);
  }

  /**
   * reportOnly: the request goes to the upstream exactly as sent (passthrough), while the same
   * checks run on a copy of the body; what would have been refused is logged and counted as
   * `wouldReject`. A team can watch the verdicts on live traffic before enforcing them.
   */
  private async reportOnlyUpload(context: RequestContext, route: CompiledRoute): Promise<void> {
    const { req, res, log } = context;
    const policy = route.policy;
    const wouldReject = (err: unknown): void => {
      // A client that went away mid-body is not a verdict on its upload. One that sent everything
      // may be gone by the time the verdict is in (the passthrough answered it first): it counts.
      if (err instanceof GuardError && (req.complete || !req.destroyed)) log.wouldReject = err.code;
    };
    let admitted = true;
    try {
      await this.admitHead(context, policy);
    } catch (err) {
      wouldReject(err);
      admitted = false;
    }
    if (context.expectsContinue) res.writeContinue();
    // the upstream's copy of the body, taken before the checks start reading (passthrough.ts)
    const forwarded = req.pipe(new PassThrough());
    req.once('close', () => {
      if (!req.complete) forwarded.destroy(new Error('client aborted the request'));
    });
    if (admitted) {
      context.verdict = filterMultipart(req, policy, new CanonicalEncoder(), new DiscardSink(), this.config.timeouts.bodyIdleMs).then((result) => {
        log.bytes = result.receivedBytes;
        log.files = result.files;
      }, wouldReject);
    }
    log.outcome = 'forwarded';
    this.passthrough.web(req, res, this.passthroughHeaders(req, context.id), forwarded);
  }
}

/** One request on its way through the guard. */
interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  id: string;
  /** filled in as the request goes; written when the response closes */
  log: RequestLogLine;
  client: Client;
  expectsContinue: boolean;
  /** report-only: settles once the shadow checks decided; the log line waits for it */
  verdict: Promise<void> | null;
}

function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  if (typeof given === 'string' && REQUEST_ID.test(given)) return given;
  const id = randomUUID();
  req.headers['x-request-id'] = id;
  return id;
}

/** Headers that carry the guard's API key, removed before forwarding when stripApiKey is set. */
function apiKeyHeaders(req: IncomingMessage, apiKeyHeader: string): Set<string> {
  const names = new Set([apiKeyHeader]);
  // Authorization is the key only when it is a Bearer token and the key header was absent
  // (api-keys.ts reads it that way); any other Authorization belongs to the upstream.
  if (req.headers[apiKeyHeader] === undefined && /^Bearer\s/i.test(req.headers.authorization ?? '')) names.add('authorization');
  return names;
}
