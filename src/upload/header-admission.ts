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
  if ((contentType.match(/boundary\s*=/gi) ?? []).length !== 1) {
    throw new GuardError('MALFORMED_MULTIPART', 'Content-Type needs exactly one boundary parameter');
  }
  const length = req.headers['content-length'];
  if (length !== undefined && Number(length) > policy.maxRequestSize) throw new GuardError('REQUEST_TOO_LARGE');
}

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
