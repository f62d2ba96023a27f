// Who the client is, for rate limits, bans and logs.
//
// The socket peer is the client unless it is a trusted proxy (config trustProxy); only then is
// X-Forwarded-For believed. Each proxy appends the address it received the request from, so the
// header is read from the right: trusted proxies are skipped, and the first untrusted address is
// the client. Anything left of that was written by the client itself and may be forged. An entry
// that is not an address (garbage, "unknown", an obfuscated RFC 7239 id) ends the walk: nothing
// beyond it can be vouched for, so the last valid address reached is the answer.
//
// Addresses are normalised so one client has one spelling: brackets and ports dropped, zone ids
// dropped, IPv4-mapped IPv6 (::ffff:1.2.3.4, as a dual-stack socket reports IPv4 peers) turned
// into plain IPv4, IPv6 lower-cased and compressed (RFC 5952).

import { isIPv4 } from 'node:net';

/** The client address; `socketAddress` is req.socket.remoteAddress. */
export function clientIp(
  socketAddress: string,
  xForwardedFor: string | string[] | undefined,
  isTrusted: (ip: string) => boolean,
): string {
  const peer = normaliseAddress(socketAddress) ?? socketAddress;
  if (!isTrusted(peer) || xForwardedFor === undefined) return peer;
  // Several header lines form one list (RFC 9110 5.3); empty elements are allowed and ignored.
  const entries = (Array.isArray(xForwardedFor) ? xForwardedFor.join(',') : xForwardedFor).split(',');
  let lastReached = peer;
  for (let i = entries.length - 1; i >= 0; i--) {
    const text = entries[i]!.trim();
    if (text === '') continue;
    const address = normaliseAddress(text);
    if (address === null) break;
    lastReached = address;
    if (!isTrusted(address)) return address;
  }
  // Every entry trusted (the left-most is then the origin as far as anyone knows), or the walk
  // stopped at garbage.
  return lastReached;
}

/**
 * The rate-limit identity of an address: IPv4 as is, IPv6 by its /64 (one subscriber's LAN gets
 * a whole /64, so per-address buckets would let it mint unlimited fresh ones).
 */
export function rateLimitKey(ip: string): string {
  const normalised = normaliseAddress(ip);
  if (normalised === null) return ip;
  if (isIPv4(normalised)) return normalised;
  const groups = parseIPv6(normalised)!;
  return `${formatIPv6([...groups.slice(0, 4), 0, 0, 0, 0])}/64`;
}

/**
 * One spelling per address, or null when `text` is not an IP address. Accepts "1.2.3.4",
 * "1.2.3.4:5678", "::1", "[::1]", "[::1]:443", "fe80::1%eth0", "::ffff:1.2.3.4".
 */
export function normaliseAddress(text: string): string | null {
  let address = text.trim();
  if (address.startsWith('[')) {
    const close = address.indexOf(']');
    if (close < 0) return null;
    const rest = address.slice(close + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return null;
    address = address.slice(1, close);
  } else if (/^[\d.]+:\d{1,5}$/.test(address)) {
    address = address.slice(0, address.indexOf(':')); // IPv4 with a port
  }
  const zone = address.indexOf('%');
  if (zone >= 0) address = address.slice(0, zone);
  if (isIPv4(address)) return address;
  const groups = parseIPv6(address);
  if (groups === null) return null;
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    return `${groups[6]! >> 8}.${groups[6]! & 0xff}.${groups[7]! >> 8}.${groups[7]! & 0xff}`;
  }
  return formatIPv6(groups);
}

/** The eight 16-bit groups of an IPv6 address (with "::" and a trailing dotted IPv4), or null. */
function parseIPv6(text: string): number[] | null {
  if (text.length > 45 || !/^[0-9A-Fa-f:.]+$/.test(text)) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parseSide = (side: string, mayEndWithIPv4: boolean): number[] | null => {
    if (side === '') return [];
    const groups: number[] = [];
    const parts = side.split(':');
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (mayEndWithIPv4 && i === parts.length - 1 && part.includes('.')) {
        if (!isIPv4(part)) return null;
        const [a, b, c, d] = part.split('.').map(Number) as [number, number, number, number];
        groups.push((a << 8) | b, (c << 8) | d);
      } else if (/^[0-9A-Fa-f]{1,4}$/.test(part)) {
        groups.push(parseInt(part, 16));
      } else {
        return null;
      }
    }
    return groups;
  };
  if (halves.length === 1) {
    const groups = parseSide(text, true);
    return groups !== null && groups.length === 8 ? groups : null;
  }
  const head = parseSide(halves[0]!, false);
  const tail = parseSide(halves[1]!, true);
  if (head === null || tail === null || head.length + tail.length > 7) return null;
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/** RFC 5952: lower case, no leading zeros, the longest run (2+) of zero groups as "::". */
function formatIPv6(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let end = i;
    while (end < groups.length && groups[end] === 0) end++;
    if (end - i > bestLength) {
      bestStart = i;
      bestLength = end - i;
    }
    i = end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}
