// A real clamd (Debian clamav-daemon) for tests: started in the foreground on a free TCP port and
// a unix socket in a temp dir, with a signature database written here, so nothing is downloaded
// (no freshclam): an MD5 signature of the EICAR test file, and a body signature of a made-up
// marker that can be hidden anywhere in a file. Missing clamd: callers skip, except in CI.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.ts';

export const CLAMD = findClamd();
if (CLAMD === null && process.env.CI) throw new Error('clamd not found, and CI is set: install clamav-daemon to run this test');

/** CLAMD_BIN overrides the lookup (a path that does not exist counts as missing). */
function findClamd(): string | null {
  const configured = process.env.CLAMD_BIN;
  if (configured !== undefined) return existsSync(configured) ? configured : null;
  const found = spawnSync('sh', ['-c', 'command -v clamd'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (found.status === 0 && path !== '') return path;
  // Debian installs it in /usr/sbin, which a non-root PATH may lack.
  return existsSync('/usr/sbin/clamd') ? '/usr/sbin/clamd' : null;
}

/**
 * The EICAR anti-virus test file (68 bytes). Assembled at run time so this source file is not
 * itself flagged by a scanner on a developer's machine.
 */
export function eicar(): Buffer {
  const pieces = ['X5O!P%@AP[4\\PZX54(P^)7CC)7}$', 'EICAR-STANDARD-ANTIVIRUS', '-TEST-FILE!$H+H*'];
  return Buffer.from(pieces.join(''), 'latin1');
}

/** Bytes the local database calls UploadGuard.Test.Marker wherever they appear in a file. */
export const MARKER = Buffer.from('upload-guard test malware marker 5c1e0b7d', 'latin1');

/** clamd appends ".UNOFFICIAL" to signatures that do not come from the official databases. */
export const EICAR_SIGNATURE = 'Eicar-Test-Signature.UNOFFICIAL';
export const MARKER_SIGNATURE = 'UploadGuard.Test.Marker.UNOFFICIAL';

export interface Clamd {
  child: ChildProcess;
  port: number;
  socketPath: string;
  /** policy scan.clamd for the TCP listener */
  tcpUrl: string;
  /** policy scan.clamd for the unix socket */
  unixUrl: string;
  /** from spawn until clamd answered PING */
  startupMs: number;
  /** SIGSTOP: clamd accepts connections (the kernel does) but reads and answers nothing */
  pause(): void;
  /** SIGCONT */
  resume(): void;
  /** stops clamd (resumes it first when paused) and removes its temp dir */
  stop(): Promise<void>;
}

export interface ClamdOptions {
  /** clamd.conf StreamMaxLength, e.g. "100M" (default) */
  streamMaxLength?: string;
}

export async function startClamd(opts: ClamdOptions = {}): Promise<Clamd> {
  if (CLAMD === null) throw new Error('clamd not installed');
  const dir = mkdtempSync(join(tmpdir(), 'clamd-'));
  const db = join(dir, 'db');
  const socketPath = join(dir, 'clamd.sock');
  mkdirSync(db);
  const sample = eicar();
  // .hdb: md5:size:name of a whole file; .ndb: name:target(0 = any):offset(* = anywhere):hex
  writeFileSync(join(db, 'eicar.hdb'), `${createHash('md5').update(sample).digest('hex')}:${sample.length}:Eicar-Test-Signature\n`);
  writeFileSync(join(db, 'marker.ndb'), `UploadGuard.Test.Marker:0:*:${MARKER.toString('hex')}\n`);
  const port = await freePort();
  const streamMaxLength = opts.streamMaxLength ?? '100M';
  const conf = join(dir, 'clamd.conf');
  writeFileSync(
    conf,
    [
      'Foreground yes',
      `DatabaseDirectory ${db}`,
      `TemporaryDirectory ${dir}`,
      `TCPSocket ${port}`,
      'TCPAddr 127.0.0.1',
      `LocalSocket ${socketPath}`,
      `StreamMaxLength ${streamMaxLength}`,
      // scan whole files up to the largest test upload (clamd's defaults stop at 25-100 MB)
      'MaxFileSize 200M',
      'MaxScanSize 200M',
      'LogTime yes',
      '',
    ].join('\n'),
  );
  const started = performance.now();
  const child = spawn(CLAMD, ['--config-file', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-16 * 1024);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const deadline = Date.now() + 60_000;
  while (!(await pings(port))) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`clamd did not start (exit ${child.exitCode ?? child.signalCode}):\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const startupMs = Math.round(performance.now() - started);
  let stopped: Promise<void> | null = null;
  return {
    child,
    port,
    socketPath,
    tcpUrl: `tcp://127.0.0.1:${port}`,
    unixUrl: `unix:${socketPath}`,
    startupMs,
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    stop(): Promise<void> {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = once(child, 'exit');
          child.kill('SIGCONT');
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
          await exited;
          clearTimeout(timer);
        }
        process.off('exit', killOnExit);
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

/** True when clamd on 127.0.0.1:port answers zPING with PONG. */
export function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2_000, () => done(false));
    socket.once('connect', () => socket.write('zPING\0'));
    socket.on('data', (data: Buffer) => {
      reply += data.toString('latin1');
      if (reply.includes('\0')) done(reply.startsWith('PONG'));
    });
    socket.once('error', () => done(false));
    socket.once('close', () => done(reply.startsWith('PONG')));
  });
}
