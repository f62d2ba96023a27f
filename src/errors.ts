// The error table of SPEC.md in one place: code -> HTTP status and default message.
// Every rejection the guard sends is built from this table so codes and statuses never drift.

export const ERROR_TABLE = {
  UNAUTHORIZED: { status: 401, message: 'Unauthorized' },
  RATE_LIMITED: { status: 429, message: 'Too many requests' },
  IP_BANNED: { status: 403, message: 'Client banned after repeated rejections' },
  REQUEST_TOO_LARGE: { status: 413, message: 'Request body too large' },
  FILE_TOO_LARGE: { status: 413, message: 'File too large' },
  TOO_MANY_PARTS: { status: 413, message: 'Too many parts' },
  EXTENSION_NOT_ALLOWED: { status: 400, message: 'Invalid file type' },
  CONTENT_MISMATCH: { status: 400, message: 'File content does not match its extension' },
  MALFORMED_MULTIPART: { status: 400, message: 'Malformed multipart body' },
  MALFORMED_REQUEST: { status: 400, message: 'Malformed request' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Upload routes accept multipart/form-data only' },
  REQUEST_TIMEOUT: { status: 408, message: 'Request body too slow' },
  // not in SPEC's table (an addition): the head exceeds headerLimits
  HEADERS_TOO_LARGE: { status: 431, message: 'Request header fields too large' },
  STORAGE_FULL: { status: 507, message: 'Upload storage is full' },
  UPSTREAM_UNAVAILABLE: { status: 502, message: 'Upstream unavailable' },
  UPSTREAM_TIMEOUT: { status: 504, message: 'Upstream timed out' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_TABLE;

export interface GuardErrorDetails {
  field?: string;
  filename?: string;
  /** which rule refused, when the message is fixed by SPEC (EXTENSION_NOT_ALLOWED: "Invalid file type") */
  reason?: string;
}

/** A rejection decided by the guard; carries everything the JSON response needs. */
export class GuardError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: GuardErrorDetails;
  /** extra headers of the answer (Retry-After, RateLimit); never in the JSON body */
  responseHeaders: Record<string, string> = {};

  constructor(code: ErrorCode, message?: string, details: GuardErrorDetails = {}) {
    super(message ?? ERROR_TABLE[code].message);
    this.name = 'GuardError';
    this.code = code;
    this.status = ERROR_TABLE[code].status;
    this.details = details;
  }
}

export function isGuardError(err: unknown): err is GuardError {
  return err instanceof GuardError;
}

/** The JSON body of SPEC.md: {"error", "code", "requestId"} plus field/filename where they apply,
 *  and `reason` (an addition) when the error text alone does not say which rule refused. */
export function rejectionBody(err: GuardError, requestId: string): string {
  const body: Record<string, string> = { error: err.message, code: err.code, requestId };
  if (err.details.field !== undefined) body.field = err.details.field;
  if (err.details.filename !== undefined) body.filename = err.details.filename;
  if (err.details.reason !== undefined) body.reason = err.details.reason;
  return JSON.stringify(body);
}
