// The verdict an upload of a file on disk would get on a route, without a request: the same
// filename rules, whitelist, head check and streaming inspection, in the same order as
// multipart-filter.ts. For `upload-guard inspect` and tools.

import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import type { CompiledPolicy } from '../config/types.js';
import type { ErrorCode } from '../errors.js';
import { isSafeParameterValue } from './canonical-encoder.js';
import { checkContent, SNIFF_BYTES } from './content-check.js';
import { ContentInspector } from './content-inspector.js';
import { applyFilenameRules } from './filename-rules.js';
import { finalExtension } from './filenames.js';

export type OfflineVerdict =
  | { ok: true; forwardedAs: string }
  | { ok: false; code: ErrorCode; reason: string };

export async function inspectUpload(policy: CompiledPolicy, path: string, name: string = basename(path)): Promise<OfflineVerdict> {
  const named = applyFilenameRules(policy.filenames, policy.filenameRules, name);
  if (!named.ok) return { ok: false, code: named.code, reason: named.reason };
  const rewritten = named.name;
  const ext = finalExtension(named.original);
  if (rewritten === null || ext === null || !policy.allow.has(ext) || finalExtension(rewritten) !== ext || !isSafeParameterValue(rewritten)) {
    return { ok: false, code: 'EXTENSION_NOT_ALLOWED', reason: 'Invalid file type' };
  }
  if (!policy.verifyContent) return { ok: true, forwardedAs: rewritten };

  const inspector = new ContentInspector(ext);
  const head: Buffer[] = [];
  let headLength = 0;
  let size = 0;
  let problem: string | null = null;
  for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 })) {
    const bytes = chunk as Buffer;
    size += bytes.length;
    if (headLength < SNIFF_BYTES) {
      head.push(bytes);
      headLength += bytes.length;
    }
    problem ??= inspector.feed(bytes);
  }
  const headBytes = Buffer.concat(head).subarray(0, SNIFF_BYTES);
  const verdict = await checkContent(ext, headBytes, size <= SNIFF_BYTES);
  if (!verdict.ok) return { ok: false, code: 'CONTENT_MISMATCH', reason: verdict.reason };
  problem ??= inspector.finish();
  return problem === null ? { ok: true, forwardedAs: rewritten } : { ok: false, code: 'CONTENT_MISMATCH', reason: problem };
}
