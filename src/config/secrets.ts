// Secret references in the config, resolved at load time so the YAML can be committed:
//
//   apiKeys[].key:  "sha256:<64 hex>"        the digest itself; the plain key never touches disk
//                   "file: /run/secrets/x"   or { file: /run/secrets/x }; relative to the config
//                                            file; one trailing newline is dropped
//                   "${API_KEY}"             environment variable (also inside a longer string)
//                   anything else            the key, inline
//   upstream.url, rateLimitStore:  ${VAR} references are expanded (a redis URL may carry a password)
//
// The prefix forms are decided on the text as written, so an environment variable's value is
// always the key itself and never reinterpreted as "file:" or "sha256:".

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export interface SecretContext {
  env: Readonly<Record<string, string | undefined>>;
  /** directory that relative "file:" paths are resolved against */
  baseDir: string;
}

export type ApiKeySource = string | { file: string };

const ENV_REFERENCE = /\$\{([^}]*)\}/g;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SHA256_PREFIX = /^sha256:/i;
const FILE_PREFIX = /^file:\s*/;

/** Replaces every ${NAME}; throws naming the first variable that is malformed or not set. */
export function expandEnvReferences(text: string, env: SecretContext['env']): string {
  return text.replace(ENV_REFERENCE, (_reference, name: string) => {
    if (!ENV_NAME.test(name)) throw new Error(`"\${${name}}" is not a valid environment variable reference`);
    const value = env[name];
    if (value === undefined) throw new Error(`environment variable ${name} is not set`);
    return value;
  });
}

function readKeyFile(path: string, baseDir: string): string {
  const fullPath = resolve(baseDir, path);
  try {
    return readFileSync(fullPath, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : (err as Error).message;
    throw new Error(`key file ${fullPath} ${reason}`);
  }
}

export function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** The sha256 digest of the key a source refers to; throws with a user-facing message. */
export function resolveApiKeyDigest(source: ApiKeySource, context: SecretContext): Buffer {
  if (typeof source !== 'string') return digestOfKey(readKeyFile(source.file, context.baseDir));
  if (SHA256_PREFIX.test(source)) {
    const hex = source.slice('sha256:'.length).trim();
    if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new Error('a "sha256:" key must be followed by exactly 64 hex digits');
    return Buffer.from(hex, 'hex');
  }
  if (FILE_PREFIX.test(source)) {
    const path = source.replace(FILE_PREFIX, '');
    if (path === '') throw new Error('"file:" must be followed by a path');
    return digestOfKey(readKeyFile(path, context.baseDir));
  }
  return digestOfKey(expandEnvReferences(source, context.env));
}

function digestOfKey(key: string): Buffer {
  if (key === '') throw new Error('the key is empty');
  return sha256(key);
}
