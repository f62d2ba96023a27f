// Runs `node dist/cli.js serve` (or any installed copy of it) as its own process, the way a unit
// file, a container or a user starts it, and reads its JSON log lines: the ports it bound (port 0
// is fine for listen and admin) and one line per request. Optionally as another user via setpriv
// (root only), for the unprivileged-install test. Needs `npm run build` first (npm test does).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const REPO_CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const SETPRIV = '/usr/bin/setpriv';

export interface GuardCliOptions {
  /** the cli.js to run; default the repository's dist/cli.js */
  cli?: string;
  /** arguments after cli.js; default ['serve'] */
  args?: string[];
  /** node's own flags, before cli.js (e.g. the heap flags of the Dockerfile's ENTRYPOINT) */
  nodeFlags?: string[];
  cwd?: string;
  /** the whole environment of the process (not merged with process.env) */
  env?: Record<string, string | undefined>;
  /** run as this uid/gid with no supplementary groups (setpriv; needs root) */
  user?: { uid: number; gid: number };
  startTimeoutMs?: number;
  /** the config enables the admin listener: wait for its log line too (default false) */
  admin?: boolean;
}

export interface GuardCli {
  child: ChildProcess;
  port: number;
  /** the admin listener's port; null when the config disables it */
  adminPort: number | null;
  /** every stdout line so far */
  lines: string[];
  /** the JSON log lines so far, parsed */
  logs(): Array<Record<string, unknown>>;
  stderr(): string;
  /** resolves with the first log line that satisfies `match`, waiting up to timeoutMs */
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGTERM, then SIGKILL after 5 s; resolves once exited */
  stop(): Promise<void>;
}

export async function startGuardCli(opts: GuardCliOptions = {}): Promise<GuardCli> {
  const cli = opts.cli ?? REPO_CLI;
  if (!existsSync(cli)) throw new Error(`${cli} missing: run \`npm run build\` first (npm test does)`);
  const args = [...(opts.nodeFlags ?? []), cli, ...(opts.args ?? ['serve'])];
  let command = process.execPath;
  let argv = args;
  if (opts.user) {
    if (!existsSync(SETPRIV)) throw new Error(`${SETPRIV} missing (util-linux)`);
    command = SETPRIV;
    argv = [`--reuid=${opts.user.uid}`, `--regid=${opts.user.gid}`, '--clear-groups', '--inh-caps=-all', '--', process.execPath, ...args];
  }
  const child = spawn(command, argv, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  let pending = '';
  const waiters = new Set<() => void>();
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => (stderr = (stderr + text).slice(-64 * 1024)));
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (text: string) => {
    pending += text;
    let newline: number;
    while ((newline = pending.indexOf('\n')) !== -1) {
      lines.push(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
    }
    for (const waiter of [...waiters]) waiter();
  });
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const logs = (): Array<Record<string, unknown>> =>
    lines.flatMap((line) => {
      try {
        const parsed: unknown = JSON.parse(line);
        return parsed !== null && typeof parsed === 'object' ? [parsed as Record<string, unknown>] : [];
      } catch {
        return [];
      }
    });
  const waitForLog = (match: (line: Record<string, unknown>) => boolean, timeoutMs = 10_000): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const found = logs().find(match);
        if (found) {
          done();
          resolve(found);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          done();
          reject(new Error(`guard exited (${child.exitCode ?? child.signalCode})\n--- stdout ---\n${lines.join('\n')}\n--- stderr ---\n${stderr}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching log line within ${timeoutMs} ms\n--- stdout ---\n${lines.join('\n')}\n--- stderr ---\n${stderr}`));
      }, timeoutMs);
      const onExit = (): void => {
        setImmediate(check);
      };
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(check);
        child.removeListener('exit', onExit);
      };
      waiters.add(check);
      child.once('exit', onExit);
      check();
    });
  const portOf = (line: Record<string, unknown>): number => Number(/:(\d+)$/.exec(String(line.listen))?.[1]);
  try {
    const listening = await waitForLog((l) => l.msg === 'listening', opts.startTimeoutMs ?? 15_000);
    const admin = opts.admin ? await waitForLog((l) => l.msg === 'admin listening', opts.startTimeoutMs ?? 15_000) : undefined;
    return {
      child,
      port: portOf(listening),
      adminPort: admin ? portOf(admin) : null,
      lines,
      logs,
      stderr: () => stderr,
      waitForLog,
      async stop(): Promise<void> {
        process.removeListener('exit', killOnExit);
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(killer);
      },
    };
  } catch (err) {
    process.removeListener('exit', killOnExit);
    child.kill('SIGKILL');
    throw err;
  }
}
