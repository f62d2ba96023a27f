import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compileCidrList, parseCidr } from '../../src/admission/cidr.js';
import { DEFAULT_SPOOL_DIR } from '../../src/config/compile.js';
import { DEFAULT_EXECUTABLE_EXTENSIONS } from '../../src/upload/filename-rules.js';
import { loadConfigFile, loadConfigText } from '../../src/config/load.js';
import type { LoadOptions, LoadResult } from '../../src/config/load.js';
import { compilePathPattern, routePatternProblem } from '../../src/config/path-pattern.js';
import type { CompiledConfig } from '../../src/config/types.js';

const configDir = fileURLToPath(new URL('../../config/', import.meta.url));
const MiB = 2 ** 20;
const sha256 = (text: string) => createHash('sha256').update(text).digest();

function expectConfig(result: LoadResult): CompiledConfig {
  if ('errors' in result) assert.fail(`expected a valid config, got:\n${result.errors.join('\n')}`);
  return result.config;
}

function expectErrors(result: LoadResult): string[] {
  if (!('errors' in result)) assert.fail('expected errors, the config loaded');
  return result.errors;
}

/** Lines joined so a test can write the YAML as an array and know every line number. */
const yaml = (...lines: string[]) => `${lines.join('\n')}\n`;
const load = (text: string, options: LoadOptions = {}) => loadConfigText(text, 'test.yaml', { env: {}, ...options });

describe('shipped configs', () => {
  it('config/default.yaml loads and mirrors the seed app', () => {
    const config = expectConfig(loadConfigFile(join(configDir, 'default.yaml'), { env: {} }));
    assert.deepEqual(config.listen, { host: '0.0.0.0', port: 8080 });
    assert.deepEqual(config.admin, { host: '127.0.0.1', port: 9090 });
    assert.equal(config.upstream.url.href, 'http://127.0.0.1:5000/');
    assert.equal(config.upstream.timeoutMs, 60_000);
    assert.equal(config.apiKeys.length, 0);
    assert.equal(config.routes.length, 1);
    const [upload] = config.routes;
    assert.ok(upload);
    assert.equal(upload.name, 'upload');
    assert.ok(upload.matchesPath('/upload'));
    assert.deepEqual([...upload.methods], ['POST']);
    assert.deepEqual([...upload.policy.allow], ['png', 'jpg', 'jpeg', 'gif', 'mp4', 'mov']);
    assert.equal(upload.policy.maxFileSize, 50 * MiB);
    assert.equal(upload.policy.requireApiKey, false);
    assert.equal(upload.policy.mode, 'spool');
    assert.equal(config.source, join(configDir, 'default.yaml'));
  });

  it('config/examples/full.yaml loads with API_KEY set and uses every section', () => {
    const config = expectConfig(loadConfigFile(join(configDir, 'examples/full.yaml'), { env: { API_KEY: 's3cret' } }));
    assert.deepEqual(config.apiKeys, [{ name: 'ci', sha256: sha256('s3cret') }]);
    assert.equal(config.apiKeyHeader, 'x-api-key');
    assert.deepEqual(config.rateLimitStore, { kind: 'memory' });
    assert.deepEqual(config.storage, { path: '/uploads', minFree: 2 ** 30 });
    assert.deepEqual(config.timeouts, { headersMs: 10_000, bodyIdleMs: 30_000, requestMs: 900_000 });
    assert.deepEqual(config.headerLimits, { maxSize: 16 * 1024, maxCount: 100 });
    assert.equal(config.drainTimeoutMs, 30_000);
    assert.equal(config.stripApiKey, false);
    assert.deepEqual(config.rateLimitStoreOptions, { timeoutMs: 100, onStoreError: 'local', maxTrackedClients: 100_000 });
    assert.deepEqual(config.routes[0]?.policy.keyRateLimit, { ratePerSecond: 20, burst: 40 });
    assert.ok(config.isTrustedProxy('10.1.2.3'));
    const images = config.routes[0]?.policy;
    assert.ok(images);
    assert.deepEqual(images.rateLimit, { ratePerSecond: 5, burst: 10 });
    assert.deepEqual(images.uploadRate, { ratePerSecond: (100 * MiB) / 60, burst: 200 * MiB });
    assert.deepEqual(images.ban, { after: 20, withinMs: 60_000, forMs: 900_000 });
    assert.equal(images.spoolMemoryThreshold, MiB);
    const bulk = config.routes[1];
    assert.ok(bulk);
    assert.equal(bulk.policy.mode, 'stream');
    assert.ok(bulk.matchesPath('/api/files/report.pdf'));
    assert.ok(!bulk.matchesPath('/api/files'));
  });

  it('config/examples/full.yaml without API_KEY names the key and its line', () => {
    const errors = expectErrors(loadConfigFile(join(configDir, 'examples/full.yaml'), { env: {} }));
    assert.equal(errors.length, 1);
    assert.match(errors[0] ?? '', /full\.yaml:\d+: apiKeys\[0\]\.key: environment variable API_KEY is not set$/);
  });

  it('reports a missing file', () => {
    assert.deepEqual(expectErrors(loadConfigFile('/nonexistent/upload-guard.yaml')), [
      '/nonexistent/upload-guard.yaml: cannot read config: file not found',
    ]);
  });
});

