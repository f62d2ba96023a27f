// Request-target normalisation (SPEC "On the wire"): routes match the path as the upstream will
// route it, and the request is forwarded with that normalised path, so the guard and the upstream
// can never disagree on which view a request reaches (research/multipart-bypasses.md "Routing":
// `/%75pload`, `//upload`, `http://host/upload`, `/upload#x` all reach Werkzeug's `/upload`).
//
// Two forms come out of one pass:
//   path       minimal encoding: unreserved escapes decoded, other escapes kept with upper-case
//              hex, `//` collapsed, dot-segments removed. This is what is forwarded.
//   matchPath  `path` fully percent-decoded as UTF-8: what Werkzeug puts in PATH_INFO (its dev
//              server unquotes every escape) and what routes are matched against.
// Because the upstream only ever receives `path`, whose only escapes are ones that decode to
// neither `/`, `.`-segments nor NUL, decoding it once more upstream yields exactly `matchPath`.
//
// Refused with MALFORMED_REQUEST, because no single reading is safe: encoded `/` (%2F) and `\`
// (%5C: a separator for Windows and WHATWG-style parsers), raw `\`, NUL (raw or %00), control
// characters, spaces and raw non-ASCII bytes, invalid escapes (`%zz`, `%4`), escapes that decode to
// invalid UTF-8, and targets that are neither origin-form, http(s) absolute-form nor `*`.

import { GuardError } from '../errors.js';

export interface NormalizedTarget {
  /** normalised path, minimal percent-encoding; `*` for an asterisk-form OPTIONS request */
  path: string;
  /** the raw query including its leading `?`, or '' */
  query: string;
  /** what the upstream is sent: path + query (fragment dropped) */
  forwardTarget: string;
  /** `path` fully percent-decoded (UTF-8): what routes match on */
  matchPath: string;
}

const PERCENT = 0x25;
const SLASH = 0x2f;
const BACKSLASH = 0x5c;

// 1 = unreserved (RFC 3986 2.3): decoded when percent-encoded.
const UNRESERVED = new Uint8Array(128);
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') {
  UNRESERVED[ch.charCodeAt(0)] = 1;
}

const HEX_DIGITS = '0123456789ABCDEF';
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

function malformed(reason: string): never {
  throw new GuardError('MALFORMED_REQUEST', `Malformed request target: ${reason}`);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** Raw characters never allowed in a target: controls, space, DEL and anything beyond ASCII. */
function isForbiddenRaw(c: number): boolean {
  return c <= 0x20 || c >= 0x7f;
}

/**
 * Normalises a request target (req.url as Node hands it over).
 *
 * `*` (asterisk-form) is only meaningful for OPTIONS: it is returned unchanged (path, matchPath
 * and forwardTarget all `*`, which no route matches) when `method` is OPTIONS or not given, and
 * refused for any other method.
 *
 * @throws GuardError MALFORMED_REQUEST when the target cannot be normalised unambiguously
 */
export function normalizeTarget(rawTarget: string, method?: string): NormalizedTarget {
  if (rawTarget === '*') {
    if (method !== undefined && method !== 'OPTIONS') malformed('asterisk-form is only for OPTIONS');
    return { path: '*', query: '', forwardTarget: '*', matchPath: '*' };
  }

  // Fragments never belong on the wire; drop one if a client sent it.
  const hash = rawTarget.indexOf('#');
  const target = hash >= 0 ? rawTarget.slice(0, hash) : rawTarget;

  let pathStart: number;
  if (target.charCodeAt(0) === SLASH) {
    pathStart = 0;
  } else {
    // absolute-form: only http(s); the authority is dropped (the forwarder sets Host itself).
    const lower = target.slice(0, 8).toLowerCase();
    const schemeEnd = lower.startsWith('http://') ? 7 : lower.startsWith('https://') ? 8 : -1;
    if (schemeEnd < 0) malformed('not origin-form or an http(s) absolute URL');
    let end = schemeEnd;
    while (end < target.length) {
      const c = target.charCodeAt(end);
      if (c === SLASH || c === 0x3f /* ? */) break;
      if (isForbiddenRaw(c) || c === BACKSLASH) malformed('invalid character in authority');
      end++;
    }
    if (end === schemeEnd) malformed('empty authority');
    pathStart = end;
  }

  const queryAt = target.indexOf('?', pathStart);
  const pathEnd = queryAt >= 0 ? queryAt : target.length;
  const query = queryAt >= 0 ? target.slice(queryAt) : '';
  for (let i = 1; i < query.length; i++) {
    if (isForbiddenRaw(query.charCodeAt(i))) malformed('invalid character in query');
  }

  // One pass over the path: split into segments, validate and re-encode escapes, and resolve
  // empty, `.` and `..` segments (RFC 3986 5.2.4) as each segment ends. Empty segments are
  // dropped before dot-segments are resolved (`/a//../b` -> `/b`), as nginx's merge_slashes does.
  const segments: string[] = [];
  let segment = '';
  let hasEscapes = false;
  let trailingSlash = true; // an absolute-form target without a path means '/'
  for (let i = pathStart + 1; i <= pathEnd; i++) {
    if (i === pathEnd || target.charCodeAt(i) === SLASH) {
      if (segment === '..') {
        segments.pop();
        trailingSlash = true;
      } else if (segment === '.' || segment === '') {
        trailingSlash = true;
      } else {
        segments.push(segment);
        trailingSlash = false;
      }
      segment = '';
      continue;
    }
    const c = target.charCodeAt(i);
    if (c === PERCENT) {
      const hi = i + 2 < pathEnd ? hexValue(target.charCodeAt(i + 1)) : -1;
      const lo = hi >= 0 ? hexValue(target.charCodeAt(i + 2)) : -1;
      if (lo < 0) malformed('invalid percent-escape');
      const byte = hi * 16 + lo;
      if (byte === SLASH || byte === BACKSLASH) malformed('encoded slash or backslash');
      if (byte === 0) malformed('encoded NUL');
      if (byte < 0x80 && UNRESERVED[byte] === 1) {
        segment += String.fromCharCode(byte);
      } else {
        segment += '%' + HEX_DIGITS[hi]! + HEX_DIGITS[lo]!;
        hasEscapes = true;
      }
      i += 2;
    } else if (c === BACKSLASH) {
      malformed('backslash in path');
    } else if (isForbiddenRaw(c)) {
      malformed('invalid character in path');
    } else {
      segment += target[i];
    }
  }
  // `hasEscapes` may count escapes in segments that `..` removed: decoding then is a no-op.

  let path = '/' + segments.join('/');
  if (trailingSlash && segments.length > 0) path += '/';

  return { path, query, forwardTarget: path + query, matchPath: hasEscapes ? decodePath(path) : path };
}

/** Fully percent-decodes an already validated path (escapes are well-formed, upper-case). */
function decodePath(path: string): string {
  const bytes = new Uint8Array(path.length);
  let n = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === PERCENT) {
      bytes[n++] = hexValue(path.charCodeAt(i + 1)) * 16 + hexValue(path.charCodeAt(i + 2));
      i += 2;
    } else {
      bytes[n++] = c;
    }
  }
  try {
    return STRICT_UTF8.decode(bytes.subarray(0, n));
  } catch {
    return malformed('escapes do not decode to UTF-8');
  }
}
