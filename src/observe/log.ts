// One JSON line per request on stdout (SPEC: id, route, ip, outcome, code, bytes, ms).

export interface RequestLogLine {
  id: string;
  route: string | null;
  ip: string;
  method: string;
  path: string;
  outcome: 'forwarded' | 'rejected' | 'passthrough' | 'error';
  status: number;
  code?: string;
  bytes: number;
  ms: number;
  files?: unknown[];
}

export function logRequest(line: RequestLogLine): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`);
}

export function logEvent(msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), msg, ...fields })}\n`);
}
