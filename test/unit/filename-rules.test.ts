// Dangerous-name rules (src/upload/filename-rules.ts): one block per rule, each action, each
// filename mode where the rule applies.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { loadConfigText } from '../../src/config/load.js';
import { applyFilenameRules, DEFAULT_FILENAME_RULES, type FilenameRules, type FilenameVerdict } from '../../src/upload/filename-rules.js';
import type { FilenameMode } from '../../src/upload/filenames.js';

const rules = (over: Partial<FilenameRules> = {}): FilenameRules => ({ ...DEFAULT_FILENAME_RULES, ...over });

function accepted(mode: FilenameMode, name: string, r: FilenameRules = rules()): { original: string; name: string | null } {
  const v = applyFilenameRules(mode, r, name);
  assert.ok(v.ok, `${mode} ${JSON.stringify(name)} refused: ${JSON.stringify(v)}`);
  return { original: v.original, name: v.name };
}

function refused(mode: FilenameMode, name: string, r: FilenameRules = rules()): Extract<FilenameVerdict, { ok: false }> {
  const v = applyFilenameRules(mode, r, name);
  assert.ok(!v.ok, `${mode} ${JSON.stringify(name)} accepted as ${JSON.stringify(v)}`);
  return v;
}

const MODES: FilenameMode[] = ['secure', 'uuid', 'keep'];

describe('controlCharacters', () => {
  const names = [
    'shell.php\0.jpg',
    'a\x01b.png',
    'a\tb.png',
    'a\nb.png',
    'a\x7fb.png',
    'a\x85b.png', // C1 NEL
    'invoice\u202Egnp.php', // RLO: displays as invoicephp.png
    'x\u202Dy.png',
    'x\u2066y.png',
    'x\u200Fy.png',
    'x\u061Cy.png',
  ];
  for (const mode of MODES) {
    test(`${mode}: NUL, C0/C1 controls and bidi controls are MALFORMED_MULTIPART`, () => {
      for (const name of names) {
        const v = refused(mode, name);
        assert.equal(v.code, 'MALFORMED_MULTIPART', JSON.stringify(name));
        assert.match(v.message ?? '', /control character U\+[0-9A-F]{4} in filename/);
      }
    });
  }

  test('allow: left to the mode (secure drops them)', () => {
    assert.equal(accepted('secure', 'invoice\u202Egnp.png', rules({ controlCharacters: 'allow' })).name, 'invoicegnp.png');
  });

  test('ordinary Unicode is not a control character', () => {
    for (const name of ['Fotos für Oma.jpg', '写真.png', 'café.png', 'emoji 👍.png', 'zero\u200Dwidth.png']) accepted('keep', name);
  });
});

