import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { compileCidrList } from '../../src/admission/cidr.ts';

const LIST = ['10.0.0.0/8', '192.168.1.0/24', '127.0.0.1', 'fd00::/8', '::ffff:172.16.0.0/108'];

const address = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
  fc.constantFrom('10.1.2.3', '127.0.0.1', '::ffff:127.0.0.1', 'fd00::1', 'fe80::1%eth0', '172.16.5.5', 'not-an-ip', ''),
);

test('the remembered answers of a compiled list are the answers of a fresh one, repeats and all', () => {
  fc.assert(
    fc.property(fc.array(address, { minLength: 1, maxLength: 60 }), (ips) => {
      const remembering = compileCidrList(LIST);
      for (const ip of [...ips, ...ips]) assert.equal(remembering(ip), compileCidrList(LIST)(ip), ip);
    }),
    { numRuns: 300 },
  );
});

test('past its size bound the memory starts over and answers stay right', () => {
  const trusted = compileCidrList(['10.0.0.0/8']);
  for (let i = 0; i < 5000; i++) assert.equal(trusted(`11.0.${i >> 8}.${i & 255}`), false);
  for (let i = 0; i < 5000; i++) assert.equal(trusted(`10.0.${i >> 8}.${i & 255}`), true);
  assert.equal(trusted('11.0.0.1'), false);
  assert.equal(trusted('x'.repeat(10_000)), false, 'a long garbage entry is answered, not remembered');
});
