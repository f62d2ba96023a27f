// CIDR lists for trustProxy: "10.0.0.0/8", "fd00::/8", or a single address ("127.0.0.1").
//
// node:net BlockList does the prefix arithmetic. It treats IPv4 and IPv4-mapped IPv6 as the same
// address in both directions, so a peer seen as "::ffff:127.0.0.1" on a dual-stack socket matches
// "127.0.0.1/32", and an IPv4 peer matches "::ffff:10.0.0.0/104".

import { BlockList, isIP } from 'node:net';

export interface ParsedCidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** Parses one entry; throws an Error with a user-facing message. */
export function parseCidr(entry: string): ParsedCidr {
  const slash = entry.indexOf('/');
  const address = slash < 0 ? entry : entry.slice(0, slash);
  const version = isIP(address);
  if (version === 0) {
    throw new Error(`invalid address or CIDR "${entry}": expected e.g. "10.0.0.0/8", "fd00::/8" or "127.0.0.1"`);
  }
  const maxPrefix = version === 4 ? 32 : 128;
  const prefixText = slash < 0 ? String(maxPrefix) : entry.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= maxPrefix)) {
    throw new Error(`invalid CIDR "${entry}": prefix length must be 0-${maxPrefix}`);
  }
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** Builds a matcher once; the returned closure is what runs per request. Throws on a bad entry. */
export function compileCidrList(list: readonly string[]): (ip: string) => boolean {
  if (list.length === 0) return () => false;
  const blockList = new BlockList();
  for (const entry of list) {
    const cidr = parseCidr(entry);
    blockList.addSubnet(cidr.address, cidr.prefix, cidr.family);
  }
  const check = (ip: string): boolean => {
    // Link-local peers may carry a zone id ("fe80::1%eth0"); the zone is not part of the address.
    const zone = ip.indexOf('%');
    const address = zone < 0 ? ip : ip.slice(0, zone);
    const version = isIP(address);
    if (version === 0) return false;
    return blockList.check(address, version === 4 ? 'ipv4' : 'ipv6');
  };
  // BlockList.check builds a SocketAddress per call (2% of the CPU of a small upload, asked twice
  // per request); a few peers send almost everything, so answers are remembered. Only strings of
  // address length are kept (X-Forwarded-For entries are the client's), and at most MEMO_MAX.
  const memo = new Map<string, boolean>();
  return (ip) => {
    const known = memo.get(ip);
    if (known !== undefined) return known;
    const answer = check(ip);
    if (ip.length <= MEMO_KEY_MAX) {
      if (memo.size >= MEMO_MAX) memo.clear();
      memo.set(ip, answer);
    }
    return answer;
  };
}

const MEMO_MAX = 4096;
/** The longest textual IPv6 address with an IPv4 tail, plus a short zone id. */
const MEMO_KEY_MAX = 64;
