import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DelimiterScanner, rawPartHeader } from '../../src/upload/delimiter-scanner.ts';
import { CanonicalEncoder } from '../../src/upload/canonical-encoder.ts';

function scanInChunks(body: Buffer, boundary: string, chunkSize: number): DelimiterScanner {
  const scanner = new DelimiterScanner(boundary);
  for (let i = 0; i < body.length; i += chunkSize) scanner.feed(body.subarray(i, i + chunkSize));
  return scanner;
}

const wellFormed = Buffer.from(
  '--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue\r\n' +
    '--B\r\nContent-Disposition: form-data; name="f"; filename="x.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG data\r\n' +
    '--B--\r\n',
  'latin1',
);

test('counts parts and keeps header blocks whatever the chunking', () => {
  for (const size of [1, 2, 3, 5, 7, 64, 4096]) {
    const scanner = scanInChunks(wellFormed, 'B', size);
    assert.equal(scanner.problem, null, `chunk ${size}`);
    assert.equal(scanner.closed, true, `chunk ${size}`);
    assert.equal(scanner.partDelimiters, 2, `chunk ${size}`);
    assert.equal(rawPartHeader(scanner.partHeaders[1]!, 'content-type'), 'image/png');
  }
});

test('transport padding after a delimiter is refused', () => {
  const body = Buffer.from('--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--B \t\r\nX: y\r\n\r\nz\r\n--B--\r\n');
  const scanner = scanInChunks(body, 'B', 3);
  assert.match(scanner.problem ?? '', /boundary delimiter/);
});

test('a line that only starts with the boundary is refused', () => {
  const body = Buffer.from('--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--BX\r\nmore\r\n--B--\r\n');
  assert.match(scanInChunks(body, 'B', 4).problem ?? '', /boundary delimiter/);
});

test('a missing close delimiter leaves the scanner open', () => {
  const body = Buffer.from('--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nv');
  const scanner = scanInChunks(body, 'B', 4);
  assert.equal(scanner.closed, false);
});

test('duplicate part headers are reported as ambiguous', () => {
  assert.equal(rawPartHeader('Content-Type: a\r\ncontent-type: b', 'content-type'), null);
  assert.equal(rawPartHeader('Content-Disposition: form-data', 'content-type'), undefined);
});

test('the canonical encoder frames parts with its own boundary', () => {
  const encoder = new CanonicalEncoder();
  const body = Buffer.concat([
    encoder.partHead('a', null, null),
    Buffer.from('value'),
    encoder.partHead('f', 'x.png', 'image/png'),
    Buffer.from('bytes'),
    encoder.end(),
  ]);
  const scanner = scanInChunks(body, encoder.boundary, 9);
  assert.equal(scanner.problem, null);
  assert.equal(scanner.closed, true);
  assert.equal(scanner.partDelimiters, 2);
  assert.match(body.toString('latin1'), /Content-Disposition: form-data; name="f"; filename="x.png"\r\nContent-Type: image\/png\r\n\r\nbytes\r\n/);
});
