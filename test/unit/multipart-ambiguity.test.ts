// The rules that refuse multipart spellings busboy and Werkzeug read differently
// (docs/multipart-refused.md): the Content-Disposition re-reading (part-headers.ts), the
// delimiter scanner's "--BOUNDARY only as busboy's delimiter" rule, and the boundary parameter
// checks on the request head. test/integration/multipart-differential.test.ts checks the same
// against the real Werkzeug; these pin each rule on its own.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import type { CompiledPolicy } from '../../src/config/types.ts';
import { DelimiterScanner } from '../../src/upload/delimiter-scanner.ts';
import { admitBodyHeaders } from '../../src/upload/header-admission.ts';
import { readPartHeaders } from '../../src/upload/part-headers.ts';

const cd = (value: string): string => `Content-Disposition: ${value}`;

describe('readPartHeaders', () => {
  const accepted: Array<[string, boolean]> = [
    ['form-data; name="a"', false],
    ['form-data; name="file"; filename="a.png"', true],
    ['form-data; name="file"; filename=""', true],
    ["form-data; name=\"file\"; filename*=UTF-8''caf%C3%A9.png", true],
    ["form-data; name=\"file\"; filename*=iso-8859-1'en'caf%E9.png", true],
    ['form-data; name=a; filename=a.png', true],
    ['FORM-DATA;name="a";filename="b.png"', true],
    ['form-data; name="a"  ; filename="a.png"', true], // whitespace after a quoted value is read alike
    ['form-data; name="a\\"b"; filename="x\\\\y.png"', true],
  ];
  for (const [value, hasFilename] of accepted) {
    test(`accepts ${value}`, () => {
      assert.deepEqual(readPartHeaders(`${cd(value)}\r\nContent-Type: image/png`), { problem: null, hasFilename });
    });
  }

  const refused: Array<[string, RegExp]> = [
    ['form-data; name="file"; filename="a.png"; filename="shell.php"', /repeated filename/],
    ["form-data; name=\"file\"; filename*=UTF-8''a.png; filename=\"shell.php\"", /repeated filename/],
    ["form-data; name=\"file\"; filename=\"shell.php\"; filename*=UTF-8''a.png", /repeated filename/],
    ['form-data; name="avatar"; name="file"', /repeated name/],
    ["form-data; name=\"file\"; name*=UTF-8''other", /repeated name/],
    ['form-data; name="file"; filename*0="shell"; filename*1=".php"', /continuation/],
    ["form-data; name=\"file\"; filename*0*=UTF-8''shell.php", /continuation/],
    ['form-data; name="file"; x*y=1; filename="a.png"', /continuation/],
    ["form-data; name=\"file\"; filename*=windows-1252''a%99.png", /charset/],
    ["form-data; name=\"file\"; filename*=utf-16le''a", /charset/],
    ['form-data ; name="file"; filename="a.png"', /unexpected text/],
    ['form-data; name=file ; filename="a.png"', /unexpected text/],
    ["form-data; filename*=UTF-8''a.png ; name=\"f\"", /unexpected text/],
    ['form-data; name="file"; filename="a.png', /unterminated/],
    ['form-data; name="file"; filename = "a.png"', /malformed parameter/],
    ['form-data; name="file";', /malformed parameter/],
    ['; name="file"', /no type/],
  ];
  for (const [value, problem] of refused) {
    test(`refuses ${value}`, () => {
      assert.match(readPartHeaders(cd(value)).problem ?? '', problem);
    });
  }

  test('refuses folded headers and duplicate Content-Disposition headers', () => {
    assert.match(readPartHeaders(`${cd('form-data; name="fi')}\r\n\tle"`).problem ?? '', /folded/);
    assert.match(readPartHeaders(`Content-Type: text/plain;\r\n charset=iso-8859-1\r\n${cd('form-data; name="a"')}`).problem ?? '', /folded/);
    assert.match(readPartHeaders(`${cd('form-data; name="a"')}\r\ncontent-disposition: form-data; name="b"`).problem ?? '', /duplicate Content-Disposition/);
  });

  test('a part without Content-Disposition is left to the part count (busboy skips it)', () => {
    assert.deepEqual(readPartHeaders('Content-Type: image/png'), { problem: null, hasFilename: false });
  });
});

function scan(body: string, boundary = 'XyZ', chunk = 3): DelimiterScanner {
  const scanner = new DelimiterScanner(boundary);
  const bytes = Buffer.from(body, 'latin1');
  for (let i = 0; i < bytes.length && scanner.problem === null; i += chunk) scanner.feed(bytes.subarray(i, i + chunk));
  return scanner;
}

