import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { GuardError } from '../../src/errors.js';
import { normalizeTarget } from '../../src/server/normalize-target.js';

function assertMalformed(target: string, reason?: RegExp, method?: string): void {
  assert.throws(
    () => normalizeTarget(target, method),
    (err: unknown) => {
      assert.ok(err instanceof GuardError, `expected GuardError for ${JSON.stringify(target)}`);
      assert.equal(err.code, 'MALFORMED_REQUEST');
      assert.equal(err.status, 400);
      if (reason !== undefined) assert.match(err.message, reason);
      return true;
    },
    JSON.stringify(target),
  );
}

describe('normalizeTarget: accepted targets', () => {
  // [raw target, path, query, matchPath (defaults to path)]
  const vectors: Array<[string, string, string, string?]> = [
    ['/upload', '/upload', ''],
    ['/upload?x=1', '/upload', '?x=1'],
    ['/upload?', '/upload', '?'],
    ['/upload#x', '/upload', ''],
    ['/upload?x=1#frag', '/upload', '?x=1'],
    ['/', '/', ''],
    ['/upload/', '/upload/', ''],
    ['http://evil/upload', '/upload', ''],
    ['http://127.0.0.1:5000/upload?x=1', '/upload', '?x=1'],
    ['HTTPS://host/upload', '/upload', ''],
    ['http://host', '/', ''],
    ['http://host?x', '/', '?x'],
    ['http://user@host:8080/a/../upload#f', '/upload', ''],
    // unreserved escapes decoded
    ['/%75pload', '/upload', ''],
    ['/up%6coad', '/upload', ''],
    ['/%55%50%4C%4F%41%44', '/UPLOAD', ''],
    ['/%7e%2d%5f%41z', '/~-_Az', ''],
    // repeated slashes
    ['//upload', '/upload', ''],
    ['///upload//', '/upload/', ''],
    ['/a//b', '/a/b', ''],
    // dot segments, plain and encoded
    ['/./upload', '/upload', ''],
    ['/a/../upload', '/upload', ''],
    ['/../upload', '/upload', ''],
    ['/../../..', '/', ''],
    ['/%2e/upload', '/upload', ''],
    ['/%2e%2e/upload', '/upload', ''],
    ['/a/.%2E/upload', '/upload', ''],
    ['/a/%2E./upload', '/upload', ''],
    ['/a/b/./../c/.', '/a/c/', ''],
    ['/a/..', '/', ''],
    ['/a//../b', '/b', ''],
    ['/upload/.', '/upload/', ''],
    ['/.upload/...', '/.upload/...', ''],
    ['/a/..b/c', '/a/..b/c', ''],
    // other escapes kept, hex upper-cased; matchPath fully decoded
    ['/caf%C3%A9', '/caf%C3%A9', '', '/café'],
    ['/caf%c3%a9', '/caf%C3%A9', '', '/café'],
    ['/a%20b', '/a%20b', '', '/a b'],
    ['/100%25', '/100%25', '', '/100%'],
    ['/double%252F', '/double%252F', '', '/double%2F'],
    ['/q%3Fx', '/q%3Fx', '', '/q?x'],
    ['/%e2%82%ac/%41', '/%E2%82%AC/A', '', '/€/A'],
    // raw sub-delims, ':' and '@' are plain path characters
    ["/a:b@c!$&'()*+,;=", "/a:b@c!$&'()*+,;=", ''],
    ['/upload?a=%zz&b=%2F', '/upload', '?a=%zz&b=%2F'],
  ];
  for (const [raw, path, query, matchPath] of vectors) {
    test(JSON.stringify(raw), () => {
      assert.deepEqual(normalizeTarget(raw), {
        path,
        query,
        forwardTarget: path + query,
        matchPath: matchPath ?? path,
      });
    });
  }

  test('asterisk-form only for OPTIONS', () => {
    assert.deepEqual(normalizeTarget('*', 'OPTIONS'), { path: '*', query: '', forwardTarget: '*', matchPath: '*' });
    assert.equal(normalizeTarget('*').path, '*');
    assertMalformed('*', /OPTIONS/, 'POST');
  });

  test('normalising is idempotent', () => {
    for (const [raw] of vectors) {
      const once = normalizeTarget(raw);
      const twice = normalizeTarget(once.forwardTarget);
      assert.deepEqual(twice, once, raw);
    }
  });
});

