// The X-Forwarded-* headers the upstream receives, for uploads and passthrough alike: what a
// client says about earlier hops is believed only from a trusted proxy (config trustProxy), so a
// client cannot pose as another address to an upstream that reads X-Forwarded-For.

import type { IncomingMessage } from 'node:http';
import { normaliseAddress } from '../admission/client-ip.js';

export type ForwardedHeaders = Record<string, string>;

/**
 * X-Forwarded-For/-Proto: a trusted proxy's chain plus the peer, and its proto; otherwise the peer
 * alone and http. X-Forwarded-Host/-Port only as a trusted proxy sent them (this hop's own are the
 * Host header, which is forwarded unchanged).
 */
export function forwardedHeaders(req: IncomingMessage, isTrusted: (ip: string) => boolean): ForwardedHeaders {
  const peer = normaliseAddress(req.socket.remoteAddress ?? '') ?? '';
  if (!isTrusted(peer)) return { 'x-forwarded-for': peer, 'x-forwarded-proto': 'http' };
  const prior = req.headers['x-forwarded-for'];
  const proto = req.headers['x-forwarded-proto'];
  const out: ForwardedHeaders = {
    'x-forwarded-for': prior ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${peer}` : peer,
    // https when a trusted proxy (e.g. nginx terminating TLS) says so; otherwise this hop: http
    'x-forwarded-proto': proto === 'https' || proto === 'http' ? proto : 'http',
  };
  const host = req.headers['x-forwarded-host'];
  const port = req.headers['x-forwarded-port'];
  if (typeof host === 'string') out['x-forwarded-host'] = host;
  if (typeof port === 'string') out['x-forwarded-port'] = port;
  return out;
}
