import { spawnSync } from 'node:child_process';
import { randomBytes, randomFillSync } from 'node:crypto';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32, deflateRawSync, deflateSync } from 'node:zlib';
import { zipBytes } from '../helpers/attack-files.ts';

import {
  ACTIVE_CONTENT_MARKERS,
  SNIFF_BYTES,
  checkContent,
  findActiveContent,
} from '../../src/upload/content-check.js';
import { KNOWN_EXTENSIONS, categoryOf, fileKind } from '../../src/upload/file-kinds.js';

// ---- sample builders: tiny but real files ------------------------------------------------------

const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');

function u32be(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function pngChunk(type: string, data: Buffer): Buffer {
  const typeAndData = Buffer.concat([ascii(type), data]);
  return Buffer.concat([u32be(data.length), typeAndData, u32be(crc32(typeAndData))]);
}

/** A valid 1x1 RGB PNG; `before` chunks go between IHDR and IDAT (tEXt, acTL, ...). */
function png(before: Buffer[] = []): Buffer {
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
  const idat = deflateSync(Buffer.from([0, 0xff, 0x00, 0x00]));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    ...before,
    pngChunk('IDAT', idat),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** SOI + APP0 JFIF header (+ optional COM segment) + EOI. */
function jpeg(comment?: string): Buffer {
  const app0 = Buffer.from([
    0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
  ]);
  const parts: Buffer[] = [Buffer.from([0xff, 0xd8]), app0];
  if (comment !== undefined) {
    const body = ascii(comment);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(body.length + 2);
    parts.push(Buffer.from([0xff, 0xfe]), len, body);
  }
  parts.push(Buffer.from([0xff, 0xd9]));
  return Buffer.concat(parts);
}

/** GIF89a, 1x1, global colour table of 2, one image block, trailer. */
function gif(): Buffer {
  return Buffer.concat([
    ascii('GIF89a'),
    Buffer.from([1, 0, 1, 0, 0x80, 0, 0]),
    Buffer.from([0, 0, 0, 0xff, 0xff, 0xff]),
    Buffer.from([0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0]),
    Buffer.from([2, 2, 0x4c, 0x01, 0]),
    Buffer.from([0x3b]),
  ]);
}

/** RIFF/WEBP container with a VP8L chunk (1x1). */
function webp(): Buffer {
  const vp8l = Buffer.from([0x2f, 0, 0, 0, 0, 0x88, 0x88, 0x08, 0x08]);
  const chunk = Buffer.concat([ascii('VP8L'), Buffer.from([vp8l.length, 0, 0, 0]), vp8l, Buffer.alloc(1)]);
  const body = Buffer.concat([ascii('WEBP'), chunk]);
  const size = Buffer.alloc(4);
  size.writeUInt32LE(body.length);
  return Buffer.concat([ascii('RIFF'), size, body]);
}

function box(type: string, payload: Buffer): Buffer {
  return Buffer.concat([u32be(8 + payload.length), ascii(type), payload]);
}

/** ISO BMFF: ftyp with the given major brand, then a free box and an empty mdat. */
function isoBmff(major: string, compatible: string[]): Buffer {
  const ftyp = box('ftyp', Buffer.concat([ascii(major), u32be(0x200), ...compatible.map(ascii)]));
  return Buffer.concat([ftyp, box('free', Buffer.alloc(8)), box('mdat', Buffer.alloc(16))]);
}

function pdf(): Buffer {
  return ascii(
    '%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n' +
      '2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n' +
      'trailer<</Root 1 0 R>>\n%%EOF\n',
  );
}


const OOXML = {
  docx: { dir: 'word', main: 'document.xml', type: 'wordprocessingml.document' },
  xlsx: { dir: 'xl', main: 'workbook.xml', type: 'spreadsheetml.sheet' },
  pptx: { dir: 'ppt', main: 'presentation.xml', type: 'presentationml.presentation' },
} as const;
type OoxmlExt = keyof typeof OOXML;

function contentTypesXml(ext: OoxmlExt): Buffer {
  const { dir, main, type } = OOXML[ext];
  return ascii(
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' +
      '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">' +
      '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>' +
      '<Default Extension="xml" ContentType="application/xml"/>' +
      `<Override PartName="/${dir}/${main}" ContentType="application/vnd.openxmlformats-officedocument.${type}.main+xml"/>` +
      '</Types>',
  );
}

const ROOT_RELS = ascii(
  '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' +
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"/>',
);

/** OOXML package in the order Office writes it: [Content_Types].xml first. */
function ooxml(ext: OoxmlExt): Buffer {
  const { dir, main } = OOXML[ext];
  return zipBytes([
    { name: '[Content_Types].xml', data: contentTypesXml(ext) },
    { name: '_rels/.rels', data: ROOT_RELS },
    { name: `${dir}/${main}`, data: ascii('<?xml version="1.0"?><root/>') },
  ]);
}

/** OOXML package in openpyxl/LibreOffice order: parts first, [Content_Types].xml last. */
function ooxmlContentTypesLast(ext: OoxmlExt, bigMedia: Buffer): Buffer {
  const { dir, main } = OOXML[ext];
  return zipBytes([
    { name: '_rels/.rels', data: ROOT_RELS },
    { name: `${dir}/${main}`, data: ascii('<?xml version="1.0"?><root/>') },
    { name: `${dir}/media/image1.png`, data: bigMedia, method: 0 },
    { name: '[Content_Types].xml', data: contentTypesXml(ext) },
  ]);
}

function plainZip(): Buffer {
  return zipBytes([{ name: 'readme.txt', data: ascii('hello\n') }, { name: 'data/a.bin', data: Buffer.alloc(64, 7) }]);
}

/** The head a caller hands over: at most SNIFF_BYTES, complete when the file fits. */
function headOf(file: Buffer): [Buffer, boolean] {
  return [file.subarray(0, SNIFF_BYTES), file.length <= SNIFF_BYTES];
}

async function verdictFor(ext: string, file: Buffer) {
  const [head, complete] = headOf(file);
  return checkContent(ext, head, complete);
}

async function assertAccepted(ext: string, file: Buffer, detected?: string): Promise<void> {
  const v = await verdictFor(ext, file);
  assert.equal(v.ok, true, `expected .${ext} accepted, got ${JSON.stringify(v)}`);
  if (detected !== undefined && v.ok) assert.equal(v.detected, detected);
}

async function assertRefused(ext: string, file: Buffer, reason?: RegExp): Promise<void> {
  const v = await verdictFor(ext, file);
  assert.equal(v.ok, false, `expected .${ext} refused`);
  if (!v.ok) {
    assert.equal(v.code, 'CONTENT_MISMATCH');
    if (reason !== undefined) assert.match(v.reason, reason);
  }
}

// ---- tests ---------------------------------------------------------------------------------------

describe('file kinds', () => {
  test('categories', () => {
    assert.equal(categoryOf('png'), 'image');
    assert.equal(categoryOf('JPG'), 'image');
    assert.equal(categoryOf('mov'), 'video');
    assert.equal(categoryOf('docx'), 'document');
    assert.equal(categoryOf('csv'), 'document');
    assert.equal(categoryOf('zip'), 'other');
    assert.equal(categoryOf('exe'), 'other');
  });

  test('every known extension is either text or has expected sniff results', () => {
    for (const ext of KNOWN_EXTENSIONS) {
      const kind = fileKind(ext)!;
      assert.ok(kind.text === true || (kind.expected !== undefined && kind.expected.length > 0), ext);
      assert.equal(ext, ext.toLowerCase());
    }
    assert.deepEqual(fileKind('jpeg')?.expected, ['jpg']);
    assert.equal(fileKind('txt')?.text, true);
    assert.equal(fileKind('svg'), undefined);
  });
});

describe('checkContent: each sample accepted under its own extension', () => {
  const samples: Array<[string, () => Buffer, string]> = [
    ['png', () => png(), 'png'],
    ['jpg', () => jpeg(), 'jpg'],
    ['jpeg', () => jpeg(), 'jpg'],
    ['gif', gif, 'gif'],
    ['webp', webp, 'webp'],
    ['mp4', () => isoBmff('isom', ['isom', 'iso2', 'avc1', 'mp41']), 'mp4'],
    ['mp4', () => isoBmff('mp42', ['mp42', 'isom']), 'mp4'],
    ['mp4', () => isoBmff('M4V ', ['M4V ', 'M4A ', 'mp42', 'isom']), 'm4v'],
    ['mov', () => isoBmff('qt  ', ['qt  ']), 'mov'],
    ['heic', () => isoBmff('heic', ['mif1', 'heic']), 'heic'],
    ['avif', () => isoBmff('avif', ['avif', 'mif1']), 'avif'],
    ['pdf', pdf, 'pdf'],
    ['docx', () => ooxml('docx'), 'docx'],
    ['xlsx', () => ooxml('xlsx'), 'xlsx'],
    ['pptx', () => ooxml('pptx'), 'pptx'],
    ['zip', plainZip, 'zip'],
  ];
  for (const [ext, make, detected] of samples) {
    test(`${ext} (${detected})`, async () => assertAccepted(ext, make(), detected));
  }

  test('animated PNG is a PNG', async () => {
    const actl = pngChunk('acTL', Buffer.from([0, 0, 0, 1, 0, 0, 0, 0]));
    await assertAccepted('png', png([actl]), 'apng');
  });

  test('text kinds', async () => {
    await assertAccepted('csv', ascii('name,size\nfoo,1\n'));
    await assertAccepted('txt', ascii('hello world\r\n\ttabbed \x1b[1mbold\x1b[0m\n'));
    await assertAccepted('json', ascii('{"a": [1, 2, "caf\xc3\xa9"]}'));
    await assertAccepted('txt', Buffer.alloc(0));
    // "BM" is the bmp signature; a CSV about BMI is still text.
    await assertAccepted('csv', ascii('BMI,height,weight\n21.5,180,70\n'));
  });
});

describe('checkContent: disguised content refused', () => {
  test('jpg bytes under .png', async () => assertRefused('png', jpeg(), /content is jpg, not \.png/));
  test('png bytes under .jpg', async () => assertRefused('jpg', png(), /content is png/));
  test('mov under .mp4 and mp4 under .mov', async () => {
    await assertRefused('mp4', isoBmff('qt  ', ['qt  ']));
    await assertRefused('mov', isoBmff('isom', ['isom']));
  });
  test('plain zip under .docx', async () => assertRefused('docx', plainZip(), /a zip is not a \.docx/));
  test('xlsx under .docx, docx under .pptx', async () => {
    await assertRefused('docx', ooxml('xlsx'), /content is xlsx/);
    await assertRefused('pptx', ooxml('docx'), /content is docx/);
  });
  test('docx under .zip', async () => assertRefused('zip', ooxml('docx')));

  test('GIF89a followed by PHP', async () => {
    await assertRefused('gif', Buffer.concat([ascii('GIF89a'), ascii('<?php system($_GET[c]); ?>')]), /active content \(<\?php\)/);
    await assertRefused('gif', Buffer.concat([gif(), ascii('<?php system($_GET[c]); ?>')]), /<\?php/);
  });
  test('PNG with PHP in a tEXt chunk', async () => {
    const text = pngChunk('tEXt', ascii('Comment\0<?php echo `id`; ?>'));
    await assertRefused('png', png([text]), /<\?php/);
  });
  test('JPEG with PHP in a COM segment, and after EOI', async () => {
    await assertRefused('jpg', jpeg('<?=`$_GET[0]`?>'), /<\?=/);
    await assertRefused('jpg', Buffer.concat([jpeg(), ascii('<?php\nsystem($_GET["c"]);')]), /<\?php/);
  });
  test('HTML under .jpg, with and without JPEG magic', async () => {
    await assertRefused('jpg', ascii('<html><body>hi</body></html>'), /<html/);
    await assertRefused('jpg', Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), ascii('<!DOCTYPE html><p>x')]));
  });
  test('SVG under .png', async () => {
    const svg = '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>';
    await assertRefused('png', ascii(svg), /active content/);
    await assertRefused('png', Buffer.concat([png().subarray(0, 33), ascii('<svg/onload=alert(1)>')]), /<svg/);
  });
  test('ftyp box followed by SVG as .mp4', async () => {
    await assertRefused('mp4', Buffer.concat([isoBmff('isom', ['isom']), ascii('<svg onload=alert(1)>')]), /<svg/);
  });
  test('active content in text kinds', async () => {
    await assertRefused('txt', ascii('see <a href="JavaScript:alert(1)">x</a>'), /javascript:/);
    await assertRefused('csv', ascii('a,b\n<SCRIPT>alert(1)</SCRIPT>,2\n'), /<script/);
  });
  test('binary data under text extensions', async () => {
    await assertRefused('txt', png(), /NUL|content is png/);
    await assertRefused('csv', ascii('a,b\n1,\x002\n'), /NUL/);
    await assertRefused('json', Buffer.concat([ascii('GIF89a'), Buffer.from([1, 2, 3, 0x10, 0x11])]), /content is gif/);
  });
  test('empty file under binary extensions', async () => {
    await assertRefused('png', Buffer.alloc(0), /empty file/);
    await assertRefused('pdf', Buffer.alloc(0), /empty file/);
  });
  test('text under binary extensions', async () => {
    await assertRefused('png', ascii('just some text'), /not recognised as \.png/);
    await assertRefused('pdf', ascii('PDF-1.4 missing percent'), /not recognised/);
  });
  test('10 MiB of random data under .png is not recognised', async () => {
    for (let i = 0; i < 160; i++) {
      const v = await checkContent('png', randomBytes(64 * 1024), false);
      assert.equal(v.ok, false);
    }
  });
});

