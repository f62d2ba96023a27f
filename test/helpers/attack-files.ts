// Builders for hostile files: polyglots, metadata payloads, PDFs with actions, Office packages with
// macros, program headers. Every builder starts from a valid file of its format (samples.ts), so a
// refusal is caused by the payload and not by a broken container.

import { crc32, deflateRawSync, deflateSync } from 'node:zlib';
import { gifBytes, jpegBytes, pngBytes, pngChunk } from './samples.ts';

export const ascii = (s: string): Buffer => Buffer.from(s, 'latin1');

export const PHP_SHELL = '<?php system($_GET["c"]); ?>';

/** A valid 1x1 PNG with `chunks` inserted after IHDR (and `padding` random bytes in private chunks). */
export function pngWith(chunks: Buffer[], padding = 0): Buffer {
  const png = pngBytes(padding);
  // signature (8) + IHDR chunk (25)
  return Buffer.concat([png.subarray(0, 33), ...chunks, png.subarray(33)]);
}

export function textChunk(keyword: string, text: string): Buffer {
  return pngChunk('tEXt', ascii(`${keyword}\0${text}`));
}

export function zTxtChunk(keyword: string, text: string): Buffer {
  return pngChunk('zTXt', Buffer.concat([ascii(`${keyword}\0\0`), deflateSync(ascii(text))]));
}

export function iTxtChunk(keyword: string, text: string, compressed: boolean): Buffer {
  const body = compressed ? deflateSync(Buffer.from(text, 'utf8')) : Buffer.from(text, 'utf8');
  return pngChunk('iTXt', Buffer.concat([ascii(`${keyword}\0${compressed ? '\x01' : '\x00'}\0en\0\0`), body]));
}

/** One JPEG marker segment: FF marker, big-endian length (payload + 2), payload. */
export function jpegSegment(marker: number, payload: Buffer): Buffer {
  const head = Buffer.from([0xff, marker, 0, 0]);
  head.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([head, payload]);
}

/** The 8x8 baseline JPEG of samples.ts with `segments` inserted right after SOI. */
export function jpegWith(segments: Buffer[]): Buffer {
  const jpeg = jpegBytes();
  return Buffer.concat([jpeg.subarray(0, 2), ...segments, jpeg.subarray(2)]);
}

/** An EXIF APP1 payload: "Exif\0\0" + a little-endian TIFF header whose IFD0 holds one ASCII
 *  ImageDescription (0x010E) with `description`. */
export function exifApp1(description: string): Buffer {
  const text = ascii(`${description}\0`);
  const tiff = Buffer.alloc(8 + 2 + 12 + 4);
  tiff.write('II', 0, 'latin1');
  tiff.writeUInt16LE(42, 2);
  tiff.writeUInt32LE(8, 4);
  tiff.writeUInt16LE(1, 8); // one entry
  tiff.writeUInt16LE(0x010e, 10);
  tiff.writeUInt16LE(2, 12); // ASCII
  tiff.writeUInt32LE(text.length, 14);
  tiff.writeUInt32LE(tiff.length, 18); // value offset: right after the IFD
  tiff.writeUInt32LE(0, 22); // no next IFD
  return Buffer.concat([ascii('Exif\0\0'), tiff, text]);
}

export function xmpApp1(xml: string): Buffer {
  return Buffer.concat([ascii('http://ns.adobe.com/xap/1.0/\0'), Buffer.from(xml, 'utf8')]);
}

export const XMP_PACKET =
  '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
  '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Holiday (2024)</dc:title></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>';

/** The 1x1 GIF89a with a comment extension before its image. */
export function gifWithComment(text: string): Buffer {
  const gif = gifBytes();
  const data = ascii(text);
  const blocks: Buffer[] = [Buffer.from([0x21, 0xfe])];
  for (let at = 0; at < data.length; at += 255) {
    const piece = data.subarray(at, at + 255);
    blocks.push(Buffer.from([piece.length]), piece);
  }
  blocks.push(Buffer.from([0]));
  // header (6) + logical screen descriptor (7) + global colour table (6)
  return Buffer.concat([gif.subarray(0, 19), ...blocks, gif.subarray(19)]);
}

/** A PDF 1.7 whose numbered objects are the given bodies (object 1 is the catalog), with an xref. */
export function pdfWith(bodies: Array<string | Buffer>): Buffer {
  const parts: Buffer[] = [ascii('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n')];
  let length = parts[0]!.length;
  const offsets: number[] = [];
  bodies.forEach((body, i) => {
    offsets.push(length);
    const piece = Buffer.concat([ascii(`${i + 1} 0 obj\n`), typeof body === 'string' ? ascii(body) : body, ascii('\nendobj\n')]);
    parts.push(piece);
    length += piece.length;
  });
  let xref = `xref\n0 ${bodies.length + 1}\n0000000000 65535 f \n`;
  for (const offset of offsets) xref += `${String(offset).padStart(10, '0')} 00000 n \n`;
  xref += `trailer\n<< /Size ${bodies.length + 1} /Root 1 0 R >>\nstartxref\n${length}\n%%EOF\n`;
  parts.push(ascii(xref));
  return Buffer.concat(parts);
}

