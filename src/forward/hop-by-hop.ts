// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the ones the
// guard itself re-derives for a rewritten body. None of them may be copied across the proxy.

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'host',
]);

/** Client request headers fit to send upstream with a body the guard wrote itself. */
export function upstreamRequestHeaders(
  rawHeaders: readonly string[],
  drop: ReadonlySet<string>,
): Record<string, string | string[]> {
  // the body's framing and type are the canonical body's; X-Forwarded-* are the guard's (forwarded-headers.ts)
  return endToEndHeaders(rawHeaders, (name) => drop.has(name) || name === 'content-length' || name === 'content-type' || name.startsWith('x-forwarded-'));
}

/**
 * Client request headers fit to send upstream with the client's own body (passthrough): framing
 * headers stay (Content-Length; a chunked body is re-chunked by the upstream client), X-Forwarded-*
 * and X-Request-Id are the guard's to set.
 */
export function passthroughRequestHeaders(rawHeaders: readonly string[]): Record<string, string | string[]> {
  return endToEndHeaders(rawHeaders, isSetByGuard);
}

/** X-Forwarded-* and X-Request-Id: the guard sets them on what it forwards (forwarded-headers.ts). */
export function isSetByGuard(name: string): boolean {
  return name === 'x-request-id' || name.startsWith('x-forwarded-');
}

/** The end-to-end headers of a request, in order, names lower-cased, repeated ones as arrays. */
function endToEndHeaders(rawHeaders: readonly string[], skip: (name: string) => boolean): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const connectionListed = listedInConnection(rawHeaders);
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (HOP_BY_HOP.has(name) || connectionListed.has(name) || skip(name)) continue;
    const value = rawHeaders[i + 1]!;
    const prior = out[name];
    if (prior === undefined) out[name] = value;
    else if (Array.isArray(prior)) prior.push(value);
    else out[name] = [prior, value];
  }
  return out;
}

const NOTHING_LISTED: ReadonlySet<string> = new Set();

/** Upstream response headers fit to send back to the client. */
export function clientResponseHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const connection = headers.connection;
  const listed = connection === undefined ? NOTHING_LISTED : addConnectionTokens(new Set(), Array.isArray(connection) ? connection.join(',') : connection);
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name)) continue;
    out[name] = value;
  }
  return out;
}

function listedInConnection(rawHeaders: readonly string[]): Set<string> {
  const listed = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === 'connection') addConnectionTokens(listed, rawHeaders[i + 1]!);
  }
  return listed;
}

/** Adds the header names a Connection value lists (comma-separated, any case) to `listed`. */
function addConnectionTokens(listed: Set<string>, value: string): Set<string> {
  for (const token of value.split(',')) {
    const t = token.trim().toLowerCase();
    if (t) listed.add(t);
  }
  return listed;
}
