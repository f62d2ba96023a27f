// API key check (policy requireApiKey): which configured key, if any, the request presents.
//
// The key comes from the configured header (apiKeyHeader, default X-API-KEY) or, only when that
// header is absent, from `Authorization: Bearer <key>`. The configured header wins so that an
// upstream's own Authorization scheme can travel alongside the guard's key.
//
// Timing: the candidate is hashed with sha256 and compared with crypto.timingSafeEqual against
// EVERY configured digest, without stopping at a match, so neither the key's content nor its
// position in the list shows in the response time. Comparing digests also makes every
// comparison the same length whatever the candidate's length.
//
// A request that carries the key header twice (or two Authorization headers) is ambiguous: a
// proxy in front may have read the other one. It is refused. Node folds repeated headers in
// req.headers (custom ones joined with ", ", Authorization keeps the first), so pass
// req.headersDistinct to see repetitions; req.headers works too, and a joined value simply
// matches no key.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiKeyEntry } from '../config/types.js';

/** req.headers or req.headersDistinct */
export type RequestHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface AuthenticatedKey {
  /** the configured key's name, for logs, metrics and per-key limits */
  name: string;
}

/** The matching key's name, or null (missing, wrong, or ambiguous). */
export function authenticate(headers: RequestHeaders, headerName: string, keys: readonly ApiKeyEntry[]): AuthenticatedKey | null {
  const candidate = presentedKey(headers, headerName);
  if (candidate === null) return null;
  const digest = createHash('sha256').update(candidate, 'utf8').digest();
  let matched: string | null = null;
  for (const key of keys) {
    // Digests are 32 bytes; a wrong length is a config bug (timingSafeEqual would throw).
    if (key.sha256.length !== digest.length) continue;
    if (timingSafeEqual(digest, key.sha256) && matched === null) matched = key.name;
  }
  return matched === null ? null : { name: matched };
}

/** The key the request presents, or null when it presents none, an empty one, or more than one. */
export function presentedKey(headers: RequestHeaders, headerName: string): string | null {
  const direct = singleValue(headers[headerName.toLowerCase()]);
  if (direct !== undefined) return direct === '' ? null : direct;
  const authorization = singleValue(headers.authorization);
  if (authorization === undefined || authorization === null) return null;
  // RFC 9110 11.1: the scheme is case-insensitive. One token, nothing after it.
  const bearer = /^Bearer[ \t]+([^\s,]+)[ \t]*$/i.exec(authorization);
  return bearer === null ? null : bearer[1]!;
}

/** undefined: header absent; null: repeated (ambiguous). */
function singleValue(value: string | readonly string[] | undefined): string | null | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value.trim();
  if (value.length === 0) return undefined;
  if (value.length > 1) return null;
  return value[0]!.trim();
}
