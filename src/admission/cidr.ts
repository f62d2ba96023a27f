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
  return (ip) => {
    // Link-local peers may carry a zone id ("fe80::1%eth0"); the zone is not part of the address.
    const zone = ip.indexOf('%');
    const address = zone < 0 ? ip : ip.slice(0, zone);
    const version = isIP(address);
    if (version === 0) return false;
    return blockList.check(address, version === 4 ? 'ipv4' : 'ipv6');
  };
}
