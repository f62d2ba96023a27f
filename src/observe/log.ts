// One JSON line per request on stdout (SPEC: id, route, ip, outcome, code, bytes, ms).
//
// Request lines are gathered for the rest of the event-loop turn and written together: stdout is
// a pipe or a file in production, written synchronously, and a write per request was 4% of the
// CPU of a small passthrough GET. Events (start, reload, drain, scanner trouble) flush at once,
// and whatever is pending is written when the process exits, however it exits.

import type { FinishedRequest } from './request-observer.js';

/** The log line is the finished-request record itself (request-observer.ts). */
export type RequestLogLine = FinishedRequest;

/** Written at once when this much is pending, whatever the turn. */
const FLUSH_BYTES = 64 * 1024;

let pending = '';
let flushScheduled = false;

function flush(): void {
  flushScheduled = false;
  if (pending === '') return;
  const out = pending;
  pending = '';
  process.stdout.write(out);
}

process.on('exit', flush);

// The timestamp text of the current millisecond: at thousands of lines a second most share one.
let stampedAt = -1;
let stamp = '';

/** `fields` (a JSON object's text) with a leading "time" member. */
function withTime(fieldsJson: string): string {
  const now = Date.now();
  if (now !== stampedAt) {
    stampedAt = now;
    stamp = new Date(now).toISOString();
  }
  const time = `{"time":"${stamp}"`;
  return fieldsJson === '{}' ? `${time}}\n` : `${time},${fieldsJson.slice(1)}\n`;
}

export function logRequest(line: RequestLogLine): void {
  pending += withTime(JSON.stringify(line));
  if (pending.length >= FLUSH_BYTES) flush();
  else if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
}

export function logEvent(msg: string, fields: Record<string, unknown> = {}): void {
  pending += withTime(JSON.stringify({ msg, ...fields }));
  flush();
}