describe('defaults', () => {
  it('an empty file is a valid config with every default', () => {
    const config = expectConfig(load(''));
    assert.equal(config.source, 'test.yaml');
    assert.deepEqual(config.listen, { host: '0.0.0.0', port: 8080 });
    assert.deepEqual(config.admin, { host: '127.0.0.1', port: 9090 });
    assert.equal(config.upstream.url.origin, 'http://127.0.0.1:5000');
    assert.equal(config.upstream.timeoutMs, 60_000);
    assert.deepEqual(config.timeouts, { headersMs: 10_000, bodyIdleMs: 30_000, requestMs: 900_000 });
    assert.ok(config.isTrustedProxy('127.0.0.1'));
    assert.ok(config.isTrustedProxy('::1'));
    assert.ok(!config.isTrustedProxy('10.0.0.1'));
    assert.equal(config.apiKeyHeader, 'x-api-key');
    assert.deepEqual(config.rateLimitStore, { kind: 'memory' });
    assert.deepEqual(config.routes, []);
    assert.equal(config.storage, null);
  });

  it('fills policy and route defaults', () => {
    const config = expectConfig(
      load(yaml('routes: [{ name: up, path: /up, policy: p }]', 'policies:', '  p: { allow: [PNG], rateLimit: { rate: 2.5/s }, uploadRate: { rate: 1MiB/s } }')),
    );
    const route = config.routes[0];
    assert.ok(route);
    assert.deepEqual([...route.methods], ['POST', 'PUT', 'PATCH']);
    const { matchesPath: _, ...policy } = { ...route.policy, matchesPath: null };
    assert.deepEqual(policy, {
      name: 'p',
      allow: new Set(['png']),
      verifyContent: true,
      maxFileSize: 50 * MiB,
      maxRequestSize: 50 * MiB,
      maxFiles: 10,
      maxFields: 50,
      maxFieldSize: 64 * 1024,
      requireApiKey: false,
      rateLimit: { ratePerSecond: 2.5, burst: 3 },
      uploadRate: { ratePerSecond: MiB, burst: 50 * MiB },
      filenames: 'secure',
      filenameRules: {
        controlCharacters: 'reject',
        doubleExtensions: 'reject',
        trailingDotsAndSpaces: 'reject',
        windowsReservedNames: 'reject',
        maxLength: 255,
        executableExtensions: new Set(DEFAULT_EXECUTABLE_EXTENSIONS),
      },
      mode: 'spool',
      spoolDir: DEFAULT_SPOOL_DIR,
      spoolMemoryThreshold: MiB,
      reportOnly: false,
      ban: null,
    });
    assert.equal(DEFAULT_SPOOL_DIR, join(tmpdir(), 'upload-guard'));
  });

  it('accepts admin: false, IPv6 listen addresses, bare ports and a redis store', () => {
    const config = expectConfig(load(yaml('listen: "[::]:8443"', 'admin: false', 'rateLimitStore: redis://redis:6379/0')));
    assert.deepEqual(config.listen, { host: '::', port: 8443 });
    assert.equal(config.admin, null);
    assert.deepEqual(config.rateLimitStore, { kind: 'redis', url: 'redis://redis:6379/0' });
    assert.deepEqual(expectConfig(load('listen: 3000\n')).listen, { host: '0.0.0.0', port: 3000 });
  });
});