describe('DelimiterScanner: the boundary only as busboy reads a delimiter', () => {
  const part = `Content-Disposition: form-data; name="a"\r\n\r\nv`;
  const cases: Array<[string, string]> = [
    ['LF before the delimiter', `--XyZ\r\n${part}\n--XyZ\r\n${part}\r\n--XyZ--\r\n`],
    ['CR before the delimiter', `--XyZ\r\n${part}\r--XyZ\r\n${part}\r\n--XyZ--\r\n`],
    ['LF-only close delimiter inside content', `--XyZ\r\n${part}\n--XyZ--\n\r\n--XyZ--\r\n`],
    ['no line break before it (the preamble)', `junk--XyZ\r\n${part}\r\n--XyZ--\r\n`],
    ['a part glued to the next delimiter', `--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\n--XyZ\r\n${part}\r\n--XyZ--\r\n`],
    ['inside a header block', `--XyZ\r\nContent-Disposition: form-data; name="a"\r\nX: y\r\n--XyZ\r\n\r\nv\r\n--XyZ--\r\n`],
    ['inside an unfinished header block', `--XyZ\r\nX: --XyZ`],
  ];
  for (const [name, body] of cases) {
    for (const chunk of [1, 2, 3, 7, 1000]) {
      test(`${name} is refused (chunks of ${chunk})`, () => {
        assert.notEqual(scan(body, 'XyZ', chunk).problem, null);
      });
    }
  }

  test('well-formed bodies still pass at every chunk size, an empty part included', () => {
    const body = `preamble\r\n--XyZ\r\n${part}\r\n--XyZ\r\nContent-Disposition: form-data; name="e"\r\n\r\n\r\n--XyZ\r\n\r\n\r\n--XyZ--\r\nepilogue --XyZ\n`;
    for (const chunk of [1, 2, 3, 4, 5, 6, 7, 11, 64, 1000]) {
      const scanner = scan(body, 'XyZ', chunk);
      assert.equal(scanner.problem, null, `chunk ${chunk}`);
      assert.equal(scanner.closed, true);
      assert.equal(scanner.partDelimiters, 3);
    }
  });

  test('epilogueStart: where the bytes busboy must not see begin', () => {
    const scanner = new DelimiterScanner('XyZ');
    scanner.feed(Buffer.from(`--XyZ\r\n${part}\r\n--X`));
    assert.equal(scanner.epilogueStart, null);
    scanner.feed(Buffer.from('yZ--\r\n--XyZ\r\nepilogue'));
    assert.equal(scanner.closed, true);
    assert.equal(scanner.epilogueStart, 4, 'right after "--XyZ--", counted in the chunk just fed');
    scanner.feed(Buffer.from('more'));
    assert.equal(scanner.epilogueStart, 0);
  });

  test('"--BOUNDARY" in content is refused even when it follows no line break', () => {
    assert.notEqual(scan(`--XyZ\r\n${part}x--XyZ\r\n--XyZ--\r\n`).problem, null);
    assert.equal(scan(`--XyZ\r\n${part}x--XyZa\r\n--XyZ--\r\n`, 'XyZb').problem, null, 'another boundary is plain content');
  });
});

describe('admitBodyHeaders: one plain RFC 2046 boundary', () => {
  const policy = { maxRequestSize: 1 << 20 } as CompiledPolicy;
  const head = (contentType: string): IncomingMessage => ({ headers: { 'content-type': contentType }, rawHeaders: ['Content-Type', contentType] }) as unknown as IncomingMessage;
  const admitted = (contentType: string): string | null => {
    try {
      admitBodyHeaders(head(contentType), policy);
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  };

  for (const ok of ['boundary=XyZ', 'boundary="with space"', "boundary=\"'()+_,-./:=?\"", 'boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW', `boundary=${'x'.repeat(70)}`, 'charset=utf-8; BOUNDARY=a']) {
    test(`admits multipart/form-data; ${ok}`, () => assert.equal(admitted(`multipart/form-data; ${ok}`), null));
  }
  const refused: Array<[string, RegExp]> = [
    ["boundary=XyZ; boundary*=utf-8''Other", /exactly one boundary/],
    ['boundary=XyZ; boundary*0=Other', /exactly one boundary/],
    ['boundary=XyZ; boundary=Other', /exactly one boundary/],
    ["boundary*=utf-8''Other", /RFC 2046/],
    ['boundary="XyZ\\\\x"', /RFC 2046/],
    ['boundary="a\\"b"', /RFC 2046/],
    ['boundary=caf\u00e9', /RFC 2046/],
    ['boundary="trailing "', /RFC 2046/],
    [`boundary=${'x'.repeat(71)}`, /RFC 2046/],
    ['boundary=""', /RFC 2046/],
  ];
  for (const [bad, message] of refused) {
    test(`refuses multipart/form-data; ${bad}`, () => assert.match(admitted(`multipart/form-data; ${bad}`) ?? '', message));
  }
});
