// Listen addresses: "host:port", "[ipv6]:port", or a bare port (all interfaces). Also clamd's
// address (policy scan.clamd): "tcp://host:port" or "unix:/path".

import { isIP } from 'node:net';
import type { ClamdAddress, HostPort } from './types.js';

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

function parsePort(text: string, input: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  // Port 0 is allowed on purpose: tests listen on an ephemeral port.
  if (!(port >= 0 && port <= 65535)) throw new Error(`invalid listen address "${input}": port must be 0-65535`);
  return port;
}

/** Parses a listen address; throws an Error with a user-facing message. */
export function parseHostPort(input: string | number): HostPort {
  if (typeof input === 'number') return { host: '0.0.0.0', port: parsePort(String(input), String(input)) };
  const bracketed = /^\[([^\]]+)\]:([^:]*)$/.exec(input);
  if (bracketed !== null) {
    const host = bracketed[1] ?? '';
    if (isIP(host) !== 6) throw new Error(`invalid listen address "${input}": "${host}" is not an IPv6 address`);
    return { host, port: parsePort(bracketed[2] ?? '', input) };
  }
  const colon = input.lastIndexOf(':');
  if (colon < 0 || input.indexOf(':') !== colon) {
    throw new Error(`invalid listen address "${input}": expected host:port, e.g. "0.0.0.0:8080" or "[::]:8080"`);
  }
  const host = input.slice(0, colon);
  if (host !== '' && isIP(host) === 0 && !HOSTNAME.test(host)) {
    throw new Error(`invalid listen address "${input}": "${host}" is not a host name or IP address`);
  }
  return { host: host === '' ? '0.0.0.0' : host, port: parsePort(input.slice(colon + 1), input) };
}

/** clamd's port when tcp:// names none (clamd.conf's usual TCPSocket). */
export const CLAMD_DEFAULT_PORT = 3310;

/**
 * clamd's address: "tcp://host[:port]" (default port 3310; IPv6 as "tcp://[::1]:3310") or
 * "unix:/absolute/path" ("unix:///path" too). Throws an Error with a user-facing message.
 */
export function parseClamdAddress(input: string): ClamdAddress {
  const expected = 'expected "tcp://host:3310" or "unix:/path/to/clamd.sock"';
  if (input.startsWith('unix:')) {
    const path = input.slice('unix:'.length).replace(/^\/\/(?=\/)/, '');
    if (!path.startsWith('/') || path.includes('\0')) throw new Error(`invalid clamd address "${input}": a unix socket needs an absolute path, ${expected}`);
    return { kind: 'unix', path };
  }
  if (!input.startsWith('tcp://') || !URL.canParse(input)) throw new Error(`invalid clamd address "${input}": ${expected}`);
  const url = new URL(input);
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new Error(`invalid clamd address "${input}": only a host and a port, ${expected}`);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host) === 0 && !HOSTNAME.test(host)) throw new Error(`invalid clamd address "${input}": "${host}" is not a host name or IP address`);
  const port = url.port === '' ? CLAMD_DEFAULT_PORT : Number(url.port);
  if (!(port >= 1 && port <= 65535)) throw new Error(`invalid clamd address "${input}": port must be 1-65535`);
  return { kind: 'tcp', host, port };
}
