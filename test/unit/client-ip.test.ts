import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileCidrList } from '../../src/admission/cidr.js';
import { clientIp, normaliseAddress, rateLimitKey } from '../../src/admission/client-ip.js';

const trusted = compileCidrList(['127.0.0.1/32', '10.0.0.0/8', 'fd00::/8']);
const trustNobody = compileCidrList([]);

describe('clientIp', () => {
  it('ignores X-Forwarded-For from an untrusted peer (spoofing)', () => {
    assert.equal(clientIp('203.0.113.9', '1.2.3.4', trusted), '203.0.113.9');
    assert.equal(clientIp('203.0.113.9', ['1.2.3.4', '127.0.0.1'], trusted), '203.0.113.9');
    assert.equal(clientIp('127.0.0.1', '1.2.3.4', trustNobody), '127.0.0.1');
  });

  it('uses the peer when a trusted proxy sends no header', () => {
    assert.equal(clientIp('10.1.1.1', undefined, trusted), '10.1.1.1');
    assert.equal(clientIp('10.1.1.1', '', trusted), '10.1.1.1');
  });

  it('walks a trusted chain from the right to the first untrusted address', () => {
    // client-forged entry, then the real client, then two of our proxies
    assert.equal(clientIp('127.0.0.1', '6.6.6.6, 198.51.100.7, 10.0.0.2, 10.0.0.3', trusted), '198.51.100.7');
    assert.equal(clientIp('10.0.0.1', '198.51.100.7', trusted), '198.51.100.7');
  });

  it('joins repeated header lines into one list, ignoring empty elements', () => {
    assert.equal(clientIp('127.0.0.1', ['6.6.6.6, 198.51.100.7', '10.0.0.2'], trusted), '198.51.100.7');
    assert.equal(clientIp('127.0.0.1', '198.51.100.7,, 10.0.0.2,', trusted), '198.51.100.7');
  });

  it('returns the left-most address when every hop is trusted', () => {
    assert.equal(clientIp('127.0.0.1', '10.0.0.5, 10.0.0.6', trusted), '10.0.0.5');
  });

  it('stops at garbage and returns the last valid address reached', () => {
    assert.equal(clientIp('127.0.0.1', '198.51.100.7, unknown, 10.0.0.2', trusted), '10.0.0.2');
    assert.equal(clientIp('127.0.0.1', 'not-an-ip', trusted), '127.0.0.1');
    assert.equal(clientIp('127.0.0.1', '1.2.3.4, 999.1.1.1', trusted), '127.0.0.1');
    assert.equal(clientIp('127.0.0.1', '_hidden, 10.0.0.9', trusted), '10.0.0.9');
    assert.equal(clientIp('127.0.0.1', '1.2.3.4 5.6.7.8', trusted), '127.0.0.1');
  });

  it('normalises IPv4-mapped peers and entries to IPv4', () => {
    assert.equal(clientIp('::ffff:127.0.0.1', '::ffff:198.51.100.7', trusted), '198.51.100.7');
    assert.equal(clientIp('::ffff:203.0.113.9', '1.2.3.4', trusted), '203.0.113.9');
    assert.equal(clientIp('::FFFF:7f00:1', '198.51.100.7', trusted), '198.51.100.7');
  });

  it('handles IPv6 with brackets, ports and mixed case', () => {
    assert.equal(clientIp('::ffff:10.0.0.1', '[2001:DB8::1]:443', trusted), '2001:db8::1');
    assert.equal(clientIp('fd00::1', '2001:db8:0:0:0:0:0:1, [fd00::2]', trusted), '2001:db8::1');
    assert.equal(clientIp('2001:db8::5', '1.2.3.4', trusted), '2001:db8::5');
    assert.equal(clientIp('127.0.0.1', '198.51.100.7:5123', trusted), '198.51.100.7');
  });
});

describe('normaliseAddress', () => {
  it('accepts addresses in their usual spellings', () => {
    assert.equal(normaliseAddress('1.2.3.4'), '1.2.3.4');
    assert.equal(normaliseAddress(' [::1] '), '::1');
    assert.equal(normaliseAddress('fe80::1%eth0'), 'fe80::1');
    assert.equal(normaliseAddress('2001:0db8:0000:0000:0001:0000:0000:0001'), '2001:db8::1:0:0:1');
    assert.equal(normaliseAddress('0:0:0:0:0:ffff:1.2.3.4'), '1.2.3.4');
    assert.equal(normaliseAddress('1:2:3:4:5:6:7:8'), '1:2:3:4:5:6:7:8');
    assert.equal(normaliseAddress('::'), '::');
  });

  it('rejects what is not an address', () => {
    for (const garbage of ['', 'unknown', '1.2.3', '1.2.3.4.5', '01.2.3.4', '::1::2', '1:2:3:4:5:6:7:8:9', '[::1', '[::1]x', 'g::1', '12345::1', '1.2.3.4:port', '[::1]:99999999']) {
      assert.equal(normaliseAddress(garbage), null, garbage);
    }
  });
});

describe('rateLimitKey', () => {
  it('keeps IPv4 and groups IPv6 by /64', () => {
    assert.equal(rateLimitKey('198.51.100.7'), '198.51.100.7');
    assert.equal(rateLimitKey('::ffff:198.51.100.7'), '198.51.100.7');
    assert.equal(rateLimitKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64');
    assert.equal(rateLimitKey('2001:DB8:1:2::1'), rateLimitKey('2001:db8:0001:0002:ffff::9'));
    assert.notEqual(rateLimitKey('2001:db8:1:2::1'), rateLimitKey('2001:db8:1:3::1'));
  });
});