describe('doubleExtensions', () => {
  const dangerous: Array<[string, string]> = [
    ['shell.php.jpg', 'php'],
    ['x.phtml.png', 'phtml'],
    ['x.PHP5.gif', 'php5'],
    ['x.phar.jpg', 'phar'],
    ['x.asp;.jpg', 'asp'],
    ['x.aspx;1.jpg', 'aspx'],
    ['x.jsp%00.png', 'jsp'],
    ['x.php .jpg', 'php'],
    ['x.cer.jpg', 'cer'],
    ['x.shtml.png', 'shtml'],
    ['x.pl.jpg', 'pl'],
    ['x.html.png', 'html'],
    ['x.svg.png', 'svg'],
    ['.php.jpg', 'php'],
    ['a.b.php.c.jpg', 'php'],
    ['x.\uff50\uff48\uff50.png', 'php'], // fullwidth, NFKD-folded as Werkzeug does
    ['x\uff0ephp.png', 'php'], // fullwidth full stop
    ['x.php::$DATA.png', 'php'],
  ];
  for (const mode of ['secure', 'keep'] as const) {
    test(`${mode}: reject (default) names the inner extension`, () => {
      for (const [name, inner] of dangerous) {
        const v = refused(mode, name);
        assert.equal(v.code, 'EXTENSION_NOT_ALLOWED', name);
        assert.equal(v.message, undefined, 'the SPEC message "Invalid file type" stays');
        assert.equal(v.reason, `executable extension .${inner} inside the filename`, name);
      }
    });
  }

  test('strip: the executable segments are dropped', () => {
    const strip = rules({ doubleExtensions: 'strip' });
    assert.equal(accepted('secure', 'shell.php.jpg', strip).name, 'shell.jpg');
    assert.equal(accepted('secure', 'a.b.php.c.jpg', strip).name, 'a.b.c.jpg');
    assert.equal(accepted('secure', 'x.asp;.jpg', strip).name, 'x.jpg');
    assert.equal(accepted('keep', 'x.asp;.jpg', strip).name, 'x.jpg');
    assert.equal(accepted('keep', 'x.jsp%00.png', strip).name, 'x.png');
    // keep mode: what Werkzeug would make of the name is not clean either -> refused after all
    refused('keep', 'x\uff0ephp.png', strip);
  });

  test('allow', () => {
    assert.equal(accepted('secure', 'shell.php.jpg', rules({ doubleExtensions: 'allow' })).name, 'shell.php.jpg');
  });

  test('uuid: the stored name is <uuid>.<ext>, so the rule does not apply', () => {
    assert.match(accepted('uuid', 'shell.php.jpg').name ?? '', /^[0-9a-f-]{36}\.jpg$/);
  });

  test('ordinary multi-dot names pass', () => {
    for (const name of ['archive.tar.gz', 'report.final.v2.pdf', 'google.com.png', 'photo.2024.01.jpg', 'chart.js.png', 'my.config.png']) {
      accepted('secure', name);
      accepted('keep', name);
    }
  });

  test('executableExtensions can be replaced', () => {
    const custom = rules({ executableExtensions: new Set(['exe']) });
    accepted('secure', 'shell.php.jpg', custom);
    refused('secure', 'setup.exe.jpg', custom);
  });
});

describe('trailingDotsAndSpaces', () => {
  for (const mode of ['secure', 'keep'] as const) {
    test(`${mode}: reject (default)`, () => {
      for (const name of ['photo.jpg.', 'photo.jpg ', 'photo.jpg. . ', 'shell.php.', 'a.png...']) {
        assert.equal(refused(mode, name).reason, 'trailing dots or spaces in filename', name);
      }
    });
  }

  test('strip: the original is cleaned before the whitelist sees it', () => {
    const strip = rules({ trailingDotsAndSpaces: 'strip' });
    assert.deepEqual(accepted('keep', 'photo.jpg. ', strip), { original: 'photo.jpg', name: 'photo.jpg' });
    assert.deepEqual(accepted('secure', 'my photo.png..', strip), { original: 'my photo.png', name: 'my_photo.png' });
    // stripping reveals the real extension, and the double-extension rule then sees it
    assert.equal(refused('secure', 'shell.php.jpg.', strip).reason, 'executable extension .php inside the filename');
  });

  test('allow: the existing whitelist still refuses a name without an extension', () => {
    // (finalExtension("photo.jpg.") is null: multipart-filter refuses it with EXTENSION_NOT_ALLOWED)
    assert.equal(accepted('keep', 'photo.jpg.', rules({ trailingDotsAndSpaces: 'allow' })).original, 'photo.jpg.');
  });
});

describe('windowsReservedNames', () => {
  const reserved = ['CON.jpg', 'con.png', 'Nul.gif', 'PRN.jpg', 'AUX.tar.gz', 'COM1.jpg', 'com9.png', 'LPT1.jpg', 'lpt0.png', 'CONIN$.png', 'CLOCK$.jpg', 'COM\u00b9.jpg', 'CON .jpg'];
  test('keep: reject (default)', () => {
    for (const name of reserved) assert.match(refused('keep', name).reason, /^Windows reserved device name /, name);
  });
  test('secure: reject what secure_filename leaves reserved', () => {
    for (const name of ['CON.jpg', 'con.png', 'COM1.jpg', 'LPT1.jpg', 'COM\u00b9.jpg']) assert.match(refused('secure', name).reason, /reserved/, name);
    // secure_filename turns "CON .jpg" into "CON_.jpg": no longer a device name
    assert.equal(accepted('secure', 'CON .jpg').name, 'CON_.jpg');
  });
  test('prefix: "_" in front, as Werkzeug does on Windows', () => {
    assert.equal(accepted('secure', 'CON.jpg', rules({ windowsReservedNames: 'prefix' })).name, '_CON.jpg');
    assert.equal(accepted('keep', 'lpt1.png', rules({ windowsReservedNames: 'prefix' })).name, '_lpt1.png');
  });
  test('allow, uuid, and look-alikes', () => {
    assert.equal(accepted('secure', 'CON.jpg', rules({ windowsReservedNames: 'allow' })).name, 'CON.jpg');
    assert.match(accepted('uuid', 'CON.jpg').name ?? '', /\.jpg$/);
    for (const name of ['CONTRACT.jpg', 'console.png', 'COM10.jpg', 'nullable.png', 'my CON.jpg']) accepted('keep', name);
  });
});

