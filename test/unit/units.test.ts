import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDuration, parseRate, parseSize } from '../../src/config/units.js';

describe('parseSize', () => {
  it('reads binary, decimal and byte units case-insensitively', () => {
    assert.equal(parseSize('50MiB'), 50 * 1024 * 1024);
    assert.equal(parseSize('50MB'), 50_000_000);
    assert.equal(parseSize('64KiB'), 65_536);
    assert.equal(parseSize('1GiB'), 2 ** 30);
    assert.equal(parseSize('2TiB'), 2 * 2 ** 40);
    assert.equal(parseSize('10kb'), 10_000);
    assert.equal(parseSize('1gib'), 2 ** 30);
    assert.equal(parseSize('512B'), 512);
    assert.equal(parseSize('512'), 512);
    assert.equal(parseSize(' 5 MiB '), 5 * 2 ** 20);
  });

  it('allows decimals and rounds down to whole bytes', () => {
    assert.equal(parseSize('1.5KiB'), 1536);
    assert.equal(parseSize('0.5MB'), 500_000);
    assert.equal(parseSize('1.0001KiB'), 1024);
  });

  it('takes numbers as bytes', () => {
    assert.equal(parseSize(1048576), 1048576);
    assert.equal(parseSize(0), 0);
  });

  it('rejects bad input with a message that names the value', () => {
    for (const bad of ['50 MiBs', 'MiB', '-1MiB', '1e3', '50m', '', 'ten']) {
      assert.throws(() => parseSize(bad), /invalid size/, bad);
    }
    assert.throws(() => parseSize(-1), /whole number >= 0/);
    assert.throws(() => parseSize(1.5), /whole number/);
    assert.throws(() => parseSize(Number.POSITIVE_INFINITY), /invalid size/);
    assert.throws(() => parseSize('99999999TiB'), /too large/);
  });
});

describe('parseDuration', () => {
  it('reads ms, s, m/min, h and d into milliseconds', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('60s'), 60_000);
    assert.equal(parseDuration('1m'), 60_000);
    assert.equal(parseDuration('15m'), 900_000);
    assert.equal(parseDuration('2min'), 120_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('1d'), 86_400_000);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('1H'), 3_600_000);
  });

  it('takes numbers (and bare numeric strings) as seconds', () => {
    assert.equal(parseDuration(60), 60_000);
    assert.equal(parseDuration(0.25), 250);
    assert.equal(parseDuration('30'), 30_000);
  });

  it('rejects bad input', () => {
    for (const bad of ['5 minutes', 'soon', '-1s', '1w', '']) assert.throws(() => parseDuration(bad), /invalid duration/, bad);
    assert.throws(() => parseDuration(-5), /invalid duration/);
  });
});

describe('parseRate', () => {
  it('reads request rates per second', () => {
    assert.equal(parseRate('5/s'), 5);
    assert.equal(parseRate('300/min'), 5);
    assert.equal(parseRate('10/h'), 10 / 3600);
    assert.equal(parseRate('1/d'), 1 / 86_400);
    assert.equal(parseRate('30/5min'), 0.1);
    assert.equal(parseRate('2.5/sec'), 2.5);
    assert.equal(parseRate(7), 7);
  });

  it('reads byte rates with a size numerator', () => {
    assert.equal(parseRate('100MiB/min', 'bytes'), (100 * 2 ** 20) / 60);
    assert.equal(parseRate('1MB/s', 'bytes'), 1_000_000);
    assert.equal(parseRate('600/min', 'bytes'), 10);
  });

  it('rejects bad input', () => {
    assert.throws(() => parseRate('5'), /<amount>\/<period>/);
    assert.throws(() => parseRate('5/week'), /period/);
    assert.throws(() => parseRate('0/s'), /> 0/);
    assert.throws(() => parseRate('5/0s'), /period/);
    assert.throws(() => parseRate('5MiB/s'), /request count/);
    assert.throws(() => parseRate('lots/s', 'bytes'), /size per period/);
    assert.throws(() => parseRate(0), /> 0/);
  });
});
