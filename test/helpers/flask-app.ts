// Starts the seed's Flask uploader (examples/flask-uploader/app.py) with Debian's python3 on a
// free port. No skipping: without python3-flask the tests fail, telling what to install.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Debian's interpreter (python3-flask installs into it), never a pyenv shim from PATH. */
export const PYTHON = '/usr/bin/python3';
export const FLASK_APP = fileURLToPath(new URL('../../examples/flask-uploader/app.py', import.meta.url));
const START_TIMEOUT_MS = 15_000;
const STDERR_KEPT = 64 * 1024;
const INSTALL_HINT = 'apt-get install -y python3-flask python3-werkzeug (or run .ci/run)';

export interface FlaskUploader {
  port: number;
  /** http://127.0.0.1:<port> */
  url: string;
  /** The app's stderr so far (Werkzeug logs one line per request there); last 64 KiB. */
  stderr(): string;
  /** SIGTERM, then SIGKILL after 5 s; resolves once the process has exited. */
  stop(): Promise<void>;
}

export interface FlaskUploaderOptions {
  /** UPLOAD_DIR: files land in images/, videos/, files/ below it. */
  uploadDir: string;
  /** Extra environment, e.g. { API_KEY: 'k', MAX_CONTENT_LENGTH: String(200 * 2 ** 20) }. */
  env?: Record<string, string>;
}

export async function startFlaskUploader(opts: FlaskUploaderOptions): Promise<FlaskUploader> {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} not found: the Flask uploader tests need Debian's python3 with Flask: ${INSTALL_HINT}`);
  const child = spawn(PYTHON, [FLASK_APP], {
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: '0',
      UPLOAD_DIR: opts.uploadDir,
      PYTHONUNBUFFERED: '1',
      PYTHONDONTWRITEBYTECODE: '1',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    stderr = (stderr + text).slice(-STDERR_KEPT);
  });
  let exited = child.exitCode !== null || child.signalCode !== null;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      resolve();
    });
  });
  // Never leave a Flask process behind when the test process ends early.
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const port = await new Promise<number>((resolve, reject) => {
    let stdout = '';
    const fail = (why: string): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      process.removeListener('exit', killOnExit);
      const missing = /No module named '?(flask|werkzeug)/i.exec(stderr);
      const hint = missing ? `: Python module ${missing[1]} is missing for ${PYTHON}: ${INSTALL_HINT}` : '';
      reject(new Error(`Flask uploader (${PYTHON} ${FLASK_APP}) ${why}${hint}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`));
    };
    const timer = setTimeout(() => fail(`did not print LISTENING within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text: string) => {
      stdout += text;
      const m = /^LISTENING (\d+)$/m.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('error', (err) => fail(`could not be spawned (${err.message})`));
    // 'close', not 'exit': by then stderr has been read to the end, traceback included.
    child.once('close', (code, signal) => fail(`exited before listening (code ${code}, signal ${signal})`));
  });
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    stderr: () => stderr,
    async stop(): Promise<void> {
      process.removeListener('exit', killOnExit);
      if (exited) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exit;
      clearTimeout(killer);
    },
  };
}