describe('maxLength', () => {
  test('bytes of UTF-8 of the forwarded name, default 255', () => {
    accepted('keep', `${'a'.repeat(251)}.jpg`);
    assert.equal(refused('keep', `${'a'.repeat(252)}.jpg`).reason, 'filename longer than 255 bytes');
    // 64 three-byte characters: 192 + 4 bytes, but 68 characters
    accepted('keep', `${'\u5199'.repeat(64)}.jpg`);
    refused('keep', `${'\u5199'.repeat(84)}.jpg`);
  });
  test('secure: the forwarded (sanitised) name counts', () => {
    // 300 CJK characters (900 bytes) vanish; what is forwarded is "x.jpg"
    assert.equal(accepted('secure', `${'\u5199'.repeat(300)}x.jpg`).name, 'x.jpg');
    // but "é" decomposes to "e" + a combining accent: 300 of them forward 300 bytes
    refused('secure', `${'\u00e9'.repeat(300)}x.jpg`);
    refused('secure', `${'b'.repeat(300)}.jpg`);
  });
  test('configurable', () => {
    refused('secure', 'abcdefghijklmnop.jpg', rules({ maxLength: 16 }));
    accepted('secure', 'abcdefghijkl.jpg', rules({ maxLength: 16 }));
    // uuid names are 36 + 1 + extension bytes
    refused('uuid', 'a.jpg', rules({ maxLength: 16 }));
  });
});

describe('config: filenameRules', () => {
  test('defaults are the safe ones', () => {
    const loaded = loadConfigText('routes: [{ name: u, path: /u, policy: p }]\npolicies:\n  p: { allow: [png] }\n');
    assert.ok('config' in loaded, JSON.stringify(loaded));
    const r = loaded.config.routes[0]!.policy.filenameRules;
    assert.equal(r.controlCharacters, 'reject');
    assert.equal(r.doubleExtensions, 'reject');
    assert.equal(r.trailingDotsAndSpaces, 'reject');
    assert.equal(r.windowsReservedNames, 'reject');
    assert.equal(r.maxLength, 255);
    assert.ok(r.executableExtensions.has('php') && r.executableExtensions.has('phtml') && r.executableExtensions.has('asp'));
  });

  test('every key can be set; bad values are reported', () => {
    const loaded = loadConfigText(
      'routes: [{ name: u, path: /u, policy: p }]\npolicies:\n  p:\n    allow: [png]\n    filenameRules: { doubleExtensions: strip, trailingDotsAndSpaces: allow, windowsReservedNames: prefix, controlCharacters: allow, maxLength: 100, executableExtensions: [PHP, exe] }\n',
    );
    assert.ok('config' in loaded, JSON.stringify(loaded));
    const r = loaded.config.routes[0]!.policy.filenameRules;
    assert.deepEqual({ ...r, executableExtensions: [...r.executableExtensions] }, {
      controlCharacters: 'allow',
      doubleExtensions: 'strip',
      trailingDotsAndSpaces: 'allow',
      windowsReservedNames: 'prefix',
      maxLength: 100,
      executableExtensions: ['php', 'exe'],
    });
    const bad = loadConfigText('policies:\n  p:\n    allow: [png]\n    filenameRules: { doubleExtensions: maybe, maxLenght: 3 }\n');
    assert.ok('errors' in bad);
    assert.ok(bad.errors.some((e) => /doubleExtensions/.test(e)), bad.errors.join('\n'));
    assert.ok(bad.errors.some((e) => /maxLenght/.test(e)), bad.errors.join('\n'));
  });
});
