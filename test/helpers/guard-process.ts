// The guard as its own process (`node dist/cli.js serve`), as users run it: for tests that need
// several replicas, signals, or the process's own RSS. Needs `npm run build` first (npm test does).

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLI = new URL('../../dist/cli.js', import.meta.url).pathname;

export interface GuardProcess {
  port: number;
  child: ChildProcess;
  /** every stdout line so far (JSON log lines) */
  lines: string[];
  stop(): Promise<void>;
}

/** Starts the guard with this YAML (listen on port 0 is fine: the port is read from its log). */
export async function startGuardProcess(yaml: string, timeoutMs = 10_000): Promise<GuardProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'guard-process-'));
  const configPath = join(dir, 'guard.yaml');
  writeFileSync(configPath, yaml);
  const child = spawn(process.execPath, [CLI, 'serve', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`guard did not start within ${timeoutMs} ms: ${stderr}`)), timeoutMs);
    let pending = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      let newline: number;
      while ((newline = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        lines.push(line);
        const listen = /"msg":"listening".*"listen":"[^"]*:(\d+)"/.exec(line);
        if (listen) {
          clearTimeout(timer);
          resolve(Number(listen[1]));
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`guard exited with ${code}: ${stderr}`));
    });
  });
  return {
    port,
    child,
    lines,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
