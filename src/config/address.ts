// Listen addresses: "host:port", "[ipv6]:port", or a bare port (all interfaces).

import { isIP } from 'node:net';
import type { HostPort } from './types.js';

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