describe('normalizeTarget: refused targets', () => {
  const refused: Array<[string, RegExp]> = [
    ['/upload%2F..', /encoded slash/],
    ['/upload%2f', /encoded slash/],
    ['/a%5Cb', /encoded slash or backslash/],
    ['/a\\b', /backslash/],
    ['/upload%00', /NUL/],
    ['/upload\0', /invalid character/],
    ['/%zz', /invalid percent-escape/],
    ['/%4', /invalid percent-escape/],
    ['/%4?x', /invalid percent-escape/],
    ['/a%', /invalid percent-escape/],
    ['/%FF', /UTF-8/],
    ['/%C3', /UTF-8/],
    ['/%C0%AF', /UTF-8/], // overlong '/'
    ['/%ED%A0%80', /UTF-8/], // surrogate
    ['/a b', /invalid character/],
    ['/a\tb', /invalid character/],
    ['/a\x7f', /invalid character/],
    ['/caf\u00c3\u00a9', /invalid character/], // raw UTF-8 bytes as Node's latin1 req.url
    ['/upload?a b', /query/],
    ['/upload?a\nb', /query/],
    ['upload', /origin-form/],
    ['', /origin-form/],
    ['ftp://host/upload', /origin-form/],
    ['http:/upload', /origin-form/],
    ['host:443', /origin-form/],
    ['http:///upload', /empty authority/],
    ['http://ho st/upload', /authority/],
    ['http://evil\\@host/upload', /authority/],
    ['?x=1', /origin-form/],
  ];
  for (const [raw, reason] of refused) {
    test(JSON.stringify(raw), () => assertMalformed(raw, reason));
  }
});

// Oracle: the real Werkzeug (Debian python3-werkzeug, what the test upstream runs) computes
// PATH_INFO exactly as its dev server does (serving.py make_environ) and routes it.
const PYTHON = '/usr/bin/python3';
const ORACLE = String.raw`
import json, sys
from werkzeug.urls import url_parse, url_unquote
from werkzeug.routing import Map, Rule
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect
urls = Map([Rule('/upload', endpoint='upload', methods=['POST'])]).bind('localhost')
def path_info(target):
    u = url_parse(target)
    p = f"/{u.netloc}{u.path}" if (not u.scheme and u.netloc) else u.path
    return url_unquote(p)
out = []
for t in json.load(sys.stdin):
    pi = path_info(t)
    try:
        routed = urls.match(pi, method='POST')[0]
    except RequestRedirect as e:
        routed = 'redirect:' + e.new_url
    except HTTPException as e:
        routed = None
    out.append({'pathInfo': pi, 'routed': routed})
json.dump(out, sys.stdout)
`;
const hasWerkzeug =
  existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import werkzeug.routing, werkzeug.urls']).status === 0;

describe('normalizeTarget against Werkzeug', { skip: !hasWerkzeug && 'no python3-werkzeug' }, () => {
  function werkzeug(targets: string[]): Array<{ pathInfo: string; routed: string | null }> {
    const r = spawnSync(PYTHON, ['-c', ORACLE], { input: JSON.stringify(targets) });
    assert.equal(r.status, 0, r.stderr.toString());
    return JSON.parse(r.stdout.toString()) as Array<{ pathInfo: string; routed: string | null }>;
  }

  const targets = [
    '/upload', '/upload?x=1', '/upload#x', '//upload', '///upload', '/%75pload', '/up%6Coad',
    '/UPLOAD', '/upload/', 'http://evil/upload', 'https://h:1/upload?x', '//evil.com/upload',
    '/./upload', '/a/../upload', '/../upload', '/%2e/upload', '/%2e%2e/upload', '/a//b',
    '/caf%C3%A9', '/a%20b', '/100%25', '/double%252F', '/q%3Fx', '/%E2%82%AC', '/upload%3F',
    '/upload%23', '/upload;x', '/up%6coad?a=1#b', '//up%6coad', '/x/..//upload',
  ];

  test('upstream PATH_INFO of the forwarded target is matchPath', () => {
    const guard = targets.map((t) => normalizeTarget(t));
    const seen = werkzeug(guard.map((g) => g.forwardTarget));
    guard.forEach((g, i) => assert.equal(seen[i]!.pathInfo, g.matchPath, targets[i]));
  });

  test('every raw target Werkzeug routes to /upload is matched as /upload by the guard', () => {
    const seen = werkzeug(targets);
    targets.forEach((t, i) => {
      const routed = seen[i]!.routed;
      if (routed === 'upload' || routed?.endsWith('/upload')) {
        assert.equal(normalizeTarget(t).matchPath, '/upload', t);
      }
    });
    // the oracle itself sees the bypasses of research/multipart-bypasses.md "Routing"
    for (const t of ['/upload?x=1', '/%75pload', '//upload', 'http://evil/upload', '/upload#x']) {
      assert.equal(seen[targets.indexOf(t)]!.routed, 'upload', t);
    }
  });
});
