import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { finalExtension, rewriteFilename, secureFilename } from '../../src/upload/filenames.js';

describe('secureFilename', () => {
  const vectors: Array<[string, string]> = [
    // werkzeug tests/test_utils.py
    ['My cool movie.mov', 'My_cool_movie.mov'],
    ['../../../etc/passwd', 'etc_passwd'],
    ['i contain cool \xfcml\xe4uts.txt', 'i_contain_cool_umlauts.txt'],
    ['__filename__', 'filename'],
    ['foo$&^*)bar', 'foobar'],
    // measured on Werkzeug 2.2.2 (research/multipart-bypasses.md)
    ['....', ''],
    ['.jpg', 'jpg'],
    ['shell.php\0.jpg', 'shell.php.jpg'],
    ['shell.\uff50\uff48\uff50', 'shell.php'],
    ['a\\b.txt', 'ab.txt'],
    ['..%2f..%2favatar.jpg', '2f..2favatar.jpg'],
    ['..\\..\\x.jpg', 'x.jpg'],
    ['CON.jpg', 'CON.jpg'],
    // Python's split() whitespace includes \x1c-\x1f; NFKD turns NBSP and U+2000..U+200A into spaces
    ['a\x1cb\x1dc\x1ed\x1ff\x0bg\x0ch.png', 'a_b_c_d_f_g_h.png'],
    ['a\xa0b\u2003c.png', 'a_b_c.png'],
    ['\ufb01le.png', 'file.png'],
    ['x\uff0fy.png', 'x_y.png'],
    ['x\u2024png', 'x.png'],
    ['', ''],
  ];
  for (const [input, expected] of vectors) {
    test(`${JSON.stringify(input)} -> ${JSON.stringify(expected)}`, () => {
      assert.equal(secureFilename(input), expected);
    });
  }

  test('is a fixed point of itself, so the upstream stores what the guard forwarded', () => {
    for (const name of generateNames(500, 7)) {
      const once = secureFilename(name);
      assert.equal(secureFilename(once), once);
    }
  });

  test('long runs of dots and underscores stay linear', () => {
    const name = `${'._'.repeat(200_000)}x${'._'.repeat(200_000)}`;
    const started = performance.now();
    assert.equal(secureFilename(name), 'x');
    assert.ok(performance.now() - started < 1000);
  });
});

describe('finalExtension', () => {
  test('lower-cases the text after the last dot', () => {
    assert.equal(finalExtension('photo.JPG'), 'jpg');
    assert.equal(finalExtension('archive.tar.GZ'), 'gz');
    assert.equal(finalExtension('shell.php.jpg'), 'jpg');
    assert.equal(finalExtension('a.b'), 'b');
  });
  test('is null without a usable extension', () => {
    assert.equal(finalExtension('README'), null);
    assert.equal(finalExtension(''), null);
    assert.equal(finalExtension('.jpg'), null);
    assert.equal(finalExtension('photo.'), null);
    assert.equal(finalExtension('.'), null);
  });
});

