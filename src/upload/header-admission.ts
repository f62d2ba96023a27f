// Decisions made on the request head alone, before a byte of body is read (ARCHITECTURE idea 2).

import type { IncomingMessage } from 'node:http';
import type { CompiledConfig, CompiledPolicy } from '../config/types.js';
import { authenticate } from '../admission/api-keys.js';
import { GuardError } from '../errors.js';

/** 401 unless the policy needs no key or a configured key is presented; returns its name. */
export function authenticateHead(req: IncomingMessage, policy: CompiledPolicy, config: CompiledConfig): string | null {
  return policy.requireApiKey ? requireKey(req, config) : null;
}

/** The body's framing headers: one Content-Type and Content-Length, multipart, within maxRequestSize. */
export function admitBodyHeaders(req: IncomingMessage, policy: CompiledPolicy): void {
  const contentTypes = headerCount(req.rawHeaders, 'content-type');
  if (contentTypes > 1 || headerCount(req.rawHeaders, 'content-length') > 1) {
    // Node keeps the first, Werkzeug's dev server the last: refuse rather than pick one.
    throw new GuardError('MALFORMED_REQUEST', 'Duplicate Content-Type or Content-Length header');
  }
  const contentType = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data\s*(;|$)/i.test(contentType)) throw new GuardError('UNSUPPORTED_MEDIA_TYPE');
  // boundary*=, boundary*0= count too: Werkzeug files them under boundary (last wins, continuations appended)
  if ((contentType.match(/boundary[\s*\d]*=/gi) ?? []).length !== 1) {
    throw new GuardError('MALFORMED_MULTIPART', 'Content-Type needs exactly one boundary parameter');
  }
  // RFC 2046 boundary characters only: quotes, backslashes and the like are unquoted differently
  // by busboy, Werkzeug and the delimiter scanner, which would then frame the body differently.
  const boundary = /boundary=(?:"([^"]*)"|([^;\s]*))/i.exec(contentType);
  if (!RFC2046_BOUNDARY.test(boundary?.[1] ?? boundary?.[2] ?? '')) {
    throw new GuardError('MALFORMED_MULTIPART', 'The multipart boundary has characters outside RFC 2046');
  }
  const length = req.headers['content-length'];
  if (length !== undefined && Number(length) > policy.maxRequestSize) throw new GuardError('REQUEST_TOO_LARGE');
}

const RFC2046_BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

function requireKey(req: IncomingMessage, config: CompiledConfig): string {
  // headersDistinct keeps repeated key headers visible, so an ambiguous key is refused
  const key = authenticate(req.headersDistinct, config.apiKeyHeader, config.apiKeys);
  if (key === null) throw new GuardError('UNAUTHORIZED');
  return key.name;
}

function headerCount(rawHeaders: readonly string[], name: string): number {
  let count = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === name) count++;
  return count;
}