describe('error reporting', () => {
  it('reports every mistake as file:line: key: message, in file order', () => {
    const text = yaml(
      /*  1 */ 'listen: 0.0.0.0:80800',
      /*  2 */ 'upstream:',
      /*  3 */ '  url: ftp://files.example',
      /*  4 */ 'routes:',
      /*  5 */ '  - { name: upload, path: /upload, methods: [POST], policy: imagez }',
      /*  6 */ '  - { name: upload, path: "/api/*/x", policy: images }',
      /*  7 */ 'policies:',
      /*  8 */ '  images:',
      /*  9 */ '    allow: [png, .jpg]',
      /* 10 */ '    maxFielSize: 64KiB',
      /* 11 */ '    maxFileSize: 50 MiBs',
      /* 12 */ '    maxFiles: 3',
      /* 13 */ '    maxFiles: 4',
      /* 14 */ '    rateLimit: { rate: fast }',
      /* 15 */ '    mode: strem',
      /* 16 */ '  docs:',
      /* 17 */ '    maxFiles: 3',
      /* 18 */ 'storage: { minFree: 1GiB }',
      /* 19 */ 'trustProxy: [10.0.0.0/33, localhost]',
      /* 20 */ 'adminn: { listen: 127.0.0.1:9091 }',
    );
    assert.deepEqual(expectErrors(load(text)), [
      'test.yaml:1: listen: invalid listen address "0.0.0.0:80800": port must be 0-65535',
      'test.yaml:3: upstream.url: upstream URL "ftp://files.example" must use http:// or https://',
      'test.yaml:5: routes[0].policy: unknown policy "imagez" (known: images, docs)',
      'test.yaml:6: routes[1].name: duplicate name "upload" (also used by routes[0])',
      'test.yaml:6: routes[1].path: path "/api/*/x": "*" is only allowed as a final "/*" segment (prefix match)',
      'test.yaml:9: policies.images.allow[1]: an extension is letters and digits without the dot, e.g. "png"',
      'test.yaml:10: policies.images.maxFielSize: unknown key (did you mean "maxFieldSize"?)',
      'test.yaml:11: policies.images.maxFileSize: invalid size "50 MiBs": expected bytes or a number with a unit like "64KiB", "50MiB", "1GiB" (1024-based) or "50MB" (1000-based)',
      'test.yaml:13: policies.images.maxFiles: duplicate key (each key may appear once)',
      'test.yaml:14: policies.images.rateLimit.rate: invalid rate "fast": expected <amount>/<period> like "5/s", "300/min" or "10/h"',
      'test.yaml:15: policies.images.mode: Invalid option: expected one of "spool"|"stream"',
      'test.yaml:16: policies.docs.allow: missing required key',
      'test.yaml:18: storage.path: missing required key',
      'test.yaml:19: trustProxy[0]: invalid CIDR "10.0.0.0/33": prefix length must be 0-32',
      'test.yaml:19: trustProxy[1]: invalid address or CIDR "localhost": expected e.g. "10.0.0.0/8", "fd00::/8" or "127.0.0.1"',
      'test.yaml:20: adminn: unknown key (did you mean "admin"?)',
    ]);
  });

  it('lists the known keys when an unknown key is nothing like them', () => {
    assert.deepEqual(expectErrors(load(yaml('timeouts:', '  zzzzzzzz: 1s'))), [
      'test.yaml:2: timeouts.zzzzzzzz: unknown key (known keys: headers, bodyIdle, request)',
    ]);
  });

  it('reports YAML syntax errors with their line and skips schema noise', () => {
    const errors = expectErrors(load(yaml('listen: 0.0.0.0:8080', 'routes: [', '  { name: a', 'bogus: 1')));
    assert.ok(errors.length >= 1);
    for (const error of errors) assert.match(error, /^test\.yaml:\d+: /);
    assert.ok(!errors.some((error) => error.includes('bogus')), 'no schema errors after a syntax error');
  });

  it('explains an invalid policy name at its key', () => {
    assert.deepEqual(expectErrors(load(yaml('policies:', '  "my policy": { allow: [png] }'))), [
      'test.yaml:2: policies["my policy"]: names may only contain letters, digits, "_", "." and "-"',
    ]);
  });

  it('rejects a non-mapping document', () => {
    assert.deepEqual(expectErrors(load('- a\n- b\n')), ['test.yaml:1: Invalid input: expected object, received array']);
  });

  it('refuses requireApiKey without any api key', () => {
    assert.deepEqual(expectErrors(load(yaml('policies:', '  p:', '    allow: [png]', '    requireApiKey: true'))), [
      'test.yaml:4: policies.p.requireApiKey: requireApiKey is true but apiKeys is empty, so every request would be refused',
    ]);
  });

  it('refuses an admin listener on the public port', () => {
    assert.deepEqual(expectErrors(load(yaml('listen: 0.0.0.0:8080', 'admin: { listen: 127.0.0.1:8080 }'))), [
      'test.yaml:2: admin.listen: admin must not share the public port 8080',
    ]);
  });

  it('refuses sizes and durations of zero where they would block everything', () => {
    assert.deepEqual(expectErrors(load(yaml('timeouts: { headers: 0s }', 'policies: { p: { allow: [png], maxRequestSize: 0 } }'))), [
      'test.yaml:1: timeouts.headers: must be greater than 0',
      'test.yaml:2: policies.p.maxRequestSize: must be greater than 0',
    ]);
  });

  it('refuses an upstream URL with a path, and unknown rate-limit stores', () => {
    assert.deepEqual(expectErrors(load(yaml('upstream: { url: "http://app:5000/base" }', 'rateLimitStore: memcached'))), [
      'test.yaml:1: upstream.url: upstream URL "http://app:5000/base" must be an origin like "http://127.0.0.1:5000" (no path, query or credentials)',
      'test.yaml:2: rateLimitStore: expected "memory" or a redis URL like "redis://host:6379/0", got "memcached"',
    ]);
  });

  it('guards against alias bombs', () => {
    const bomb = yaml('a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 8 }, (_, i) => `${'b'.repeat(i + 1)}: &${'b'.repeat(i + 1)} [${Array(10).fill(i === 0 ? '*a' : `*${'b'.repeat(i)}`).join(', ')}]`));
    const errors = expectErrors(load(bomb));
    assert.match(errors.join('\n'), /alias/i);
  });
});

describe('secrets', () => {
  const dir = mkdtempSync(join(tmpdir(), 'upload-guard-config-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'key.txt'), 'from-file\n');
  const digestHex = sha256('hashed').toString('hex');

  it('resolves inline, ${ENV}, "file:", { file } and sha256 keys', () => {
    const config = expectConfig(
      load(
        yaml(
          'apiKeys:',
          '  - { name: inline, key: plain-key }',
          '  - { name: env, key: "${API_KEY}" }',
          '  - { name: file, key: "file: key.txt" }',
          `  - { name: file2, key: { file: ${join(dir, 'key.txt')} } }`,
          `  - { name: digest, key: "sha256:${digestHex.toUpperCase()}" }`,
          '  - { name: mixed, key: "${PREFIX}-${SUFFIX}" }',
        ),
        { env: { API_KEY: 'from-env', PREFIX: 'a', SUFFIX: 'b' }, baseDir: dir },
      ),
    );
    assert.deepEqual(config.apiKeys, [
      { name: 'inline', sha256: sha256('plain-key') },
      { name: 'env', sha256: sha256('from-env') },
      { name: 'file', sha256: sha256('from-file') },
      { name: 'file2', sha256: sha256('from-file') },
      { name: 'digest', sha256: sha256('hashed') },
      { name: 'mixed', sha256: sha256('a-b') },
    ]);
  });

  it('never reinterprets an environment value as file: or sha256:', () => {
    const config = expectConfig(load(yaml('apiKeys:', '  - { name: env, key: "${K}" }'), { env: { K: 'file: /etc/passwd' } }));
    assert.deepEqual(config.apiKeys[0]?.sha256, sha256('file: /etc/passwd'));
  });

  it('reports each unresolvable key at its line, together with other errors', () => {
    const errors = expectErrors(
      load(
        yaml(
          'apiKeys:',
          '  - { name: env, key: "${MISSING_KEY}" }',
          '  - { name: file, key: "file: nope.txt" }',
          '  - { name: digest, key: "sha256:abcd" }',
          '  - { name: empty, key: "${EMPTY}" }',
          '  - { name: env, key: "${BAD-NAME}" }',
          'listen: nowhere',
        ),
        { env: { EMPTY: '' }, baseDir: dir },
      ),
    );
    assert.deepEqual(errors, [
      'test.yaml:2: apiKeys[0].key: environment variable MISSING_KEY is not set',
      `test.yaml:3: apiKeys[1].key: key file ${join(dir, 'nope.txt')} does not exist`,
      'test.yaml:4: apiKeys[2].key: a "sha256:" key must be followed by exactly 64 hex digits',
      'test.yaml:5: apiKeys[3].key: the key is empty',
      'test.yaml:6: apiKeys[4].name: duplicate name "env" (also used by apiKeys[0])',
      'test.yaml:6: apiKeys[4].key: "${BAD-NAME}" is not a valid environment variable reference',
      'test.yaml:7: listen: invalid listen address "nowhere": expected host:port, e.g. "0.0.0.0:8080" or "[::]:8080"',
    ]);
  });

  it('expands ${VAR} in upstream.url and rateLimitStore, reporting a missing one once', () => {
    const config = expectConfig(
      load(yaml('upstream: { url: "http://${UPSTREAM_HOST}:5000" }', 'rateLimitStore: "redis://:${REDIS_PASSWORD}@redis:6379/0"'), {
        env: { UPSTREAM_HOST: 'app', REDIS_PASSWORD: 'pw' },
      }),
    );
    assert.equal(config.upstream.url.host, 'app:5000');
    assert.deepEqual(config.rateLimitStore, { kind: 'redis', url: 'redis://:pw@redis:6379/0' });
    assert.deepEqual(expectErrors(load(yaml('upstream:', '  url: "http://${UPSTREAM_HOST}:5000"'))), [
      'test.yaml:2: upstream.url: environment variable UPSTREAM_HOST is not set',
    ]);
  });
});

describe('trusted proxies (CIDR)', () => {
  it('matches IPv4 ranges and single addresses', () => {
    const trusted = compileCidrList(['10.0.0.0/8', '192.168.1.7', '172.16.0.0/12']);
    assert.ok(trusted('10.255.0.1'));
    assert.ok(trusted('192.168.1.7'));
    assert.ok(!trusted('192.168.1.8'));
    assert.ok(trusted('172.31.255.255'));
    assert.ok(!trusted('172.32.0.0'));
    assert.ok(!trusted('11.0.0.1'));
  });

  it('matches IPv6 ranges, with or without a zone id', () => {
    const trusted = compileCidrList(['fd00::/8', '::1/128', 'fe80::/10']);
    assert.ok(trusted('fd12:3456::1'));
    assert.ok(trusted('::1'));
    assert.ok(trusted('0:0:0:0:0:0:0:1'));
    assert.ok(!trusted('::2'));
    assert.ok(!trusted('2001:db8::1'));
    assert.ok(trusted('fe80::1%eth0'));
  });

  it('treats IPv4-mapped IPv6 peers as their IPv4 address, both ways', () => {
    const ipv4Rules = compileCidrList(['127.0.0.1/32', '10.0.0.0/8']);
    assert.ok(ipv4Rules('::ffff:127.0.0.1'));
    assert.ok(ipv4Rules('::ffff:7f00:1'));
    assert.ok(ipv4Rules('::FFFF:10.20.30.40'));
    assert.ok(!ipv4Rules('::ffff:192.168.0.1'));
    const mappedRules = compileCidrList(['::ffff:10.0.0.0/104']);
    assert.ok(mappedRules('10.9.9.9'));
    assert.ok(!mappedRules('11.0.0.1'));
  });

  it('never trusts garbage or an empty list', () => {
    const trusted = compileCidrList(['0.0.0.0/0']);
    assert.ok(trusted('8.8.8.8'));
    assert.ok(!trusted('not-an-ip'));
    assert.ok(!trusted(''));
    assert.ok(!compileCidrList([])('127.0.0.1'));
  });

  it('parses and rejects entries', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 'ipv4' });
    assert.deepEqual(parseCidr('::1'), { address: '::1', prefix: 128, family: 'ipv6' });
    for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/-1', '300.0.0.1', 'host.example', '10.0.0.0/8/8']) {
      assert.throws(() => parseCidr(bad), /invalid/, bad);
    }
  });
});