describe('rewriteFilename', () => {
  test('secure: Werkzeug name, null when nothing survives', () => {
    assert.equal(rewriteFilename('secure', '../../My cool movie.mov'), 'My_cool_movie.mov');
    assert.equal(rewriteFilename('secure', 'shell.php\0.jpg'), 'shell.php.jpg');
    assert.equal(rewriteFilename('secure', '....'), null);
    assert.equal(rewriteFilename('secure', '\u6f22\u5b57'), null);
    assert.equal(rewriteFilename('secure', ''), null);
  });

  test('uuid: random UUID plus the lower-cased extension of the secure name', () => {
    const uuidName = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.([a-z0-9_-]+)$/;
    const first = rewriteFilename('uuid', 'Holiday Photo.JPG');
    const second = rewriteFilename('uuid', 'Holiday Photo.JPG');
    assert.match(first ?? '', uuidName);
    assert.equal(uuidName.exec(first ?? '')?.[1], 'jpg');
    assert.notEqual(first, second);
    // the extension is taken after sanitising: NFKD fullwidth letters, NUL dropped
    assert.equal(uuidName.exec(rewriteFilename('uuid', 'x.\uff30\uff2e\uff27') ?? '')?.[1], 'png');
    assert.equal(uuidName.exec(rewriteFilename('uuid', 'shell.php\0.jpg') ?? '')?.[1], 'jpg');
    assert.equal(uuidName.exec(rewriteFilename('uuid', 'x.p"n\0g') ?? '')?.[1], 'png');
  });

  test('uuid: null when the secure name has no extension', () => {
    assert.equal(rewriteFilename('uuid', 'README'), null);
    assert.equal(rewriteFilename('uuid', '.jpg'), null); // secure name is "jpg"
    assert.equal(rewriteFilename('uuid', 'photo.'), null);
    assert.equal(rewriteFilename('uuid', '....'), null);
    assert.equal(rewriteFilename('uuid', ''), null);
  });

  test('keep: original unchanged unless it cannot go into a quoted header value', () => {
    for (const name of ['../../etc/passwd', 'My cool movie.mov', '\xfcml\xe4ut.txt', 'a\\b.png', "it's.png"]) {
      assert.equal(rewriteFilename('keep', name), name);
    }
    for (const name of ['', 'a\0.png', 'a\r.png', 'a\n.png', 'a".png', '"']) {
      assert.equal(rewriteFilename('keep', name), null, JSON.stringify(name));
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Differential test against the real Werkzeug (the Debian python3-werkzeug under /usr/bin/python3).

const PYTHON = '/usr/bin/python3';
const WERKZEUG_MISSING_EXIT = 3;
const GENERATED_NAMES = 5000;

// Reads one JSON string per line, answers one JSON string per line, then one JSON object with
// secure_filename of every single code point (non-empty results only) and Python's unassigned
// (Cn) ranges, so version-gap differences can be told apart from porting bugs.
const PY_SCRIPT = String.raw`
import json, sys, unicodedata
try:
    from werkzeug.utils import secure_filename
    from importlib.metadata import version
except ImportError as e:
    print(e, file=sys.stderr)
    sys.exit(${WERKZEUG_MISSING_EXIT})
out = []
for line in sys.stdin.buffer:
    out.append(json.dumps(secure_filename(json.loads(line))))
table, unassigned = {}, []
for cp in range(0x110000):
    if 0xD800 <= cp <= 0xDFFF:
        continue
    c = chr(cp)
    r = secure_filename(c)
    if r:
        table[cp] = r
    if unicodedata.category(c) == "Cn":
        if unassigned and unassigned[-1][1] == cp - 1:
            unassigned[-1][1] = cp
        else:
            unassigned.append([cp, cp])
out.append(json.dumps({"werkzeug": version("werkzeug"), "unidata": unicodedata.unidata_version,
                       "python": sys.version.split()[0], "table": table, "unassigned": unassigned}))
sys.stdout.write("\n".join(out) + "\n")
`;

interface PythonSummary {
  werkzeug: string;
  unidata: string;
  python: string;
  table: Record<string, string>;
  unassigned: Array<[number, number]>;
}

describe('secureFilename against the real Werkzeug', () => {
  test(`${GENERATED_NAMES} generated names and every code point`, (t) => {
    const names = generateNames(GENERATED_NAMES, 0x5eed);
    const run = spawnSync(PYTHON, ['-I', '-c', PY_SCRIPT], {
      input: names.map((n) => JSON.stringify(n)).join('\n') + '\n',
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      timeout: 120_000,
    });
    const missing =
      (run.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT'
        ? `${PYTHON} not found`
        : run.status === WERKZEUG_MISSING_EXIT
          ? `werkzeug not importable by ${PYTHON}: ${run.stderr.trim()}`
          : null;
    if (missing !== null) {
      if (process.env.CI) assert.fail(`${missing} (install python3-werkzeug)`);
      t.skip(`${missing}; install python3-werkzeug to run the differential test`);
      return;
    }
    assert.equal(run.error, undefined);
    assert.equal(run.status, 0, run.stderr);

    const lines = run.stdout.trimEnd().split('\n');
    assert.equal(lines.length, names.length + 1);
    const mismatches: string[] = [];
    names.forEach((name, i) => {
      const expected = JSON.parse(lines[i]!) as string;
      const actual = secureFilename(name);
      if (actual !== expected) {
        mismatches.push(`${JSON.stringify(name)}: werkzeug ${JSON.stringify(expected)}, port ${JSON.stringify(actual)}`);
      }
    });
    assert.deepEqual(mismatches.slice(0, 20), [], `${mismatches.length} of ${names.length} names differ`);

    // Per-code-point check: NFKD is the only Unicode-dependent step and ASCII code points are all
    // starters, so comparing single code points covers every table difference. A difference is
    // tolerated only where one side does not know the code point (Unicode version gap).
    const summary = JSON.parse(lines[names.length]!) as PythonSummary;
    const unassignedInPython = (cp: number) => summary.unassigned.some(([lo, hi]) => lo <= cp && cp <= hi);
    const portingBugs: string[] = [];
    const versionGap: string[] = [];
    for (let cp = 0; cp < 0x110000; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const char = String.fromCodePoint(cp);
      const expected = summary.table[cp] ?? '';
      const actual = secureFilename(char);
      if (actual === expected) continue;
      const entry = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}: werkzeug ${JSON.stringify(expected)}, port ${JSON.stringify(actual)}`;
      (unassignedInPython(cp) || /\p{Cn}/u.test(char) ? versionGap : portingBugs).push(entry);
    }
    t.diagnostic(
      `Werkzeug ${summary.werkzeug}, Python ${summary.python} (Unicode ${summary.unidata}); ` +
        `Node ${process.version} (Unicode ${process.versions.unicode})`,
    );
    if (versionGap.length > 0) {
      t.diagnostic(`${versionGap.length} code points differ by Unicode version only: ${compactRanges(versionGap)}`);
    }
    assert.deepEqual(portingBugs, []);
  });
});

function compactRanges(entries: string[]): string {
  return entries.length <= 6 ? entries.join('; ') : `${entries.slice(0, 3).join('; ')}; ...; ${entries.slice(-2).join('; ')}`;
}

// ---------------------------------------------------------------------------------------------
// Seeded name generator. Every pool character is assigned since Unicode 6, so generated names must
// match Werkzeug exactly on any Python/Node pairing.

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const chars = (s: string): string[] => [...s];
const range = (from: number, to: number): string[] =>
  Array.from({ length: to - from + 1 }, (_, i) => String.fromCodePoint(from + i));

const POOLS: string[][] = [
  chars('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'),
  chars('!"#$%&\'()*+,-:;<=>?@[]^`{|}~'),
  chars('...___---///\\\\'),
  // ASCII whitespace Python's split() knows, plus Unicode spaces (some NFKD to " ", some don't)
  chars('\t\n\v\f\r\x1c\x1d\x1e\x1f  \x85\xa0\u1680\u2000\u2003\u200a\u2028\u2029\u202f\u205f\u3000'),
  // NUL, C0/C1 controls, DEL, zero-width and bidi controls, BOM, replacement character
  [...range(0x00, 0x08), '\x7f', '\x80', '\x9f', '\u200b', '\u200d', '\u202e', '\ufeff', '\ufffd'],
  // precomposed diacritics, combining marks, letters without decomposition
  chars('\xfc\xe4\xf6\xe9\xe8\xe7\xf1\xc5\xc9\xd8\xdf\xe6\u0130\u0131\u0141\u017f\u1e9b\u01c4\u01c5\u0132'),
  chars('\u0300\u0301\u0308\u0327\u0338\u20dd'),
  // fullwidth forms, incl. fullwidth solidus/reverse solidus/full stop/low line
  [...range(0xff01, 0xff5e), '\uffe3', '\uff65'],
  // ligatures, letterlike and compatibility symbols
  chars('\ufb00\ufb01\ufb02\ufb03\ufb04\ufb05\ufb06\u2122\u2121\u2116\u212a\u212b\u2126\u33cf\u338f\u3392\u32cf'),
  // superscripts, subscripts, fractions, enclosed and parenthesised alphanumerics
  chars('\xb9\xb2\xb3\u2070\u2074\u2079\u207f\u2080\u2089\u1d43\u1d62\xbd\xbc\u2153\u2044\u2460\u2473\u2474\u2488\u24b6\u24d0\u24ea'),
  // dot leaders, small/fullwidth punctuation that NFKD maps to ASCII, other slashes
  chars('\u2024\u2025\u2026\ufe52\ufe63\ufe68\ufe4d\ufe4f\u2215\u29f8\u2216\u2010\u2011\u2012\u2013'),
  // mathematical alphanumerics (astral, surrogate pairs)
  chars('\u{1d400}\u{1d41a}\u{1d482}\u{1d7d8}\u{1d7ce}\u{1d538}\u{1d670}'),
  // emoji, ZWJ sequences, flags, variation selectors, skin tones
  chars('\u{1f600}\u{1f4a9}\u2764\ufe0f\u{1f468}\u200d\u{1f469}\u{1f1e9}\u{1f1ea}\u{1f3fb}\u{1f170}\u{1f130}'),
  // other scripts: Greek, Cyrillic, Hebrew, Arabic, Devanagari, CJK, Hangul, half-width katakana
  chars('\u03b1\u03a9\u0436\u0416\u05d0\u0627\u0915\u0940\u6f22\u5b57\ud55c\uac00\uff76\uff9e\u3131'),
];
const POOL_WEIGHTS = [30, 8, 10, 8, 5, 8, 4, 8, 5, 5, 5, 2, 3, 3];
const EXTENSIONS = ['png', 'jpg', 'JPEG', 'gif', 'mp4', 'mov', 'php', 'pHp5', 'svg', 'html', 'tar.gz', ''];

function generateNames(count: number, seed: number): string[] {
  const random = mulberry32(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const totalWeight = POOL_WEIGHTS.reduce((a, b) => a + b, 0);
  const randomChar = (): string => {
    let r = random() * totalWeight;
    for (let i = 0; i < POOLS.length; i++) {
      r -= POOL_WEIGHTS[i]!;
      if (r < 0) return pick(POOLS[i]!);
    }
    return pick(POOLS[0]!);
  };
  const randomText = (max: number): string => {
    let s = '';
    for (let n = Math.floor(random() * (max + 1)); n > 0; n--) s += randomChar();
    return s;
  };
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const shape = random();
    if (shape < 0.4) {
      names.push(randomText(40));
    } else if (shape < 0.8) {
      // filename-like: optional traversal prefix, stem, separator, extension
      const prefix = pick(['', '', '../', '..\\', '/etc/', 'C:\\', './', '....//', '%2e%2e%2f']);
      const separator = pick(['.', '.', '.', '\0.', '. ', '..', '\uff0e', '\u2024', '\u3002']);
      names.push(prefix + randomText(16) + separator + pick(EXTENSIONS) + randomText(3));
    } else {
      // runs of separators and stripped characters with a little text in between
      const pieces = chars(' ._/\\-\t\x1c\x1f\xa0\u2003\u2024\u2025');
      let s = '';
      for (let n = 1 + Math.floor(random() * 12); n > 0; n--) s += random() < 0.7 ? pick(pieces) : randomChar();
      names.push(s);
    }
  }
  return names;
}
