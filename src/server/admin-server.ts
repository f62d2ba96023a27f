// The admin listener (config `admin.listen`, never the public port): Prometheus metrics, health
// and readiness probes, and a small live status page.
//
//   GET /metrics      Prometheus text exposition (GuardMetrics' registry)
//   GET /healthz      200 {"status":"ok"} while the process is alive
//   GET /readyz       200 {"status":"ready"} when the config is loaded, the upstream accepts a TCP
//                     connection (probed with a short timeout, result cached ~1 s) and the guard
//                     is not draining; else 503 {"status":"not ready","reasons":[...]}
//   GET /status.json  the StatusBoard snapshot + readiness + optional limiter counts
//   GET /             self-contained HTML page polling /status.json every 2 s
// Anything else is 404; methods other than GET/HEAD are 405.

import { createHash } from 'node:crypto';
import { statfs } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import type { CompiledConfig, HostPort } from '../config/types.js';
import type { GuardMetrics } from '../observe/metrics.js';
import type { StatusBoard, StatusSnapshot } from '../observe/status-board.js';

export type LimiterStats = Record<string, number>;

export interface AdminServerOptions {
  metrics: GuardMetrics;
  /** the status page's data; without it the page shows readiness only */
  board?: StatusBoard;
  /** counts for the page, e.g. { trackedBuckets, activeBans }; errors are shown, not thrown */
  limiterStats?: () => LimiterStats | Promise<LimiterStats>;
  /** TCP connect timeout of the upstream probe; default 1000 ms */
  probeTimeoutMs?: number;
  /** how long a probe result is reused; default 1000 ms */
  probeCacheMs?: number;
}

export interface Readiness {
  ready: boolean;
  reasons: string[];
}

interface ProbeResult {
  at: number;
  target: string;
  error: string | null;
}

export class AdminServer {
  readonly server: Server;
  #config: CompiledConfig;
  readonly #metrics: GuardMetrics;
  readonly #board: StatusBoard | undefined;
  readonly #limiterStats: AdminServerOptions['limiterStats'];
  readonly #probeTimeoutMs: number;
  readonly #probeCacheMs: number;
  #draining = false;
  #probe: ProbeResult | null = null;
  #probing: Promise<ProbeResult> | null = null;

  constructor(config: CompiledConfig, options: AdminServerOptions) {
    this.#config = config;
    this.#metrics = options.metrics;
    this.#board = options.board;
    this.#limiterStats = options.limiterStats;
    this.#probeTimeoutMs = options.probeTimeoutMs ?? 1000;
    this.#probeCacheMs = options.probeCacheMs ?? 1000;
    this.server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, req, 500, { error: (err as Error).message ?? 'internal error' });
        else res.destroy();
      });
    });
    this.server.keepAliveTimeout = 10_000;
  }

  /** Listens on config.admin (or the given address). */
  listen(address: HostPort | null = this.#config.admin): Promise<HostPort> {
    if (address === null) return Promise.reject(new Error('admin listener disabled (admin: false)'));
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(address.port, address.host, () => {
        this.server.off('error', reject);
        const bound = this.server.address();
        resolve({ host: address.host, port: typeof bound === 'object' && bound ? bound.port : address.port });
      });
    });
  }

  async close(): Promise<void> {
    if (!this.server.listening) return;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }

  /** While draining, /readyz answers 503 so load balancers stop sending new requests. */
  setDraining(draining: boolean): void {
    this.#draining = draining;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** After a successful reload: the upstream to probe may have changed. */
  setConfig(config: CompiledConfig): void {
    if (config.upstream.url.origin !== this.#config.upstream.url.origin) this.#probe = null;
    this.#config = config;
  }

  async readiness(): Promise<Readiness> {
    const reasons: string[] = [];
    if (this.#draining) reasons.push('draining');
    const probe = await this.#probeUpstream();
    if (probe.error !== null) reasons.push(`upstream ${probe.target} unreachable: ${probe.error}`);
    return { ready: reasons.length === 0, reasons };
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      sendJson(res, req, 405, { error: 'method not allowed' });
      return;
    }
    switch (path) {
      case '/metrics': {
        await this.#updateStorage();
        const text = await this.#metrics.metrics();
        send(res, req, 200, this.#metrics.contentType, text);
        return;
      }
      case '/healthz':
        sendJson(res, req, 200, { status: 'ok' });
        return;
      case '/readyz': {
        const readiness = await this.readiness();
        sendJson(res, req, readiness.ready ? 200 : 503, readiness.ready ? { status: 'ready' } : { status: 'not ready', reasons: readiness.reasons });
        return;
      }
      case '/status.json':
        sendJson(res, req, 200, await this.statusJson());
        return;
      case '/':
      case '/index.html':
        res.setHeader('content-security-policy', PAGE_CSP);
        res.setHeader('x-frame-options', 'DENY');
        send(res, req, 200, 'text/html; charset=utf-8', renderPage(await this.statusJson()));
        return;
      default:
        sendJson(res, req, 404, { error: 'not found', endpoints: ['/metrics', '/healthz', '/readyz', '/status.json', '/'] });
    }
  }

  /** The data of the status page. */
  async statusJson(): Promise<StatusJson> {
    const readiness = await this.readiness();
    let limiter: LimiterStats | null = null;
    let limiterError: string | undefined;
    if (this.#limiterStats !== undefined) {
      try {
        limiter = await this.#limiterStats();
      } catch (err) {
        limiterError = (err as Error).message;
      }
    }
    return {
      ready: readiness.ready,
      reasons: readiness.reasons,
      draining: this.#draining,
      upstream: this.#config.upstream.url.origin,
      status: this.#board?.snapshot() ?? null,
      limiter,
      ...(limiterError !== undefined ? { limiterError } : {}),
    };
  }

  async #updateStorage(): Promise<void> {
    const storage = this.#config.storage;
    if (storage === null) return;
    try {
      const stats = await statfs(storage.path);
      this.#metrics.storageFree(Number(stats.bavail) * Number(stats.bsize));
    } catch {
      // volume gone or unreadable: keep the last value; the guard's own storage check reports it
    }
  }

  #probeUpstream(): Promise<ProbeResult> {
    const url = this.#config.upstream.url;
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    const target = `${url.hostname}:${port}`;
    const cached = this.#probe;
    if (cached !== null && cached.target === target && Date.now() - cached.at < this.#probeCacheMs) return Promise.resolve(cached);
    if (this.#probing !== null) return this.#probing;
    this.#probing = tcpProbe(host, port, this.#probeTimeoutMs).then((error) => {
      const result = { at: Date.now(), target, error };
      this.#probe = result;
      this.#probing = null;
      return result;
    });
    return this.#probing;
  }
}