describe('route path patterns', () => {
  it('exact patterns match only the exact path', () => {
    const matches = compilePathPattern('/upload');
    assert.ok(matches('/upload'));
    assert.ok(!matches('/upload/'));
    assert.ok(!matches('/upload/x'));
    assert.ok(!matches('/Upload'));
    assert.ok(!matches('/uploads'));
  });

  it('"/prefix/*" matches everything below the prefix, not the prefix itself', () => {
    const matches = compilePathPattern('/api/files/*');
    assert.ok(matches('/api/files/x'));
    assert.ok(matches('/api/files/x/y/z'));
    assert.ok(matches('/api/files/'));
    assert.ok(!matches('/api/files'));
    assert.ok(!matches('/api/filesx'));
    assert.ok(!matches('/api'));
    assert.ok(compilePathPattern('/*')('/anything/at/all'));
  });

  it('accepts only normalised patterns', () => {
    for (const good of ['/', '/*', '/upload', '/upload/', '/api/files/*', '/a%20b']) assert.equal(routePatternProblem(good), null, good);
    for (const bad of ['upload', '/a//b', '/a/./b', '/a/../b', '/a/*/b', '/a*', '/a/b*', '/up?x=1', '/a%2', '/%41pi', '//*']) {
      assert.notEqual(routePatternProblem(bad), null, bad);
    }
  });

  it('compiled routes keep their order, methods and policy', () => {
    const config = expectConfig(
      load(
        yaml(
          'routes:',
          '  - { name: one, path: /api/files/special, methods: [put], policy: p }',
          '  - { name: all, path: "/api/files/*", methods: [POST, PUT], policy: p }',
          'policies: { p: { allow: [pdf] } }',
        ),
      ),
    );
    const firstMatch = (path: string, method: string) =>
      config.routes.find((route) => route.methods.has(method) && route.matchesPath(path))?.name;
    assert.equal(firstMatch('/api/files/special', 'PUT'), 'one');
    assert.equal(firstMatch('/api/files/special', 'POST'), 'all');
    assert.equal(firstMatch('/api/files', 'POST'), undefined);
    assert.equal(config.routes[1]?.pattern, '/api/files/*');
    assert.equal(config.routes[0]?.policy, config.routes[1]?.policy);
  });
});
