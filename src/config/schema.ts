// The zod schema of the YAML config (SPEC "Config"). It validates, fills defaults and parses
// quantities ("50MiB", "60s", "5/s") into numbers; compile.ts then builds the hot-path closures.
// Objects are strict so a typo is an error rather than a silently ignored key. The same schema
// generates config/schema.json for editors (scripts/gen-schema.ts), so descriptions here show up
// as editor hover help.

import { z } from 'zod';
import { parseCidr } from '../admission/cidr.js';
import { parseClamdAddress, parseHostPort } from './address.js';
import { routePatternProblem } from './path-pattern.js';
import { parseDuration, parseRate, parseSize } from './units.js';
import type { RateKind } from './units.js';

/** Values the schema fills in for omitted keys; spoolDir's default is OS-dependent and lives in compile.ts. */
export const DEFAULTS = {
  listen: '0.0.0.0:8080',
  adminListen: '127.0.0.1:9090',
  upstreamUrl: 'http://127.0.0.1:5000',
  upstreamTimeout: '60s',
  headersTimeout: '10s',
  bodyIdleTimeout: '30s',
  requestTimeout: '15m',
  maxHeaderSize: '16KiB',
  maxHeaderCount: 100,
  trustProxy: ['127.0.0.1/32', '::1/128'],
  apiKeyHeader: 'X-API-KEY',
  rateLimitStore: 'memory',
  rateLimitStoreTimeout: '100ms',
  onStoreError: 'local',
  maxTrackedClients: 100_000,
  // Every body-carrying method: an upload route that only listed POST would let a multipart PUT
  // through unfiltered to an upstream that accepts it.
  routeMethods: ['POST', 'PUT', 'PATCH'],
  maxFileSize: '50MiB',
  maxRequestSize: '50MiB',
  maxFiles: 10,
  maxFields: 50,
  maxFieldSize: '64KiB',
  spoolMemoryThreshold: '1MiB',
  banWithin: '1m',
  banFor: '15m',
  storageMinFree: '1GiB',
  drainTimeout: '30s',
  scanTimeout: '30s',
  onScannerError: 'reject',
} as const;

// ---- building blocks -------------------------------------------------------------------------

/**
 * A string-or-number quantity parsed by one of the units parsers. The parser's Error message
 * becomes the issue message, so the user sees e.g. `invalid size "50 MiBs": expected ...`.
 */
function quantity<T>(expected: string, parse: (value: string | number) => T, check?: (parsed: T) => string | null) {
  return z
    .union([z.number(), z.string()], { error: `expected ${expected}` })
    .transform((value, ctx) => {
      try {
        const parsed = parse(value);
        const problem = check?.(parsed) ?? null;
        if (problem !== null) {
          ctx.addIssue({ code: 'custom', message: problem });
          return z.NEVER;
        }
        return parsed;
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    })
    .meta({ description: expected });
}

const mustBePositive = (n: number) => (n > 0 ? null : 'must be greater than 0');

const size = () => quantity('a size: bytes, or e.g. "64KiB", "50MiB", "1GiB" (1024-based), "50MB" (1000-based)', parseSize, mustBePositive);
const duration = () => quantity('a duration: seconds, or e.g. "500ms", "60s", "15m", "1h"', parseDuration, mustBePositive);
const rate = (kind: RateKind) =>
  quantity(
    kind === 'bytes' ? 'a byte rate, e.g. "100MiB/min" or "1MB/s"' : 'a request rate, e.g. "5/s", "300/min", "10/h"',
    (value) => parseRate(value, kind),
  );
const listenAddress = () => quantity('a listen address "host:port", e.g. "0.0.0.0:8080" or "[::]:8080"', parseHostPort);

/** Route, policy and key names end up in logs and metric labels. */
const identifier = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'names may only contain letters, digits, "_", "." and "-"');

const extension = z
  .string()
  .regex(/^[A-Za-z0-9]+$/, 'an extension is letters and digits without the dot, e.g. "png"')
  .transform((ext) => ext.toLowerCase());

const httpMethod = z
  .string()
  .regex(/^[A-Za-z]+$/, 'expected an HTTP method such as POST')
  .transform((method) => method.toUpperCase());

/** RFC 9110 token: what a header name may contain. */
const headerName = z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'expected an HTTP header name');

const cidr = z.string().superRefine((entry, ctx) => {
  try {
    parseCidr(entry);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/** Origin only: the guard forwards the request's own path, so a path here would be silently ignored. */
const upstreamUrl = z.string().superRefine((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: `invalid URL "${text}": expected e.g. "http://127.0.0.1:5000"` });
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    ctx.addIssue({ code: 'custom', message: `upstream URL "${text}" must use http:// or https://` });
  } else if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || url.username !== '') {
    ctx.addIssue({ code: 'custom', message: `upstream URL "${text}" must be an origin like "http://127.0.0.1:5000" (no path, query or credentials)` });
  }
});