describe('checkContent: OOXML heads and SNIFF_BYTES', () => {
  test('SNIFF_BYTES is at least file-type’s 4100', () => {
    assert.ok(SNIFF_BYTES >= 4100);
    assert.equal(SNIFF_BYTES, 64 * 1024);
  });

  for (const ext of ['docx', 'xlsx', 'pptx'] as const) {
    test(`${ext} with [Content_Types].xml behind a 200 KB part: head says zip, part dir decides`, async () => {
      const file = ooxmlContentTypesLast(ext, randomBytes(200_000));
      const [head, complete] = headOf(file);
      assert.equal(complete, false);
      const v = await checkContent(ext, head, complete);
      assert.deepEqual(v, { ok: true, detected: 'zip' });
      // the same zip under another OOXML extension: wrong part directory
      const other = ext === 'docx' ? 'xlsx' : 'docx';
      assert.equal((await checkContent(other, head, complete)).ok, false);
    });
  }

  test('a complete zip with word/ parts but no [Content_Types].xml is not a docx', async () => {
    const file = zipBytes([{ name: 'word/document.xml', data: ascii('<root/>') }]);
    await assertRefused('docx', file, /a zip is not a \.docx/);
  });

  test('a large plain zip under .docx is refused from its head', async () => {
    const file = zipBytes([{ name: 'big.bin', data: randomBytes(200_000), method: 0 }, { name: 'word/x.xml', data: ascii('x') }]);
    await assertRefused('docx', file, /a zip is not a \.docx/);
  });

  test('Word-order docx followed by 1 MB of media is detected from a 64 KiB head', async () => {
    const file = zipBytes([
      { name: '[Content_Types].xml', data: contentTypesXml('docx') },
      { name: '_rels/.rels', data: ROOT_RELS },
      { name: 'word/document.xml', data: ascii('<w:document/>') },
      { name: 'word/media/image1.jpeg', data: randomBytes(1_000_000), method: 0 },
    ]);
    await assertAccepted('docx', file, 'docx');
  });

  const python = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import zipfile']).status === 0);
  test('docx written by python3 zipfile in Word order', { skip: python === undefined && 'no python3' }, async () => {
    const script = String.raw`
import io, sys, zipfile
ct = sys.stdin.buffer.read()
buf = io.BytesIO()
with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as z:
    z.writestr('[Content_Types].xml', ct)
    z.writestr('_rels/.rels', '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"/>')
    z.writestr('docProps/app.xml', '<Properties/>')
    z.writestr('word/document.xml', '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body/></w:document>' * 50)
    z.writestr('word/media/image1.png', bytes(range(256)) * 2000)
sys.stdout.buffer.write(buf.getvalue())
`;
    const r = spawnSync(python!, ['-c', script], { input: contentTypesXml('docx'), maxBuffer: 16 << 20 });
    assert.equal(r.status, 0, r.stderr.toString());
    const file = r.stdout as Buffer;
    await assertAccepted('docx', file, 'docx');
    await assertRefused('xlsx', file, /content is docx/);
  });

  test('TIFF whose IFD lies after the image data (libtiff order)', async () => {
    const tiff = (ifdOffset: number, length: number): Buffer => {
      const file = randomBytes(length);
      Buffer.from([0x49, 0x49, 42, 0]).copy(file, 0);
      file.writeUInt32LE(ifdOffset, 4);
      return file;
    };
    // partial head: the IFD is beyond it, the header signature decides
    await assertAccepted('tif', tiff(900_000, 1_000_000), 'tif');
    // complete file whose IFD offset points past its end: not a TIFF
    await assertRefused('tiff', tiff(900_000, 1_000), /not recognised/);
    await assertRefused('png', tiff(900_000, 1_000_000), /not recognised/);
  });

  test('only the first SNIFF_BYTES are inspected', async () => {
    const file = Buffer.concat([png(), Buffer.alloc(SNIFF_BYTES), ascii('<?php system($_GET[c]); ?>')]);
    // A caller passing more than SNIFF_BYTES gets the same answer as one passing exactly that.
    assert.deepEqual(await checkContent('png', file, true), { ok: true, detected: 'png' });
  });
});

