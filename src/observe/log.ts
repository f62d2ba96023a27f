// One JSON line per request on stdout (SPEC: id, route, ip, outcome, code, bytes, ms).

import type { FinishedRequest } from './request-observer.js';

/** The log line is the finished-request record itself (request-observer.ts). */
export type RequestLogLine = FinishedRequest;

export function logRequest(line: RequestLogLine): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`);
}

export function logEvent(msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), msg, ...fields })}\n`);
}
