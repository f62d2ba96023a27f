// Child processes of the bench (sink, baselines, guards): start, wait until they listen, sample
// their memory and CPU from /proc, stop them. Every child is tracked so one cleanup call ends all.

import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
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
export function startChild(name, command, args, { cwd, ipc = false, env } = {}) {
  const proc = spawn(command, args, { cwd, env: env === undefined ? process.env : { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc'] : [])] });
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

/** Resolves once a line of the child's output matches `pattern`; fails if the child dies first. */
export async function waitForOutput(child, pattern, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.tail.some((line) => pattern.test(line))) return;
    if (child.exit !== null) throw new Error(crashReport(child) ?? `${child.name} exited`);
    await sleep(50);
  }
  throw new Error(`${child.name} printed nothing matching ${pattern} within ${timeoutMs} ms\n  ${child.tail.join('\n  ')}`);
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

/** Fields of /proc/PID/stat after the parenthesised command name (which may contain spaces), or null. */
function statFields(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/**
 * The pid and all its descendants (a node:cluster primary and its workers), found through the
 * parent pid in /proc/[pid]/stat. Each entry keeps the process's start time so a later kill can make
 * sure the pid still names the same process.
 */
export function processTree(pid) {
  const childrenOf = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const fields = statFields(name);
    if (!fields) continue; // exited while we looked
    const ppid = Number(fields[1]);
    if (!childrenOf.has(ppid)) childrenOf.set(ppid, []);
    childrenOf.get(ppid).push({ pid: Number(name), start: fields[19] });
  }
  const root = statFields(pid);
  if (!root) return [];
  const tree = [{ pid, start: root[19] }];
  for (let i = 0; i < tree.length; i++) tree.push(...(childrenOf.get(tree[i].pid) ?? []));
  return tree;
}

/** SIGKILLs what is left of a tree recorded earlier (e.g. cluster workers whose primary is gone). */
export function killLeftovers(tree) {
  for (const { pid, start } of tree) {
    if (statFields(pid)?.[19] !== start) continue; // gone, or the pid now names another process
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited in between
    }
  }
}

/** A kB field of /proc/PID/status in bytes, or null once the process is gone. */
function statusBytes(pid, field) {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Resident set size in bytes, or null once the process is gone. */
export function rssBytes(pid) {
  return statusBytes(pid, 'VmRSS');
}

/** RSS summed over the pid and its descendants: what a multi-process target costs in memory. */
export function treeRss(pid) {
  return sumOver(processTree(pid), rssBytes);
}

/**
 * The anonymous part of the RSS (heap, stacks, buffers) summed over the tree: VmRSS also counts
 * the file-backed pages of the executable (~45 MiB of node's), shared between processes.
 */
export function treeRssAnon(pid) {
  return sumOver(processTree(pid), (one) => statusBytes(one, 'RssAnon'));
}

/** User + system CPU seconds the process has used so far, or null once it is gone. */
export function cpuSeconds(pid) {
  const fields = statFields(pid);
  // utime and stime are the 14th and 15th fields of the line, 12th and 13th after the name
  return fields ? (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND : null;
}

/** CPU seconds summed over the pid and its (live) descendants. */
export function treeCpuSeconds(pid) {
  return sumOver(processTree(pid), cpuSeconds);
}

function sumOver(tree, read) {
  if (tree.length === 0) return null;
  return tree.reduce((sum, { pid }) => sum + (read(pid) ?? 0), 0);
}

/**
 * Samples the RSS of a process tree every `everyMs` until stop(); stop() returns
 * { peak, peakSingle, processes, samples }: peak of the sum over the tree, and the largest single
 * process seen. The tree is listed once up front (scanning /proc every 50 ms would cost more than
 * it measures) and again only if one of its processes went away.
 */
export function sampleRss(pid, everyMs = 50) {
  let tree = processTree(pid);
  let peak = 0;
  let peakSingle = 0;
  let samples = 0;
  const sample = () => {
    const each = tree.map(({ pid: p }) => rssBytes(p));
    if (each.some((rss) => rss === null)) {
      tree = processTree(pid);
      return;
    }
    samples++;
    peak = Math.max(peak, each.reduce((a, b) => a + b, 0));
    peakSingle = Math.max(peakSingle, ...each);
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { peak, peakSingle, processes: tree.length, samples };
    },
  };
}