describe('findActiveContent', () => {
  test('marker list', () => {
    const texts = ACTIVE_CONTENT_MARKERS.map((m) => m.text);
    for (const t of ['<?php', '<?=', '<?', '<%', '<script', '<html', '<svg', '<iframe', '<body', '<object', '<embed', '<!doctype html', 'javascript:', '__halt_compiler']) {
      assert.ok(texts.includes(t), t);
    }
  });

  const hits: Array<[string, string]> = [
    ['<?php echo 1;', '<?php'],
    ['<?PHP\nsystem("id");', '<?php'],
    ['x<?php ', '<?php'],
    ['<?= $x ?>', '<?='],
    ['<?=$_GET[0]?>', '<?='],
    ['<?=system($_GET[0])?>', '<?='],
    ['<?=`id`;', '<?='],
    ['<?=system("id");__halt_compiler();\x00\x01\xff', '<?='],
    ['<? system("id"); ?>', '<?'],
    ['<? `id`?>', '<?'],
    ['<? ?><?=1?>', '<?='],
    ['<script>alert(1)</script>', '<script'],
    ['<ScRiPt src=//x>', '<script'],
    ['<script/src=//x>', '<script'],
    ['<HTML>', '<html'],
    ['<svg xmlns="http://www.w3.org/2000/svg">', '<svg'],
    ['<svg>', '<svg'],
    ['<iframe src=x>', '<iframe'],
    ['<!DOCTYPE HTML>', '<!doctype html'],
    ['<!doctype html public "-//W3C//DTD HTML 4.01//EN">', '<!doctype html'],
    ['href="JAVASCRIPT:alert(1)"', 'javascript:'],
    // comments and string literals may hold any byte: they are skipped, not a reason to stop
    ['<?="\xc3\xa9";system("id")?>', '<?='],
    ["<?=/*\xff\x00*/system('id')?>", '<?='],
    ['<? #\x01\x02\nsystem("id");?>', '<?'],
    // code glued to a short open tag
    ['<?system($_GET[0]);?>', '<?'],
    ['<?phpinfo();?>', '<?'],
    ['<?`id`?>', '<?'],
    // JSP / ASP scriptlets
    ['<% Runtime.getRuntime().exec(request.getParameter("c")); %>', '<%'],
    ['<%eval request("x")%>', '<%'],
    ['<%@ page import="java.io.*" %>', '<%'],
    ['<%= new java.util.Date() %>', '<%'],
    // more tags, and the phar stub
    ['<body onload=alert(1)>', '<body'],
    ['<object data="x.swf">', '<object'],
    ['<embed src="x.swf">', '<embed'],
    ['__HALT_COMPILER(); ?>', '__halt_compiler'],
    // a code run this long is code whatever follows
    [`<?= ${'x'.repeat(5000)}\x00`, '<?='],
  ];
  for (const [input, marker] of hits) {
    test(`hit: ${JSON.stringify(input)}`, () => assert.equal(findActiveContent(ascii(input)), marker));
  }

  const misses = [
    '<?xml version="1.0"?><root/>',
    '<scripts>',
    '<svgfoo>',
    '<htmlx>',
    'javascript is a language',
    '<?=\x00 binary',
    '<?\x01',
    '<?',
    '<?=?>',
    '<? ab?>',
    '<? ?><?=',
    'x<?php', // at end of file: nothing to run
    '<svg\x00\x01',
    '<?xml-stylesheet href="a(b).css"?>',
    '<?xpacket begin="$x"?>',
    '<?a?>',
    '<?a()?>', // shorter than a useful payload
    '<?=/* never closed \x00',
    '<%=x%>',
    '<% unclosed scriptlet',
    '<%\x00 binary %>',
    'plain text',
    '',
  ];
  for (const input of misses) {
    test(`miss: ${JSON.stringify(input)}`, () => assert.equal(findActiveContent(ascii(input)), undefined));
  }

  test('non-letters are not matched case-insensitively', () => {
    // 0x1C | 0x20 === '<' and 0x1F | 0x20 === '?': must not count as "<?php"
    assert.equal(findActiveContent(Buffer.from([0x1c, 0x1f, 0x70, 0x68, 0x70, 0x20])), undefined);
  });

  test('a marker cut by the end of a partial head still counts', () => {
    assert.equal(findActiveContent(ascii('AAAA<?php'), false), '<?php');
    assert.equal(findActiveContent(ascii('AAAA<svg'), false), '<svg');
    assert.equal(findActiveContent(ascii('AAAA<?= $x'), false), '<?=');
    assert.equal(findActiveContent(ascii('AAAA<svg'), true), undefined);
    // a bare `<?` at the end would refuse one random-looking head in 65536
    assert.equal(findActiveContent(ascii('AAAA<?'), false), undefined);
  });

  // quadratic behaviour on 1 MB would take many minutes: the test timeout is the bound
  test('linear on hostile input', { timeout: 120_000 }, () => {
    // runs that die at a NUL (memoised), unclosed comments, strings and scriptlets, short `<?` runs
    const pieces = [
      `${'<?='.repeat(1000)}\x00`,
      `${'<?=/*'.repeat(500)}\x00`,
      `${"<?='".repeat(500)}\x00`,
      `${'<%='.repeat(1000)}\x00`,
      `${'<?a'.repeat(1000)}?>`,
    ];
    for (const piece of pieces) {
      const hostile = ascii(piece.repeat(Math.ceil(1_000_000 / piece.length)));
      assert.equal(findActiveContent(hostile), undefined, piece.slice(0, 8));
    }
  });

  test('no hits in 200 MiB of random data (64 KiB windows)', () => {
    const window = Buffer.alloc(64 * 1024);
    let hitCount = 0;
    const windows = (200 * 1024 * 1024) / window.length;
    for (let i = 0; i < windows; i++) {
      randomFillSync(window);
      if (findActiveContent(window, false) !== undefined) hitCount++;
    }
    assert.equal(hitCount, 0);
  });

  test('random bytes after a valid PNG header do not trigger the active-content check', async () => {
    // signature + IHDR + the header of a 1 MB IDAT chunk whose (compressed, random-looking) data
    // fills the rest of the head: what the head of a large real PNG looks like.
    const header = Buffer.concat([png().subarray(0, 33), u32be(1_000_000), ascii('IDAT')]);
    for (let i = 0; i < 200; i++) {
      const head = Buffer.concat([header, randomBytes(SNIFF_BYTES - header.length)]);
      const v = await checkContent('png', head, false);
      assert.deepEqual(v, { ok: true, detected: 'png' });
    }
  });
});