export interface StatusJson {
  ready: boolean;
  reasons: string[];
  draining: boolean;
  upstream: string;
  status: StatusSnapshot | null;
  limiter: LimiterStats | null;
  limiterError?: string;
}

/** null when a TCP connection was accepted within timeoutMs, else why not. */
function tcpProbe(host: string, port: number, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (error: string | null): void => {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.destroy();
      resolve(error);
    };
    const timer = setTimeout(() => done(`no connection within ${timeoutMs} ms`), timeoutMs);
    socket.once('connect', () => done(null));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
  });
}

function send(res: ServerResponse, req: IncomingMessage, status: number, contentType: string, body: string): void {
  const bytes = Buffer.from(body, 'utf8');
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': bytes.length,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

function sendJson(res: ServerResponse, req: IncomingMessage, status: number, value: unknown): void {
  // \u003c keeps a client-supplied "</script>" inert even if the JSON ends up inside HTML
  send(res, req, status, 'application/json; charset=utf-8', `${JSON.stringify(value).replace(/</g, '\\u003c')}\n`);
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

// ---- the status page -----------------------------------------------------------------------

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{display:flex;gap:1rem;align-items:center;padding:.8rem 1.2rem;background:#1d2330;color:#fff}
header h1{font-size:1.1rem;margin:0;flex:1}
.badge{padding:.15rem .6rem;border-radius:1rem;font-weight:600}
.ok{background:#2e9d5b}.bad{background:#c93c3c}
main{padding:1rem 1.2rem;display:grid;gap:1rem}
.cards{display:flex;gap:1rem;flex-wrap:wrap}
.card{background:#fff;border-radius:6px;padding:.7rem 1rem;min-width:9rem;box-shadow:0 1px 2px #0002}
.card b{display:block;font-size:1.5rem}
section{background:#fff;border-radius:6px;padding:.7rem 1rem;box-shadow:0 1px 2px #0002}
h2{font-size:1rem;margin:.2rem 0 .6rem}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #e4e6eb;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
th{font-weight:600;color:#555;white-space:nowrap}
#recent td:nth-child(-n+6){white-space:nowrap}
.muted{color:#777}
`;

// Builds every node with textContent: nothing from the JSON is ever parsed as HTML.
const SCRIPT = `
(function(){
  function el(tag, text, cls){var e=document.createElement(tag);if(text!==undefined)e.textContent=String(text);if(cls)e.className=cls;return e;}
  function rows(id, list, empty){
    var body=document.getElementById(id);body.replaceChildren();
    if(list.length===0){var tr=el('tr');var td=el('td',empty,'muted');td.colSpan=9;tr.append(td);body.append(tr);return;}
    list.forEach(function(cells){var tr=el('tr');cells.forEach(function(c){tr.append(el('td',c));});body.append(tr);});
  }
  function set(id, text){document.getElementById(id).textContent=String(text);}
  function render(s){
    var badge=document.getElementById('ready');
    badge.textContent=s.ready?'ready':(s.draining?'draining':'not ready');
    badge.className='badge '+(s.ready?'ok':'bad');
    set('reasons', s.reasons.join('; '));
    var st=s.status;
    if(st){
      set('rps', st.rates.requestsPerSecond);
      set('rejps', st.rates.rejectionsPerSecond);
      set('total', st.totals.requests);
      set('inflight', Object.values(st.inflight).reduce(function(a,b){return a+b;},0));
      set('uptime', st.uptimeSeconds+' s');
      set('window', st.rateWindowSeconds);
      var codes=Object.keys(Object.assign({}, st.totals.byCode, st.rates.byCode)).sort();
      rows('codes', codes.map(function(c){return [c, st.rates.byCode[c]||0, st.totals.byCode[c]||0];}), 'no rejections');
      rows('recent', st.recent.map(function(r){return [r.time, r.route, r.ip, r.method, r.status, r.code, r.filename||'', r.outcome];}), 'no rejections');
    }
    var lim=s.limiter||{};
    rows('limiter', Object.keys(lim).sort().map(function(k){return [k, lim[k]];}), s.limiterError?('unavailable: '+s.limiterError):'not provided');
    set('updated', new Date().toLocaleTimeString());
  }
  function poll(){
    fetch('status.json',{cache:'no-store'}).then(function(r){return r.json();}).then(render)
      .catch(function(e){set('updated','update failed: '+e);})
      .finally(function(){setTimeout(poll,2000);});
  }
  setTimeout(poll,2000);
})();
`;

const hash = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
const PAGE_CSP = `default-src 'none'; script-src ${hash(SCRIPT)}; style-src ${hash(STYLE)}; connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

function tableRows(list: Array<Array<string | number>>, empty: string): string {
  if (list.length === 0) return `<tr><td class="muted" colspan="9">${escapeHtml(empty)}</td></tr>`;
  return list.map((cells) => `<tr>${cells.map((c) => `<td>${escapeHtml(String(c))}</td>`).join('')}</tr>`).join('');
}

/** The page with the current state already rendered (usable without JS); the script refreshes it. */
function renderPage(s: StatusJson): string {
  const st = s.status;
  const codes = st === null ? [] : [...new Set([...Object.keys(st.totals.byCode), ...Object.keys(st.rates.byCode)])].sort();
  const inflight = st === null ? 0 : Object.values(st.inflight).reduce((a, b) => a + b, 0);
  const limiter = s.limiter ?? {};
  const readyText = s.ready ? 'ready' : s.draining ? 'draining' : 'not ready';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>upload-guard status</title><style>${STYLE}</style></head>
<body>
<header><h1>upload-guard</h1><span class="muted">upstream ${escapeHtml(s.upstream)}</span>
<span id="ready" class="badge ${s.ready ? 'ok' : 'bad'}">${escapeHtml(readyText)}</span></header>
<main>
<div class="muted" id="reasons">${escapeHtml(s.reasons.join('; '))}</div>
<div class="cards">
<div class="card">requests/s<b id="rps">${st?.rates.requestsPerSecond ?? 0}</b></div>
<div class="card">rejections/s<b id="rejps">${st?.rates.rejectionsPerSecond ?? 0}</b></div>
<div class="card">in flight<b id="inflight">${inflight}</b></div>
<div class="card">requests since start<b id="total">${st?.totals.requests ?? 0}</b></div>
<div class="card">uptime<b id="uptime">${st?.uptimeSeconds ?? 0} s</b></div>
</div>
<section><h2>Rejections by code <span class="muted">(rate over the last <span id="window">${st?.rateWindowSeconds ?? 60}</span> s)</span></h2>
<table><thead><tr><th>code</th><th>per second</th><th>since start</th></tr></thead>
<tbody id="codes">${tableRows(codes.map((c) => [c, st?.rates.byCode[c] ?? 0, st?.totals.byCode[c] ?? 0]), 'no rejections')}</tbody></table></section>
<section><h2>Recent rejections</h2>
<table><thead><tr><th>time</th><th>route</th><th>client</th><th>method</th><th>status</th><th>code</th><th>file</th><th>outcome</th></tr></thead>
<tbody id="recent">${tableRows((st?.recent ?? []).map((r) => [r.time, r.route, r.ip, r.method, r.status, r.code, r.filename ?? '', r.outcome]), 'no rejections')}</tbody></table></section>
<section><h2>Rate limiter</h2>
<table><thead><tr><th>what</th><th>count</th></tr></thead>
<tbody id="limiter">${tableRows(Object.keys(limiter).sort().map((k) => [k, limiter[k] ?? 0]), s.limiterError !== undefined ? `unavailable: ${s.limiterError}` : 'not provided')}</tbody></table></section>
<div class="muted">updated <span id="updated">${escapeHtml(new Date().toLocaleTimeString('en-GB'))}</span>; refreshes every 2 s</div>
</main>
<script>${SCRIPT}</script>
</body></html>
`;
}
