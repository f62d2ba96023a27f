// A real redis-server for tests: found on PATH (or REDIS_SERVER_BIN), started on a free port
// without persistence, killed at the end. Missing redis-server: callers skip, except in CI.

import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
export { freePort } from './net.ts';

export const REDIS_SERVER = findRedisServer();
if (REDIS_SERVER === null && process.env.CI) throw new Error('redis-server not found, and CI is set: install redis-server to run this test');

/** REDIS_SERVER_BIN overrides the lookup on PATH (a path that does not exist counts as missing). */
function findRedisServer(): string | null {
  const configured = process.env.REDIS_SERVER_BIN;
  if (configured !== undefined) return existsSync(configured) ? configured : null;
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  return found.status === 0 && path !== '' ? path : null;
}

export async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(REDIS_SERVER!, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const deadline = Date.now() + 5_000;
  while (!(await canConnect(port))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`redis-server did not start on port ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return child;
}

export async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