const rateLimitStore = z
  .string()
  .transform((text, ctx): { kind: 'memory' } | { kind: 'redis'; url: string } => {
    if (text === 'memory') return { kind: 'memory' };
    if (/^rediss?:\/\//.test(text) && URL.canParse(text)) return { kind: 'redis', url: text };
    ctx.addIssue({ code: 'custom', message: `expected "memory" or a redis URL like "redis://host:6379/0", got "${text}"` });
    return z.NEVER;
  })
  .meta({ description: '"memory" (per process) or redis://host:6379/0 (buckets shared by all replicas)' });

const rateLimitStoreOptions = z
  .strictObject({
    timeout: duration()
      .prefault(DEFAULTS.rateLimitStoreTimeout)
      .meta({ description: 'redis: longest wait per call; past it the call is answered per onStoreError' }),
    onStoreError: z
      .enum(['allow', 'deny', 'local'])
      .default(DEFAULTS.onStoreError)
      .meta({
        description:
          'redis unreachable or too slow: allow (let requests through), deny (429), local (limit with an in-process bucket meanwhile)',
      }),
    maxTrackedClients: z
      .number()
      .int()
      .positive()
      .default(DEFAULTS.maxTrackedClients)
      .meta({ description: 'in-process store (memory, or the redis "local" fallback): clients tracked at most; bounds memory' }),
  })
  .prefault({})
  .meta({ description: 'tuning of rateLimitStore' });

// ---- sections --------------------------------------------------------------------------------

export const policySchema = z.strictObject({
  allow: z.array(extension).meta({ description: 'extension whitelist, case-insensitive, without the dot' }),
  verifyContent: z.boolean().default(true).meta({ description: 'magic bytes must agree with the extension' }),
  maxFileSize: size().prefault(DEFAULTS.maxFileSize),
  maxRequestSize: size().prefault(DEFAULTS.maxRequestSize),
  maxFiles: z.number().int().nonnegative().default(DEFAULTS.maxFiles),
  maxFields: z.number().int().nonnegative().default(DEFAULTS.maxFields),
  maxFieldSize: size().prefault(DEFAULTS.maxFieldSize),
  requireApiKey: z.boolean().default(false),
  rateLimit: z
    .strictObject({
      rate: rate('count'),
      burst: z.number().int().positive().optional().meta({ description: 'bucket size in requests; default: one second of rate, at least 1' }),
    })
    .optional()
    .meta({ description: 'per client IP token bucket' }),
  keyRateLimit: z
    .strictObject({
      rate: rate('count'),
      burst: z.number().int().positive().optional().meta({ description: 'bucket size in requests; default: one second of rate, at least 1' }),
    })
    .optional()
    .meta({ description: 'per API key token bucket (requests that presented a valid key)' }),
  uploadRate: z
    .strictObject({
      rate: rate('bytes'),
      burst: size().optional().meta({ description: 'bucket size in bytes; default: maxRequestSize, or one second of rate if larger' }),
    })
    .optional()
    .meta({ description: 'per client IP byte bucket' }),
  filenames: z.enum(['secure', 'uuid', 'keep']).default('secure'),
  filenameRules: z
    .strictObject({
      controlCharacters: z
        .enum(['reject', 'allow'])
        .default('reject')
        .meta({ description: 'NUL, C0/C1 control and bidi characters (U+202E "gnp.php") in a filename -> MALFORMED_MULTIPART' }),
      doubleExtensions: z
        .enum(['reject', 'strip', 'allow'])
        .default('reject')
        .meta({ description: 'an executable extension before the final one (shell.php.jpg, x.asp;.jpg, x.jsp%00.png): reject, or strip it' }),
      trailingDotsAndSpaces: z
        .enum(['reject', 'strip', 'allow'])
        .default('reject')
        .meta({ description: 'dots or spaces at the end of a filename ("photo.jpg. ", Windows drops them): reject, or strip them' }),
      windowsReservedNames: z
        .enum(['reject', 'prefix', 'allow'])
        .default('reject')
        .meta({ description: 'CON, PRN, AUX, NUL, COM0-9, LPT0-9, CONIN$, CONOUT$, CLOCK$ before the first dot: reject, or prefix "_"' }),
      maxLength: z
        .number()
        .int()
        .min(16)
        .max(4096)
        .default(255)
        .meta({ description: 'longest forwarded filename in UTF-8 bytes (Linux NAME_MAX is 255)' }),
      executableExtensions: z
        .array(extension)
        .optional()
        .meta({ description: 'extensions that doubleExtensions looks for before the final one; default: the built-in list (docs/content-inspection.md)' }),
    })
    .prefault({})
    .meta({ description: 'dangerous-name rules beyond secure_filename; secure and keep modes get all, uuid only controlCharacters and maxLength' }),
  mode: z.enum(['spool', 'stream']).default('spool'),
  spoolDir: z.string().min(1).optional().meta({ description: 'default: <os tmpdir>/upload-guard' }),
  spoolMemoryThreshold: size().prefault(DEFAULTS.spoolMemoryThreshold).meta({
    description: 'spooled bodies up to this size stay in memory, larger ones go to a temp file in spoolDir',
  }),
  reportOnly: z.boolean().default(false).meta({ description: 'log and count what would be rejected, forward anyway' }),
  ban: z
    .strictObject({
      after: z.number().int().positive(),
      within: duration().prefault(DEFAULTS.banWithin),
      for: duration().prefault(DEFAULTS.banFor),
    })
    .optional()
    .meta({ description: 'rejections from one IP that earn it a ban' }),
  scan: z
    .strictObject({
      clamd: z
        .string()
        .transform((text, ctx) => {
          try {
            return parseClamdAddress(text);
          } catch (err) {
            ctx.addIssue({ code: 'custom', message: (err as Error).message });
            return z.NEVER;
          }
        })
        .meta({ description: 'where clamd listens: "tcp://host:3310" or "unix:/run/clamav/clamd.ctl"' }),
      timeout: duration()
        .prefault(DEFAULTS.scanTimeout)
        .meta({ description: 'longest wait for clamd: to connect, to take the next bytes, to answer once a file ended' }),
      onScannerError: z
        .enum(['reject', 'allow'])
        .default(DEFAULTS.onScannerError)
        .meta({
          description:
            'a file that could not be scanned (clamd down, too slow, failing, or the file over maxScanSize / StreamMaxLength): ' +
            'reject (fail closed: 502/504, 413 for size) or allow (forward it unscanned, logged)',
        }),
      maxScanSize: size()
        .optional()
        .meta({ description: "files over this size are not sent to clamd and count as unscannable; keep it at most clamd's StreamMaxLength" }),
    })
    .optional()
    .meta({ description: 'scan every file with clamd (INSTREAM) while it streams; infected -> 400 CONTENT_MISMATCH "Malware detected: <signature>"' }),
});

export const routeSchema = z.strictObject({
  name: identifier,
  path: z
    .string()
    .superRefine((pattern, ctx) => {
      const problem = routePatternProblem(pattern);
      if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
    })
    .meta({ description: 'exact path ("/upload") or prefix ("/api/files/*" matches everything below /api/files/)' }),
  methods: z.array(httpMethod).min(1).default([...DEFAULTS.routeMethods]),
  policy: z.string().min(1).meta({ description: 'name of an entry in policies' }),
});

export const apiKeySchema = z.strictObject({
  name: identifier,
  key: z
    .union([z.string().min(1), z.strictObject({ file: z.string().min(1) })], {
      error: 'expected a key string ("${ENV_VAR}", "file: /path", "sha256:<hex>" or inline) or { file: /path }',
    })
    .meta({ description: 'inline value, "${ENV_VAR}", "file: /run/secrets/x" (or { file: ... }), or "sha256:<64 hex>"' }),
});

export const configSchema = z
  .strictObject({
    listen: listenAddress().prefault(DEFAULTS.listen),
    admin: z
      .union([z.literal(false), z.strictObject({ listen: listenAddress().prefault(DEFAULTS.adminListen) })], {
        error: 'expected { listen: "host:port" } or false',
      })
      .prefault({})
      .meta({ description: '/metrics /healthz /readyz; false disables the admin listener' }),
    upstream: z
      .strictObject({
        url: upstreamUrl.default(DEFAULTS.upstreamUrl),
        timeout: duration().prefault(DEFAULTS.upstreamTimeout).meta({ description: 'headers timeout and body idle timeout towards the upstream' }),
      })
      .prefault({}),
    workers: z
      .union([z.number().int().min(1).max(64), z.literal('auto')], { error: 'expected a number of processes (1-64) or "auto" (one per CPU)' })
      .default(1)
      .meta({
        description:
          'processes serving the public port (node:cluster); more than 1: rate-limit buckets stay exact through the primary (memory store) or Redis, and the admin listener runs in the primary',
      }),
    drainTimeout: duration()
      .prefault(DEFAULTS.drainTimeout)
      .meta({ description: 'SIGTERM: how long in-flight requests may take to finish before the guard exits anyway' }),
    timeouts: z
      .strictObject({
        headers: duration().prefault(DEFAULTS.headersTimeout),
        bodyIdle: duration().prefault(DEFAULTS.bodyIdleTimeout),
        request: duration()
          .prefault(DEFAULTS.requestTimeout)
          .meta({ description: 'whole request, head and body: a client trickling bytes just inside bodyIdle is still cut off (0: off)' }),
      })
      .prefault({})
      .meta({ description: 'client side; exceeded -> 408 REQUEST_TIMEOUT' }),
    headerLimits: z
      .strictObject({
        maxSize: size()
          .prefault(DEFAULTS.maxHeaderSize)
          .meta({ description: 'request line plus headers, bytes; over it -> 431 HEADERS_TOO_LARGE (takes effect at restart)' }),
        maxCount: z
          .number()
          .int()
          .positive()
          .default(DEFAULTS.maxHeaderCount)
          .meta({ description: 'header fields per request; over it -> 431 HEADERS_TOO_LARGE' }),
      })
      .prefault({})
      .meta({ description: 'limits on the request head, checked before anything else' }),
    trustProxy: z
      .array(cidr)
      .default([...DEFAULTS.trustProxy])
      .meta({ description: "only these peers' X-Forwarded-For is believed (CIDRs or single addresses)" }),
    apiKeys: z.array(apiKeySchema).default([]),
    apiKeyHeader: headerName.default(DEFAULTS.apiKeyHeader),
    stripApiKey: z
      .boolean()
      .default(false)
      .meta({ description: "remove the guard's API key (apiKeyHeader, or the Bearer Authorization that carried it) before forwarding" }),
    rateLimitStore: rateLimitStore.prefault(DEFAULTS.rateLimitStore),
    rateLimitStoreOptions,
    routes: z.array(routeSchema).default([]).meta({ description: 'first match wins on the normalised path; no match -> passthrough' }),
    policies: z.record(identifier, policySchema).default({}),
    storage: z
      .strictObject({ path: z.string().min(1), minFree: size().prefault(DEFAULTS.storageMinFree) })
      .optional()
      .meta({ description: 'refuse uploads while the volume is nearly full' }),
  })
  // `when` makes the cross checks run even when other keys already failed, so one run reports
  // every mistake; the checks therefore read the value defensively.
  .superRefine((config, ctx) => addCrossReferenceIssues(config, ctx), { when: () => true });

export type ValidatedConfig = z.output<typeof configSchema>;
export type ValidatedPolicy = z.output<typeof policySchema>;

// ---- checks that span sections ---------------------------------------------------------------

interface IssueSink {
  addIssue(issue: { code: 'custom'; message: string; path: PropertyKey[] }): void;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function entries(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? value.map((item) => (isRecord(item) ? item : {})) : [];
}

function reportDuplicateNames(list: Record<string, unknown>[], section: string, ctx: IssueSink): void {
  const firstIndex = new Map<string, number>();
  list.forEach((item, index) => {
    if (typeof item.name !== 'string') return;
    const first = firstIndex.get(item.name);
    if (first === undefined) firstIndex.set(item.name, index);
    else ctx.addIssue({ code: 'custom', message: `duplicate name "${item.name}" (also used by ${section}[${first}])`, path: [section, index, 'name'] });
  });
}

function addCrossReferenceIssues(config: unknown, ctx: IssueSink): void {
  if (!isRecord(config)) return;
  const routes = entries(config.routes);
  const apiKeys = entries(config.apiKeys);
  const policies = isRecord(config.policies) ? config.policies : {};

  reportDuplicateNames(routes, 'routes', ctx);
  reportDuplicateNames(apiKeys, 'apiKeys', ctx);

  routes.forEach((route, index) => {
    if (typeof route.policy === 'string' && !Object.hasOwn(policies, route.policy)) {
      const known = Object.keys(policies);
      const hint = known.length === 0 ? 'no policies are defined' : `known: ${known.join(', ')}`;
      ctx.addIssue({ code: 'custom', message: `unknown policy "${route.policy}" (${hint})`, path: ['routes', index, 'policy'] });
    }
  });

  if (apiKeys.length === 0) {
    for (const [name, policy] of Object.entries(policies)) {
      if (isRecord(policy) && policy.requireApiKey === true) {
        ctx.addIssue({
          code: 'custom',
          message: 'requireApiKey is true but apiKeys is empty, so every request would be refused',
          path: ['policies', name, 'requireApiKey'],
        });
      }
    }
  }

  // The admin endpoints must never be reachable on the public port (SPEC).
  const listen = config.listen;
  const admin = config.admin;
  if (isRecord(listen) && isRecord(admin) && isRecord(admin.listen)) {
    if (typeof listen.port === 'number' && listen.port !== 0 && admin.listen.port === listen.port) {
      ctx.addIssue({ code: 'custom', message: `admin must not share the public port ${listen.port}`, path: ['admin', 'listen'] });
    }
  }
}
