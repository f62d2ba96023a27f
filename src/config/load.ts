// Loading a config: YAML text -> validated -> secrets resolved -> CompiledConfig, or the list of
// EVERY problem as `file:line: key.path: message` (check-config prints them; a failed SIGHUP
// reload logs them and keeps the old config). Synchronous on purpose: it runs at start and on
// reload, reads a few small files, and callers get a plain value back.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { compileConfig } from './compile.js';
import { ConfigLocator, formatYamlError, inFileOrder, issuesFromZod, missingKeyMessage } from './diagnostics.js';
import type { ConfigIssue, LocatedMessage } from './diagnostics.js';
import { configSchema } from './schema.js';
import { expandEnvReferences, resolveApiKeyDigest } from './secrets.js';
import type { ApiKeySource, SecretContext } from './secrets.js';
import type { ApiKeyEntry, CompiledConfig } from './types.js';

export type LoadResult = { config: CompiledConfig } | { errors: string[] };

export interface LoadOptions {
  /** environment for ${VAR} references; default process.env */
  env?: SecretContext['env'];
  /** directory for relative "file:" key paths; default: the config file's directory, else cwd */
  baseDir?: string;
}

/** Values where ${VAR} is expanded before validation (a URL may need a host or password from the env). */
const ENV_EXPANDED_PATHS: readonly (readonly string[])[] = [['upstream', 'url'], ['rateLimitStore']];

export function loadConfigFile(path: string, options: LoadOptions = {}): LoadResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    return { errors: [`${path}: cannot read config: ${reason}`] };
  }
  return loadConfigText(text, path, { ...options, baseDir: options.baseDir ?? dirname(resolve(path)) });
}

export function loadConfigText(text: string, sourceName = '<inline>', options: LoadOptions = {}): LoadResult {
  const context: SecretContext = { env: options.env ?? process.env, baseDir: options.baseDir ?? process.cwd() };
  const lineCounter = new LineCounter();
  // prettyErrors off: messages stay one line; the location comes from the LineCounter instead.
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const locator = new ConfigLocator(doc, lineCounter, sourceName);
  const found: LocatedMessage[] = doc.errors.map((error) => formatYamlError(error, locator, sourceName));

  // A duplicate key leaves the document intact, so validation can still report the rest; after a
  // real syntax error the tree is a guess and schema errors would only be noise.
  if (doc.errors.some((error) => error.code !== 'DUPLICATE_KEY')) return { errors: inFileOrder(found) };

  let raw: unknown;
  try {
    raw = doc.toJS() ?? {};
  } catch (err) {
    // e.g. the alias-count guard against "billion laughs" documents
    return { errors: [...inFileOrder(found), `${sourceName}:1: ${(err as Error).message}`] };
  }

  const issues: ConfigIssue[] = [];
  const envFailures = expandEnvInPlace(raw, context, issues);
  const parsed = configSchema.safeParse(raw, { error: missingKeyMessage });
  if (!parsed.success) {
    // A value whose ${VAR} failed to expand was already reported; its schema error would repeat it.
    const zodIssues = parsed.error.issues.filter((issue) => !envFailures.some((path) => startsWith(issue.path, path)));
    issues.push(...issuesFromZod(zodIssues, configSchema));
  }
  const apiKeys = resolveApiKeys(raw, context, issues);

  found.push(...issues.map((issue) => locator.format(issue)));
  if (found.length > 0 || !parsed.success) return { errors: inFileOrder(found) };
  return { config: compileConfig(parsed.data, { source: sourceName, apiKeys }) };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function startsWith(path: readonly PropertyKey[], prefix: readonly PropertyKey[]): boolean {
  return prefix.every((segment, index) => path[index] === segment);
}

/** Expands ${VAR} in ENV_EXPANDED_PATHS of the raw object; returns the paths that failed. */
function expandEnvInPlace(raw: unknown, context: SecretContext, issues: ConfigIssue[]): (readonly string[])[] {
  const failed: (readonly string[])[] = [];
  for (const path of ENV_EXPANDED_PATHS) {
    let parent: unknown = raw;
    for (const segment of path.slice(0, -1)) parent = isRecord(parent) ? parent[segment] : undefined;
    const key = path[path.length - 1] ?? '';
    if (!isRecord(parent) || typeof parent[key] !== 'string') continue;
    try {
      parent[key] = expandEnvReferences(parent[key], context.env);
    } catch (err) {
      issues.push({ path, message: (err as Error).message });
      failed.push(path);
    }
  }
  return failed;
}

/**
 * Resolves every api key the raw config names, even when other keys are invalid, so a missing
 * env var or key file shows up in the same run as everything else.
 */
function resolveApiKeys(raw: unknown, context: SecretContext, issues: ConfigIssue[]): ApiKeyEntry[] {
  const list = isRecord(raw) && Array.isArray(raw.apiKeys) ? raw.apiKeys : [];
  const resolved: ApiKeyEntry[] = [];
  list.forEach((entry: unknown, index) => {
    if (!isRecord(entry) || typeof entry.name !== 'string' || !isApiKeySource(entry.key)) return; // the schema reports it
    try {
      resolved.push({ name: entry.name, sha256: resolveApiKeyDigest(entry.key, context) });
    } catch (err) {
      issues.push({ path: ['apiKeys', index, 'key'], message: (err as Error).message });
    }
  });
  return resolved;
}

function isApiKeySource(value: unknown): value is ApiKeySource {
  return typeof value === 'string' || (isRecord(value) && typeof value.file === 'string' && Object.keys(value).length === 1);
}