/** A stream object body: dictionary entries (without << >>) and data; Length filled in. */
export function pdfStream(dictionary: string, data: Buffer): Buffer {
  return Buffer.concat([ascii(`<< ${dictionary} /Length ${data.length} >>\nstream\n`), data, ascii('\nendstream')]);
}

/** A PDF 1.5 object stream holding `objects` (e.g. "<< /S /JavaScript /JS (x) >>"), Flate-compressed. */
export function pdfObjectStream(objects: string[], filter: 'FlateDecode' | 'ASCIIHexDecode' | 'none' = 'FlateDecode'): Buffer {
  let header = '';
  let body = '';
  objects.forEach((obj, i) => {
    header += `${100 + i} ${body.length} `;
    body += `${obj}\n`;
  });
  const plain = ascii(header + body);
  const data = filter === 'FlateDecode' ? deflateSync(plain) : filter === 'ASCIIHexDecode' ? ascii(`${plain.toString('hex')}>`) : plain;
  const filterEntry = filter === 'none' ? '' : `/Filter /${filter}`;
  return pdfStream(`/Type /ObjStm /N ${objects.length} /First ${header.length} ${filterEntry}`, data);
}

export interface ZipEntry {
  name: string;
  data: Buffer;
  /** 0 stored, 8 deflate */
  method?: 0 | 8;
}

/** A minimal complete zip: local headers, central directory, end record. */
export function zipBytes(entries: ZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const method = e.method ?? 8;
    const body = method === 8 ? deflateRawSync(e.data) : e.data;
    const name = Buffer.from(e.name, 'utf8');
    const crc = crc32(e.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(e.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, body);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(e.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, eocd]);
}

const WORD_MAIN = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml';
const WORD_MACRO_MAIN = 'application/vnd.ms-word.document.macroEnabled.main+xml';

export function contentTypes(overrides: Array<[string, string]>, defaults: Array<[string, string]> = []): Buffer {
  return ascii(
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">' +
      '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>' +
      defaults.map(([ext, type]) => `<Default Extension="${ext}" ContentType="${type}"/>`).join('') +
      overrides.map(([part, type]) => `<Override PartName="${part}" ContentType="${type}"/>`).join('') +
      '</Types>',
  );
}

const RELS = ascii('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"/>');

/** A docx in Word's order; `macro`: how a VBA project is smuggled in, if at all. */
export function docxBytes(macro: 'none' | 'vbaProject.bin' | 'renamed-part' | 'macro-main' = 'none'): Buffer {
  const overrides: Array<[string, string]> = [['/word/document.xml', macro === 'macro-main' ? WORD_MACRO_MAIN : WORD_MAIN]];
  const entries: ZipEntry[] = [];
  if (macro === 'renamed-part') overrides.push(['/word/styles2.bin', 'application/vnd.ms-office.vbaProject']);
  entries.push({ name: '[Content_Types].xml', data: contentTypes(overrides) }, { name: '_rels/.rels', data: RELS });
  entries.push({ name: 'word/document.xml', data: ascii('<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body/></w:document>') });
  if (macro === 'vbaProject.bin') entries.push({ name: 'word/vbaProject.bin', data: Buffer.from('d0cf11e0a1b11ae1', 'hex') });
  if (macro === 'renamed-part') entries.push({ name: 'word/styles2.bin', data: Buffer.from('d0cf11e0a1b11ae1', 'hex') });
  return zipBytes(entries);
}

/** An ODF text document; with `basic`, a StarBasic macro library. */
export function odtBytes(basic: boolean): Buffer {
  const entries: ZipEntry[] = [
    { name: 'mimetype', data: ascii('application/vnd.oasis.opendocument.text'), method: 0 },
    { name: 'content.xml', data: ascii('<?xml version="1.0"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"/>') },
    { name: 'META-INF/manifest.xml', data: ascii('<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"/>') },
  ];
  if (basic) entries.push({ name: 'Basic/Standard/Module1.xml', data: ascii('<script:module script:name="Module1">Sub Main\nShell("calc.exe")\nEnd Sub</script:module>') });
  return zipBytes(entries);
}

// ---- program headers ---------------------------------------------------------------------------

/** The first 64 bytes of an x86-64 ELF executable. */
export function elfHeader(): Buffer {
  const b = Buffer.alloc(64);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]).copy(b, 0);
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(0x3e, 18); // x86-64
  return b;
}

/** A DOS stub pointing at a PE32+ x86-64 COFF header (the first 152 bytes of a Windows program). */
export function peHeader(): Buffer {
  const b = Buffer.alloc(152);
  b.write('MZ', 0, 'latin1');
  b.writeUInt32LE(0x80, 0x3c);
  b.write('PE\0\0', 0x80, 'latin1');
  b.writeUInt16LE(0x8664, 0x84); // machine
  b.writeUInt16LE(3, 0x86); // sections
  b.writeUInt16LE(0xf0, 0x94); // optional header size (PE32+)
  return b;
}

/** The first 32 bytes of an arm64 Mach-O executable. */
export function machoHeader(): Buffer {
  const b = Buffer.alloc(32);
  Buffer.from([0xcf, 0xfa, 0xed, 0xfe]).copy(b, 0);
  b.writeUInt32LE(0x0100000c, 4); // CPU_TYPE_ARM64
  b.writeUInt32LE(2, 12); // MH_EXECUTE
  return b;
}
