// Validated config -> CompiledConfig: everything the hot path needs as plain values and closures
// built once here (route matchers, the trusted-proxy matcher, lower-cased header names), so no
// request ever parses a config string.

import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileCidrList } from '../admission/cidr.js';
import { DEFAULT_EXECUTABLE_EXTENSIONS } from '../upload/filename-rules.js';
import { compilePathPattern } from './path-pattern.js';
import type { ValidatedConfig, ValidatedPolicy } from './schema.js';
import type { ApiKeyEntry, CompiledConfig, CompiledPolicy, CompiledRoute, TokenBucketParams } from './types.js';

export const DEFAULT_SPOOL_DIR = join(tmpdir(), 'upload-guard');

export interface CompileContext {
  /** path of the YAML file, for logs and messages */
  source: string;
  /** api keys with their secrets already resolved (secrets.ts) */
  apiKeys: readonly ApiKeyEntry[];
}

export function compilePolicy(name: string, policy: ValidatedPolicy): CompiledPolicy {
  const rateLimit: TokenBucketParams | null = policy.rateLimit === undefined ? null : requestBucket(policy.rateLimit);
  const uploadRate: TokenBucketParams | null =
    policy.uploadRate === undefined
      ? null
      : // Default burst: room for one maximal request, so a single allowed upload is never refused outright.
        {
          ratePerSecond: policy.uploadRate.rate,
          burst: policy.uploadRate.burst ?? Math.max(policy.maxRequestSize, Math.ceil(policy.uploadRate.rate)),
        };
  return {
    name,
    allow: new Set(policy.allow),
    verifyContent: policy.verifyContent,
    maxFileSize: policy.maxFileSize,
    maxRequestSize: policy.maxRequestSize,
    maxFiles: policy.maxFiles,
    maxFields: policy.maxFields,
    maxFieldSize: policy.maxFieldSize,
    requireApiKey: policy.requireApiKey,
    rateLimit,
    // Only present when configured, so a policy without it reads exactly as before.
    ...(policy.keyRateLimit === undefined ? {} : { keyRateLimit: requestBucket(policy.keyRateLimit) }),
    uploadRate,
    filenames: policy.filenames,
    filenameRules: {
      controlCharacters: policy.filenameRules.controlCharacters,
      doubleExtensions: policy.filenameRules.doubleExtensions,
      trailingDotsAndSpaces: policy.filenameRules.trailingDotsAndSpaces,
      windowsReservedNames: policy.filenameRules.windowsReservedNames,
      maxLength: policy.filenameRules.maxLength,
      executableExtensions: new Set(policy.filenameRules.executableExtensions ?? DEFAULT_EXECUTABLE_EXTENSIONS),
    },
    mode: policy.mode,
    spoolDir: policy.spoolDir ?? DEFAULT_SPOOL_DIR,
    spoolMemoryThreshold: policy.spoolMemoryThreshold,
    reportOnly: policy.reportOnly,
    ban: policy.ban === undefined ? null : { after: policy.ban.after, withinMs: policy.ban.within, forMs: policy.ban.for },
    ...(policy.scan === undefined
      ? {}
      : {
          scan: {
            clamd: policy.scan.clamd,
            timeoutMs: policy.scan.timeout,
            onScannerError: policy.scan.onScannerError,
            maxScanSize: policy.scan.maxScanSize ?? null,
          },
        }),
  };
}

/** Default burst: one second's worth, and at least one request so the bucket can ever pass. */
function requestBucket(limit: { rate: number; burst?: number | undefined }): TokenBucketParams {
  return { ratePerSecond: limit.rate, burst: limit.burst ?? Math.max(1, Math.ceil(limit.rate)) };
}

export function compileConfig(config: ValidatedConfig, context: CompileContext): CompiledConfig {
  const policies = new Map(Object.entries(config.policies).map(([name, policy]) => [name, compilePolicy(name, policy)]));
  const routes = config.routes.map((route): CompiledRoute => {
    const policy = policies.get(route.policy);
    // The schema's cross checks guarantee this; reaching it means compile was fed unvalidated input.
    if (policy === undefined) throw new Error(`route "${route.name}" names unknown policy "${route.policy}"`);
    return {
      name: route.name,
      pattern: route.path,
      matchesPath: compilePathPattern(route.path),
      methods: new Set(route.methods),
      policy,
    };
  });
  return {
    source: context.source,
    listen: config.listen,
    admin: config.admin === false ? null : config.admin.listen,
    upstream: { url: new URL(config.upstream.url), timeoutMs: config.upstream.timeout },
    timeouts: { headersMs: config.timeouts.headers, bodyIdleMs: config.timeouts.bodyIdle, requestMs: config.timeouts.request },
    headerLimits: { maxSize: config.headerLimits.maxSize, maxCount: config.headerLimits.maxCount },
    workers: config.workers === 'auto' ? availableParallelism() : config.workers,
    drainTimeoutMs: config.drainTimeout,
    isTrustedProxy: compileCidrList(config.trustProxy),
    apiKeys: context.apiKeys,
    apiKeyHeader: config.apiKeyHeader.toLowerCase(),
    rateLimitStore: config.rateLimitStore,
    rateLimitStoreOptions: {
      timeoutMs: config.rateLimitStoreOptions.timeout,
      onStoreError: config.rateLimitStoreOptions.onStoreError,
      maxTrackedClients: config.rateLimitStoreOptions.maxTrackedClients,
    },
    stripApiKey: config.stripApiKey,
    routes,
    storage: config.storage === undefined ? null : { path: config.storage.path, minFree: config.storage.minFree },
  };
}
