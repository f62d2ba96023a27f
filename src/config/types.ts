// The compiled configuration: what the hot path reads. Everything here is a plain value or a
// closure built once at load/reload time (ARCHITECTURE idea 5): no strings to parse per request.

import type { FilenameRules } from '../upload/filename-rules.js';

export type FilenameMode = 'secure' | 'uuid' | 'keep';
export type ForwardMode = 'spool' | 'stream';

export interface HostPort {
  host: string;
  port: number;
}

export interface TokenBucketParams {
  /** tokens added per second */
  ratePerSecond: number;
  /** bucket capacity */
  burst: number;
}

export interface BanParams {
  after: number;
  withinMs: number;
  forMs: number;
}

/** Where clamd listens: tcp://host:port or unix:/path. */
export type ClamdAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** Malware scanning of every file part (policy `scan`). */
export interface ScanParams {
  clamd: ClamdAddress;
  /** longest wait for clamd: connecting, accepting the next bytes, answering after the file ended */
  timeoutMs: number;
  /** scanner unreachable, too slow, failing, or the file over a size limit: refuse (fail closed) or let it through unscanned */
  onScannerError: 'reject' | 'allow';
  /** files over this many bytes are not sent to clamd; they count as unscannable (onScannerError) */
  maxScanSize: number | null;
}

export interface CompiledPolicy {
  name: string;
  /** lower-case extensions without the dot */
  allow: ReadonlySet<string>;
  verifyContent: boolean;
  maxFileSize: number;
  maxRequestSize: number;
  maxFiles: number;
  maxFields: number;
  maxFieldSize: number;
  requireApiKey: boolean;
  rateLimit: TokenBucketParams | null;
  /** per API key bucket; absent when not configured */
  keyRateLimit?: TokenBucketParams;
  /** bytes per second budget per client IP */
  uploadRate: TokenBucketParams | null;
  filenames: FilenameMode;
  /** dangerous-name rules applied on top of the filename mode (upload/filename-rules.ts) */
  filenameRules: FilenameRules;
  mode: ForwardMode;
  spoolDir: string;
  /** canonical bodies up to this many bytes stay in memory, larger ones go to a temp file */
  spoolMemoryThreshold: number;
  reportOnly: boolean;
  ban: BanParams | null;
  /** malware scanning with clamd; absent when not configured */
  scan?: ScanParams;
}

export interface CompiledRoute {
  name: string;
  /** the configured pattern, for logs and error messages */
  pattern: string;
  /** true when the normalised path matches this route's pattern */
  matchesPath: (normalisedPath: string) => boolean;
  /** upper-case method names */
  methods: ReadonlySet<string>;
  policy: CompiledPolicy;
}

export interface ApiKeyEntry {
  name: string;
  /** sha256 of the key; candidates are hashed and compared in constant time */
  sha256: Buffer;
}

export interface CompiledConfig {
  /** path of the YAML file it came from ('<inline>' when built from a string) */
  source: string;
  listen: HostPort;
  admin: HostPort | null;
  upstream: {
    url: URL;
    /** headers timeout and body idle timeout towards the upstream */
    timeoutMs: number;
  };
  timeouts: {
    headersMs: number;
    bodyIdleMs: number;
    /** whole request (head and body); 0: no limit */
    requestMs: number;
  };
  headerLimits: {
    /** bytes of request line and headers */
    maxSize: number;
    /** header fields */
    maxCount: number;
  };
  /** processes serving the public port ("auto" already resolved to the CPU count) */
  workers: number;
  /** SIGTERM: longest wait for in-flight requests before exiting */
  drainTimeoutMs: number;
  /** true when the peer address is a trusted proxy whose X-Forwarded-For is believed */
  isTrustedProxy: (ip: string) => boolean;
  apiKeys: readonly ApiKeyEntry[];
  /** lower-case header name */
  apiKeyHeader: string;
  rateLimitStore: { kind: 'memory' } | { kind: 'redis'; url: string };
  rateLimitStoreOptions: {
    /** redis: longest wait per call before the onStoreError answer */
    timeoutMs: number;
    /** redis unreachable or too slow: allow, deny (429), or limit with an in-process bucket */
    onStoreError: 'allow' | 'deny' | 'local';
    /** bound of in-process bucket/ban maps (memory store, redis 'local' fallback) */
    maxTrackedClients: number;
  };
  /** remove the guard's API key from forwarded requests */
  stripApiKey: boolean;
  routes: readonly CompiledRoute[];
  storage: { path: string; minFree: number } | null;
}
