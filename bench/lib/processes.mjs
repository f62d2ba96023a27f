// Child processes of the bench (sink, baselines, guards): start, wait until they listen, sample
// their memory and CPU from /proc, stop them. Every child is tracked so one cleanup call ends all.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const live = new Set();
const TAIL_LINES = 30;
const STDERR_LINES = 10;
const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on every Linux the bench runs on

/** A port that was free a moment ago on 127.0.0.1 (the child binds it right after). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Spawns a child and keeps the last lines of its output for error reports. `ipc: true` adds an IPC
 * channel (used by the sink for its counters, and by our own children to exit with the parent).
 */
export function startChild(name, command, args, { cwd, ipc = false } = {}) {
  const proc = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc'] : [])] });
  const tail = [];
  const keep = (data) => {
    for (const line of data.toString().split('\n')) if (line) tail.push(line);
    tail.splice(0, Math.max(0, tail.length - TAIL_LINES));
  };
  // stderr separately too: a warning there (e.g. a listener leak) belongs in the report.
  const stderr = [];
  proc.stdout.on('data', keep);
  proc.stderr.on('data', (data) => {
    keep(data);
    for (const line of data.toString().split('\n')) if (line && stderr.length < STDERR_LINES) stderr.push(line);
  });
  const child = { name, proc, pid: proc.pid, tail, stderr, exit: null, stopping: false };
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve((child.exit = { code, signal }))));
  child.exited = exited;
  live.add(child);
  exited.then(() => live.delete(child));
  return child;
}

/** Describes a child that died on its own (not stopped by us), or null. */
export function crashReport(child) {
  if (child.exit === null || child.stopping) return null;
  const last = child.tail.slice(-8).map((line) => (line.length > 200 ? `${line.slice(0, 200)}...` : line));
  return `${child.name} (pid ${child.pid}) exited unexpectedly: code ${child.exit.code} signal ${child.exit.signal}; last output:\n  ${last.join('\n  ')}`;
}

/** Resolves once something accepts connections on the port; fails if the child dies first. */
export async function waitForPort(port, child, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exit !== null) throw new Error(crashReport(child) ?? `${child.name} exited`);
    const open = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await sleep(50);
  }
  throw new Error(`${child.name} did not listen on ${port} within ${timeoutMs} ms\n  ${child.tail.join('\n  ')}`);
}

/** SIGTERM, then SIGKILL if the child has not exited after `graceMs`. */
export async function stopChild(child, graceMs = 3_000) {
  if (child.exit !== null) return;
  child.stopping = true;
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
}

export async function stopAll() {
  await Promise.all([...live].map((child) => stopChild(child)));
}

/** Synchronous last resort (process 'exit' handler): no waiting possible there. */
export function killAllNow() {
  for (const child of live) {
    child.stopping = true;
    child.proc.kill('SIGKILL');
  }
}

/** Resident set size in bytes, or null once the process is gone. */
export function rssBytes(pid) {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** User + system CPU seconds the process has used so far, or null once it is gone. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name (which may contain spaces): utime is the 12th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** Samples a process's RSS every `everyMs` until stop(); stop() returns { peak, samples }. */
export function sampleRss(pid, everyMs = 50) {
  let peak = rssBytes(pid) ?? 0;
  let samples = 1;
  const timer = setInterval(() => {
    const rss = rssBytes(pid);
    if (rss === null) return;
    samples++;
    if (rss > peak) peak = rss;
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      const rss = rssBytes(pid);
      if (rss !== null && rss > peak) peak = rss;
      return { peak, samples };
    },
  };
}
