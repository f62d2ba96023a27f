// The real Werkzeug (Debian python3-werkzeug under /usr/bin/python3) as a multipart oracle: one
// long-lived Python process (werkzeug-oracle.py) answering JSON requests line by line, so a
// differential test can parse thousands of bodies without paying an interpreter start for each.

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./werkzeug-oracle.py', import.meta.url));
const WERKZEUG_MISSING_EXIT = 3;
const INSTALL_HINT = 'apt-get install -y python3-werkzeug (or run .ci/run)';

/** One file as Werkzeug's request.files holds it. */
export interface WerkzeugFile {
  name: string;
  filename: string | null;
  /** werkzeug.utils.secure_filename(filename) */
  secure: string | null;
  sha256: string;
  size: number;
}

/** What a Flask view would see: request.form and request.files, in body order. */
export interface WerkzeugForm {
  fields: Array<[string, string]>;
  files: WerkzeugFile[];
  /** Why Werkzeug gave up; a Flask view would then see an empty form (or a 500 for non-ValueErrors). */
  error: string | null;
}

export interface WerkzeugOracle {
  version: { werkzeug: string; python: string };
  parse(contentType: string, body: Buffer): Promise<WerkzeugForm>;
  secureFilename(names: string[]): Promise<string[]>;
  close(): Promise<void>;
}

export async function startWerkzeugOracle(): Promise<WerkzeugOracle> {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} not found: the Werkzeug oracle needs Debian's python3: ${INSTALL_HINT}`);
  const child: ChildProcessWithoutNullStreams = spawn(PYTHON, ['-I', SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => (stderr = (stderr + s).slice(-16_384)));
  const waiting: Array<{ resolve: (value: unknown) => void; reject: (err: Error) => void }> = [];
  let exited: Error | null = null;
  child.on('exit', (code, signal) => {
    exited = new Error(
      code === WERKZEUG_MISSING_EXIT
        ? `werkzeug not importable by ${PYTHON}: ${stderr.trim()} (${INSTALL_HINT})`
        : `werkzeug oracle exited (code ${code}, signal ${signal}): ${stderr.trim()}`,
    );
    for (const w of waiting.splice(0)) w.reject(exited);
  });
  child.on('error', (err) => {
    exited = err;
    for (const w of waiting.splice(0)) w.reject(err);
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    const next = waiting.shift();
    if (next === undefined) return;
    try {
      next.resolve(JSON.parse(line));
    } catch (err) {
      next.reject(err as Error);
    }
  });

  const ask = <T>(request: object): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (exited !== null) return reject(exited);
      waiting.push({ resolve: resolve as (value: unknown) => void, reject });
      child.stdin.write(`${JSON.stringify(request)}\n`);
    });

  const version = await ask<{ werkzeug: string; python: string }>({ op: 'version' });
  return {
    version,
    async parse(contentType, body) {
      const reply = await ask<{ fields: Array<[string, string]>; files: Array<[string, string | null, string | null, string, number]>; error: string | null }>({
        op: 'parse',
        contentType,
        body: body.toString('base64'),
      });
      return {
        fields: reply.fields,
        files: reply.files.map(([name, filename, secure, sha256, size]) => ({ name, filename, secure, sha256, size })),
        error: reply.error,
      };
    },
    async secureFilename(names) {
      return (await ask<{ names: string[] }>({ op: 'secure', names })).names;
    },
    close() {
      return new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin.end();
      });
    },
  };
}
