// fast-check generators of multipart/form-data requests: valid ones as browsers and curl send
// them, and the odd and malformed spellings of research/multipart-bypasses.md that parsers read
// differently (filename* vs filename, duplicate parameters, RFC 2231 continuations, odd quoting
// and escaping, LF/CR framing, transport padding, boundary look-alikes, missing close delimiter,
// nameless parts, duplicate headers, folding, non-ASCII names in UTF-8 and latin1, very long
// header lines, Content-Transfer-Encoding, nested multipart, charsets, duplicate or odd boundary
// parameters). A request is a plain data model (shrinks well) plus `serialize`, which turns it
// into the exact bytes sent, cut into chunks.
//
// Used by test/integration/multipart-differential.test.ts (against the real Werkzeug) and by
// bench/fuzz-multipart.mjs (robustness of the body filter).

import fc from 'fast-check';
import { gifBytes, jpegBytes, pngBytes } from './samples.js';

/** 'none' only before a delimiter: a part glued to the next delimiter (karna's bodyless part) */
export type LineBreak = 'crlf' | 'lf' | 'cr' | 'none';
export type Route = 'upload' | 'stream' | 'strict';

export interface ParamSpec {
  key: string;
  value: string;
  /** how the value is written */
  style: 'quoted' | 'token' | 'ext-utf8' | 'ext-latin1' | 'ext-unknown' | 'ext-cp1252' | 'unterminated' | 'escaped' | 'pct22' | 'bare';
  /** spelling of "=" */
  eq: '=' | ' = ' | '= ' | ' =';
  /** what comes before the parameter */
  sep: '; ' | ';' | ' ; ' | ';\t' | ';; ' | ', ' | ';\r\n ' | ';\r\n\t';
}

export interface PartSpec {
  /** Content-Disposition header; null: the part has none */
  disposition: { type: string; params: ParamSpec[] } | null;
  /** Content-Type header value; null: none */
  contentType: string | null;
  /** further header lines, written after Content-Disposition and Content-Type */
  extraHeaders: string[];
  /** spelling of header names */
  headerNames: 'canonical' | 'lower' | 'upper' | 'space-before-colon' | 'no-space';
  /** encoding of non-ASCII header text */
  headerEncoding: 'utf8' | 'latin1';
  /** line breaks inside the header block (and the blank line ending it) */
  headerBreak: LineBreak;
  /** what follows "--boundary" on the delimiter line that opens this part */
  padding: '' | ' ' | '\t' | ' \t ' | 'X' | '-';
  /** line break after the delimiter line */
  delimiterBreak: LineBreak;
  /** line break before the delimiter that opens this part (ignored for a first part without preamble) */
  breakBefore: LineBreak;
  data: DataSpec;
}

export type DataSpec =
  | { kind: 'png' | 'jpg' | 'gif' | 'empty' | 'php' | 'html' | 'svg' }
  | { kind: 'text'; text: string; encoding: 'utf8' | 'latin1' }
  | { kind: 'bytes'; bytes: Uint8Array }
  /** a line that starts like the boundary (busboy ends the part there, Werkzeug does not) */
  | { kind: 'lookalike'; variant: number }
  /** a whole fake part behind a line break only Werkzeug takes for a delimiter */
  | { kind: 'smuggle'; variant: number }
  /** a complete multipart body framed by the other boundary (nested multipart, duplicate boundary) */
  | { kind: 'nested' }
  /** a PNG, then a delimiter line and close delimiter of the boundary as a regex-based reader
   *  takes it from an escaped quoted Content-Type parameter (see 'escaped-backslash') */
  | { kind: 'decoy' }
  /** a PNG larger than Werkzeug's 64 KiB read buffer */
  | { kind: 'big'; size: number };

export interface RequestSpec {
  boundary: string;
  /** a second boundary: duplicate boundary parameters and nested bodies use it */
  other: string;
  contentType: ContentTypeVariant;
  preamble: string;
  /** line break between the preamble and the first delimiter */
  preambleBreak: LineBreak;
  parts: PartSpec[];
  close: 'crlf' | 'none' | 'missing' | 'lf' | 'padded' | 'early' | 'dashes-only';
  epilogue: string;
  /** chunk cut points as fractions of the body length */
  cuts: number[];
  route: Route;
}

export type ContentTypeVariant =
  | 'plain' | 'quoted' | 'charset-before' | 'charset-after' | 'upper' | 'spaced' | 'tab' | 'trailing-semicolon'
  | 'dup-boundary' | 'dup-boundary-reversed' | 'boundary-star' | 'boundary-continuation' | 'missing-boundary'
  | 'mixed' | 'two-headers' | 'quoted-escaped' | 'escaped-backslash';

export interface SerializedRequest {
  /** Content-Type header values in order (usually one) */
  contentTypes: string[];
  body: Buffer;
  /** the body cut into the pieces that are written one by one */
  pieces: Buffer[];
  route: Route;
}

// ------------------------------------------------------------------------------------------
// Pools

const RFC_BOUNDARIES = [
  'XyZ',
  'a',
  '----WebKitFormBoundary7MA4YWxkTrZu0gW',
  '---------------------------974767299852498929531610575',
  '------------------------d74496d66958873e',
  "'()+_,-./:=?",
  'with space',
  'x'.repeat(70),
];
const ODD_BOUNDARIES = ['a"b', 'a\\b', 'a;b', 'caf\u00e9', 'tab\there', 'trailing ', 'x'.repeat(200), '=?utf-8?q?x?=', 'BOUNDARY', '--'];

const BOUNDARY_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'()+_,-./:=?";

const FILENAMES = [
  'a.png', 'photo.jpg', 'anim.gif', 'notes.txt', 'a.PNG', 'My cat.png',
  'shell.php', 'a.png.php', 'shell.php.png', 'shell.php;.png', 'shell.php .png', 'shell.php\u0000.png',
  '../../a.png', '..\\..\\a.png', 'C:\\Users\\x\\a.png', 'a/b.png', 'a.php/b.png', '\\\\server\\share\\a.png',
  'caf\u00e9.png', '\u00fcml\u00e4ut.jpg', '\u65e5\u672c.png', 'shell.\uff50\uff48\uff50', 'a\u202egnp.php',
  '.png', '....', 'a.png.', 'a.p\\ng', 'a"b.png', 'a%22.png', 'shell.php%00.png', 'a\tb.png', ' a.png', 'a.png ',
  'CON.png', `${'a'.repeat(300)}.png`, '', 'a;b.png', 'a,b.png', "it's.png", 'a=b.png', '.htaccess',
];
const FIELD_NAMES = ['file', 'title', 'avatar', 'files', 'a b', '\u00e4', 'caf\u00e9', 'x"y', 'a;b', 'a\\b', '', 'f[]', 'a\tb', 'n'.repeat(200), '\u65e5'];
const TEXTS = ['hello', 'w\u00e9', '', 'a\r\nb', 'line\nbreak', '\u00ff\u00fe', 'x'.repeat(3000), '<?php echo 1; ?>'];

const PARAM_KEYS = ['name', 'filename', 'filename*', 'name*', 'filename*0', 'filename*1', 'filename*0*', 'NAME', 'FileName', 'charset', 'size', 'x*y'];

const CONTENT_TYPES: Array<string | null> = [
  null, null, 'image/png', 'image/jpeg', 'application/octet-stream', 'text/plain', 'text/plain; charset=utf-8',
  'text/plain; charset=iso-8859-1', 'text/plain; charset=utf-7', 'text/plain; charset=us-ascii', 'text/plain; charset="UTF-8"',
  'text/plain; charset=utf-16le', 'multipart/mixed; boundary=Inner', 'text/html', 'image/svg+xml', 'text/plain;charset=latin1',
];

const EXTRA_HEADERS = [
  'Content-Transfer-Encoding: base64',
  'Content-Transfer-Encoding: quoted-printable',
  'Content-Transfer-Encoding: binary',
  'X-Extra: 1',
  'Content-Disposition: form-data; name="file"; filename="shell.php"',
  'Content-Disposition: form-data; name="other"',
  'Content-Type: image/png',
  'Content-Type: text/plain; charset=iso-8859-1',
  'Content-Length: 3',
  'no colon here',
  'X-Nul: a\u0000b',
  `X-Long: ${'a'.repeat(17 * 1024)}`,
  `X-Long: ${'b'.repeat(9 * 1024)}`,
  ': empty name',
  'X-Latin1: caf\u00e9',
];

// ------------------------------------------------------------------------------------------
// Arbitraries: a clean request as a browser or curl writes it, then 0-4 mutations, each changing
// one thing (so a refusal for one oddity does not hide what another would have done, and
// fast-check shrinks a failure to the few mutations that matter).

const CLEAN_FILENAMES = ['a.png', 'photo.jpg', 'anim.gif', 'notes.txt', 'My cat.png', 'caf\u00e9.png', '\u65e5\u672c\u8a9e.jpg', 'IMG_0001.JPG'];
const CLEAN_NAMES = ['file', 'title', 'avatar', 'files', 'caf\u00e9', 'f[]'];

const cleanData = (kind: 'file' | 'field'): fc.Arbitrary<DataSpec> =>
  kind === 'file'
    ? fc.oneof(
        { weight: 10, arbitrary: fc.constantFrom<DataSpec>({ kind: 'png' }, { kind: 'jpg' }, { kind: 'gif' }) },
        { weight: 1, arbitrary: fc.constant<DataSpec>({ kind: 'empty' }) },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant('big' as const), size: fc.integer({ min: 60 * 1024, max: 200 * 1024 }) }) },
      )
    : fc.record({ kind: fc.constant('text' as const), text: fc.oneof(fc.constantFrom(...TEXTS), fc.string({ maxLength: 30 })), encoding: fc.constant<'utf8' | 'latin1'>('utf8') });

const quoted = (key: string, value: string): ParamSpec => ({ key, value, style: 'quoted', eq: '=', sep: '; ' });

function cleanPart(kind: 'file' | 'field'): fc.Arbitrary<PartSpec> {
  return fc.record({
    name: fc.constantFrom(...CLEAN_NAMES),
    filename: fc.constantFrom(...CLEAN_FILENAMES),
    contentType: kind === 'file' ? fc.constantFrom('image/png', 'image/jpeg', 'application/octet-stream') : fc.constantFrom<string | null>(null, null, 'text/plain; charset=utf-8'),
    data: cleanData(kind),
  }).map(({ name, filename, contentType, data }) => ({
    disposition: { type: 'form-data', params: kind === 'file' ? [quoted('name', name), quoted('filename', filename)] : [quoted('name', name)] },
    contentType,
    extraHeaders: [],
    headerNames: 'canonical',
    headerEncoding: 'utf8',
    headerBreak: 'crlf',
    padding: '',
    delimiterBreak: 'crlf',
    breakBefore: 'crlf',
    data,
  }));
}

const cleanRequest: fc.Arbitrary<RequestSpec> = fc.record({
  boundary: fc.oneof(fc.constantFrom(...RFC_BOUNDARIES), fc.string({ unit: fc.constantFrom(...BOUNDARY_CHARS), minLength: 1, maxLength: 40 })),
  other: fc.constantFrom('Other', 'smuggled-boundary', 'B2'),
  contentType: fc.constant<ContentTypeVariant>('plain'),
  preamble: fc.constant(''),
  preambleBreak: fc.constant<LineBreak>('crlf'),
  parts: fc.array(fc.oneof(cleanPart('file'), cleanPart('field')), { minLength: 1, maxLength: 4 }),
  close: fc.constant<RequestSpec['close']>('crlf'),
  epilogue: fc.constant(''),
  cuts: fc.oneof({ weight: 2, arbitrary: fc.constant<number[]>([]) }, { weight: 3, arbitrary: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }) }),
  route: fc.constantFrom<Route>('upload', 'upload', 'stream', 'strict'),
});

const MUTATIONS = [
  'attack', 'attack', 'attack', 'attack', 'attack', 'attack',
  'content-type', 'boundary', 'preamble', 'close', 'epilogue', 'no-parts',
  'add-param', 'param-style', 'param-eq', 'param-sep', 'drop-param', 'filename', 'name',
  'disposition-type', 'no-disposition', 'part-content-type', 'extra-header', 'header-names', 'latin1-headers',
  'header-break', 'padding', 'delimiter-break', 'break-before', 'data',
] as const;
export type MutationOp = (typeof MUTATIONS)[number];

export interface Mutation {
  op: MutationOp;
  /** which part (modulo the part count) */
  part: number;
  /** which parameter, header or position (modulo) */
  at: number;
  /** which value from the op's pool (modulo) */
  pick: number;
  /** a second choice (parameter key, ...) */
  pick2: number;
}

const mutationArb: fc.Arbitrary<Mutation> = fc.record({ op: fc.constantFrom(...MUTATIONS), part: fc.nat(7), at: fc.nat(7), pick: fc.nat(255), pick2: fc.nat(255) });

const STYLES: ParamSpec['style'][] = ['token', 'ext-utf8', 'ext-latin1', 'ext-unknown', 'ext-cp1252', 'unterminated', 'escaped', 'pct22', 'bare'];
const EQS: ParamSpec['eq'][] = [' = ', '= ', ' ='];
const SEPS: ParamSpec['sep'][] = [';', ' ; ', ';\t', ';; ', ', ', ';\r\n ', ';\r\n\t'];
const CT_VARIANTS: ContentTypeVariant[] = ['quoted', 'charset-before', 'charset-after', 'upper', 'spaced', 'tab', 'trailing-semicolon', 'dup-boundary', 'dup-boundary-reversed', 'boundary-star', 'boundary-continuation', 'missing-boundary', 'mixed', 'two-headers', 'quoted-escaped'];
const PREAMBLES = ['This is a preamble.', 'junk--{b}', 'x\n--{b}\r\nContent-Disposition: form-data; name="file"; filename="shell.php"\r\n\r\n<?php system($_GET[1]); ?>', '--{b}X', '\r\n'];
const CLOSES: Array<RequestSpec['close']> = ['none', 'missing', 'lf', 'padded', 'early', 'dashes-only'];
const EPILOGUES = [
  'epilogue text',
  '\r\n--{b}\r\nContent-Disposition: form-data; name="file"; filename="shell.php"\r\n\r\n<?php\r\n--{b}--\r\n',
  '--{b}\r\nContent-Disposition: form-data; name="file"; filename="x.gif"\r\n\r\nGIF89a\r\n--{b}--\r\n',
  // busboy 1.6.0 parsed this when it came in the close delimiter's write(), and then never finished
  '--{b}\r\n--{b}\r\nContent-Disposition: form-data; name="file"; filename="x.gif"\r\n\r\nGIF89a',
];
const DISPOSITION_TYPES = ['FORM-DATA', 'attachment', 'inline', '', 'form-data ', 'form_data', 'Form-Data'];
const ADVERSARIAL_DATA: DataSpec[] = [
  { kind: 'php' }, { kind: 'html' }, { kind: 'svg' }, { kind: 'empty' }, { kind: 'nested' },
  ...[0, 1, 2, 3, 4, 5, 6, 7].map((variant): DataSpec => ({ kind: 'lookalike', variant })),
  ...[0, 1, 2, 3, 4, 5].map((variant): DataSpec => ({ kind: 'smuggle', variant })),
  { kind: 'text', text: 'w\u00e9', encoding: 'latin1' },
  { kind: 'bytes', bytes: new Uint8Array([0x0d, 0x0a, 0x2d, 0x2d, 0x0d, 0x0a, 0xff, 0x00]) },
];

const SHELL = '<?php system($_GET["c"]); ?>';
const field = (name: string): ParamSpec[] => [quoted('name', name)];

/**
 * The known differentials of research/multipart-bypasses.md as recipes, each applied to one part
 * of a clean request (mutations would reach most of them only by rare coincidence).
 */
const ATTACKS: ReadonlyArray<(spec: RequestSpec, part: PartSpec, m: Mutation) => void> = [
  // duplicate/extended/continued boundary parameters (or two Content-Type headers) with a body
  // framed by Werkzeug's boundary inside a field
  (spec, part, m) => {
    spec.contentType = pick<ContentTypeVariant>(['dup-boundary', 'dup-boundary-reversed', 'boundary-star', 'boundary-continuation', 'two-headers', 'quoted-escaped'], m.pick2);
    part.disposition = { type: 'form-data', params: field('title') };
    part.contentType = null;
    part.data = { kind: 'nested' };
  },
  // filename vs filename*, duplicates in both orders, RFC 2231 continuations
  (_spec, part, m) => {
    const variants: ParamSpec[][] = [
      [quoted('name', 'file'), quoted('filename', 'a.png'), quoted('filename', 'shell.php')],
      [quoted('name', 'file'), quoted('filename', 'shell.php'), quoted('filename', 'a.png')],
      [quoted('name', 'file'), { ...quoted('filename*', 'a.png'), style: 'ext-utf8' }, quoted('filename', 'shell.php')],
      [quoted('name', 'file'), quoted('filename', 'shell.php'), { ...quoted('filename*', 'a.png'), style: 'ext-utf8' }],
      [quoted('name', 'file'), quoted('filename', 'a.png'), quoted('filename*0', '.php')],
      [quoted('name', 'file'), quoted('filename*0', 'shell'), quoted('filename*1', '.php')],
      [quoted('name', 'file'), quoted('filename*0*', 'shell.php')],
      [quoted('name', 'avatar'), quoted('name', 'file'), quoted('filename', 'a.png')],
      [quoted('name', 'file'), { ...quoted('name*', 'other'), style: 'ext-utf8' }, quoted('filename', 'a.png')],
      [quoted('name', 'file'), { ...quoted('x*y', '1'), style: 'token' }, quoted('filename', 'a.png')],
      [quoted('name', 'file'), { ...quoted('filename', 'shell.php .png'), style: 'token' }],
      [quoted('name', 'file'), { ...quoted('filename', 'shell.php;.png'), style: 'token' }],
      [quoted('name', 'file'), { ...quoted('filename', 'shell.php'), eq: ' = ' }],
      [quoted('name', 'file'), { ...quoted('filename', 'a.png'), style: 'ext-cp1252' }],
      [quoted('name', 'file'), { ...quoted('filename', 'ab.png'), style: 'ext-cp1252' }],
      [quoted('name', 'file'), { ...quoted('filename', 'a.png'), style: 'ext-unknown' }],
      [quoted('name', 'file'), { ...quoted('filename', 'a.png'), style: 'escaped' }],
      [quoted('name', 'file'), quoted('filename', '')],
      [quoted('name', 'file '), { ...quoted('filename', 'a.png'), sep: ';\r\n\t' }],
      [quoted('name', 'fi\r\n\tle'), quoted('filename', 'a.png')],
      [quoted('name', 'file'), quoted('filename', 'a\r\n\t.png')],
      [{ ...quoted('name', 'file'), style: 'token' }, { ...quoted('filename', 'a.png'), sep: ' ; ' }],
    ];
    part.disposition = { type: 'form-data', params: pick(variants, m.pick2) };
    part.data = m.at % 2 === 0 ? { kind: 'php' } : { kind: 'png' };
  },
  // a fake part behind line breaks only Werkzeug takes for a delimiter, inside a field
  (_spec, part, m) => {
    part.disposition = { type: 'form-data', params: field('title') };
    part.contentType = null;
    part.data = m.pick2 % 2 === 0 ? { kind: 'smuggle', variant: m.at } : { kind: 'lookalike', variant: m.at };
  },
  // a fake part in the preamble or the epilogue
  (spec, _part, m) => {
    if (m.pick2 % 2 === 0) spec.preamble = pick(PREAMBLES, m.at);
    else spec.epilogue = pick(EPILOGUES, m.at);
  },
  // a part glued to the next delimiter (its header block ends where the delimiter begins)
  // (busboy: an empty part, then the next one; Werkzeug: one part holding the next one's bytes)
  (spec, part, m) => {
    part.data = { kind: 'empty' };
    if (m.pick2 % 2 === 0) part.disposition = { type: 'form-data', params: [quoted('name', 'file'), quoted('filename', 'a.png')] };
    const glued = m.at % 2 === 0 ? { filename: 'x.png', data: { kind: 'png' } as DataSpec } : { filename: 'shell.php', data: { kind: 'php' } as DataSpec };
    spec.parts.push({ ...structuredClone(part), breakBefore: 'none', disposition: { type: 'form-data', params: [quoted('name', 'file'), quoted('filename', glued.filename)] }, data: glued.data });
  },
  // a part Werkzeug reads and busboy skips, or the other way round, before a shell.php
  (spec, part, m) => {
    const variants: Array<(p: PartSpec) => void> = [
      (p) => (p.disposition = { type: 'attachment', params: [quoted('name', 'file'), quoted('filename', 'shell.php')] }),
      (p) => (p.disposition = null),
      (p) => p.extraHeaders.push('Content-Disposition: form-data; name="file"; filename="shell.php"'),
      (p) => (p.headerNames = 'space-before-colon'),
      (p) => p.extraHeaders.push(`X-Long: ${'a'.repeat(20 * 1024)}`),
      (p) => (p.headerBreak = 'lf'),
      (p) => (p.padding = ' '),
      (p) => (p.delimiterBreak = 'lf'),
      (p) => ((p.headerEncoding = 'latin1'), p.disposition?.params.push(quoted('filename', 'caf\u00e9.png'))),
      (p) => (p.disposition = { type: 'form-data ', params: [quoted('name', 'file'), quoted('filename', 'a.png')] }),
      (p) => ((p.contentType = 'application/octet-stream'), (p.disposition = { type: 'form-data', params: field('file') })),
      (p) => ((p.contentType = 'text/plain; charset=utf-8; charset=iso-8859-1'), (p.disposition = { type: 'form-data', params: field('title') })),
    ];
    pick(variants, m.pick2)(part);
    if (m.at % 2 === 0) spec.parts.push({ ...structuredClone(part), disposition: { type: 'form-data', params: [quoted('name', 'file'), quoted('filename', 'shell.php')] }, headerNames: 'canonical', extraHeaders: [], data: { kind: 'php' } });
  },
  // a boundary busboy and Werkzeug unescape but a regex reading of the header would not: decoy
  // delimiters for that reading, then a part behind transport padding busboy skips
  (spec, part) => {
    spec.contentType = 'escaped-backslash';
    part.disposition = { type: 'form-data', params: [quoted('name', 'file'), quoted('filename', 'a.png')] };
    part.data = { kind: 'decoy' };
    spec.parts.push({ ...structuredClone(part), padding: ' ', disposition: { type: 'form-data', params: [quoted('name', 'file'), quoted('filename', 'shell.php')] }, data: { kind: 'php' } });
  },
  // the whole body with LF or CR line breaks
  (spec, _part, m) => {
    const br = pick<LineBreak>(['lf', 'cr'], m.pick2);
    for (const p of spec.parts) Object.assign(p, { headerBreak: br, delimiterBreak: br, breakBefore: br });
  },
];

/** Names (and variant counts) of ATTACKS, in order, for reports. */
const ATTACK_NAMES: ReadonlyArray<[string, number]> = [
  ['boundary-parameters', 6], ['disposition-parameters', 22], ['werkzeug-only-delimiter', 2], ['preamble-or-epilogue', 2],
  ['glued-part', 2], ['part-one-parser-skips', 12], ['escaped-boundary', 1], ['lf-or-cr-body', 2],
];

/** A short label for a mutation, e.g. "attack:disposition-parameters#3" or "padding". */
export function describeMutation(m: Mutation): string {
  if (m.op !== 'attack') return m.op;
  const [name, variants] = pick(ATTACK_NAMES, m.pick);
  return `attack:${name}#${m.pick2 % variants}`;
}

function pick<T>(items: readonly T[], n: number): T {
  return items[n % items.length]!;
}

export function mutate(base: RequestSpec, mutations: readonly Mutation[]): RequestSpec {
  const spec: RequestSpec = structuredClone(base);
  for (const m of mutations) {
    const part = spec.parts.length === 0 ? undefined : spec.parts[m.part % spec.parts.length]!;
    const params = part?.disposition?.params;
    const param = params === undefined || params.length === 0 ? undefined : params[m.at % params.length]!;
    switch (m.op) {
      case 'attack':
        if (part) pick(ATTACKS, m.pick)(spec, part, m);
        break;
      case 'content-type':
        spec.contentType = pick(CT_VARIANTS, m.pick);
        // a body framed by the boundary Werkzeug would use, inside a part: what a duplicate
        // boundary parameter would smuggle
        if (part && m.pick2 % 2 === 0) part.data = { kind: 'nested' };
        break;
      case 'boundary':
        spec.boundary = pick([...ODD_BOUNDARIES, ...RFC_BOUNDARIES], m.pick);
        break;
      case 'preamble':
        spec.preamble = pick(PREAMBLES, m.pick);
        spec.preambleBreak = pick<LineBreak>(['crlf', 'crlf', 'lf', 'cr'], m.pick2);
        break;
      case 'close':
        spec.close = pick(CLOSES, m.pick);
        break;
      case 'epilogue':
        spec.epilogue = pick(EPILOGUES, m.pick);
        break;
      case 'no-parts':
        spec.parts = [];
        break;
      case 'add-param':
        params?.splice(m.at % (params.length + 1), 0, {
          key: pick(PARAM_KEYS, m.pick2),
          value: pick([...FILENAMES, ...FIELD_NAMES], m.pick),
          style: m.pick2 % 3 === 0 ? pick(STYLES, m.pick) : 'quoted',
          eq: '=',
          sep: '; ',
        });
        break;
      case 'param-style':
        if (param) param.style = pick(STYLES, m.pick);
        break;
      case 'param-eq':
        if (param) param.eq = pick(EQS, m.pick);
        break;
      case 'param-sep':
        if (param) param.sep = pick(SEPS, m.pick);
        break;
      case 'drop-param':
        params?.splice(m.at % Math.max(1, params.length), 1);
        break;
      case 'filename': {
        const named = params?.find((p) => p.key === 'filename');
        if (named) named.value = pick(FILENAMES, m.pick);
        else params?.push(quoted('filename', pick(FILENAMES, m.pick)));
        break;
      }
      case 'name': {
        const named = params?.find((p) => p.key === 'name');
        if (named) named.value = pick(FIELD_NAMES, m.pick);
        break;
      }
      case 'disposition-type':
        if (part?.disposition) part.disposition.type = pick(DISPOSITION_TYPES, m.pick);
        break;
      case 'no-disposition':
        if (part) part.disposition = null;
        break;
      case 'part-content-type':
        if (part) part.contentType = pick(CONTENT_TYPES, m.pick);
        break;
      case 'extra-header':
        part?.extraHeaders.push(pick(EXTRA_HEADERS, m.pick));
        break;
      case 'header-names':
        if (part) part.headerNames = pick<PartSpec['headerNames']>(['lower', 'upper', 'space-before-colon', 'no-space'], m.pick);
        break;
      case 'latin1-headers':
        if (part) part.headerEncoding = 'latin1';
        break;
      case 'header-break':
        if (part) part.headerBreak = pick<LineBreak>(['lf', 'cr'], m.pick);
        break;
      case 'padding':
        if (part) part.padding = pick<PartSpec['padding']>([' ', '\t', ' \t ', 'X', '-'], m.pick);
        break;
      case 'delimiter-break':
        if (part) part.delimiterBreak = pick<LineBreak>(['lf', 'cr'], m.pick);
        break;
      case 'break-before':
        if (part) part.breakBefore = pick<LineBreak>(['lf', 'cr'], m.pick);
        break;
      case 'data':
        if (part) part.data = structuredClone(pick(ADVERSARIAL_DATA, m.pick));
        break;
    }
  }
  return spec;
}

/** A request and the mutations that made it (the test prints both on failure). */
export interface GeneratedRequest {
  base: RequestSpec;
  mutations: Mutation[];
  spec: RequestSpec;
}

export const generatedRequestArb: fc.Arbitrary<GeneratedRequest> = fc
  .tuple(
    cleanRequest,
    fc.oneof(
      // clean
      { weight: 1, arbitrary: fc.constant<Mutation[]>([]) },
      // one known differential, nothing else in the way
      { weight: 2, arbitrary: mutationArb.map((m): Mutation[] => [{ ...m, op: 'attack' }]) },
      // anything
      { weight: 2, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 4 }) },
    ),
  )
  .map(([base, mutations]) => ({ base, mutations, spec: mutate(base, mutations) }));

/** Just the request. */
export const requestArb: fc.Arbitrary<RequestSpec> = generatedRequestArb.map((g) => g.spec);

// ------------------------------------------------------------------------------------------
// Serialisation

const BREAKS: Record<LineBreak, string> = { crlf: '\r\n', lf: '\n', cr: '\r', none: '' };

function pct(bytes: Buffer): string {
  let s = '';
  for (const b of bytes) s += /[A-Za-z0-9.\-_~]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return s;
}

/** One parameter as text (header text is later encoded as UTF-8 or latin1). */
function paramText(p: ParamSpec): string {
  const { key, value } = p;
  let written: string;
  switch (p.style) {
    case 'quoted':
      written = `"${value}"`;
      break;
    case 'token':
      written = value;
      break;
    case 'ext-utf8':
      return `${p.sep}${key.endsWith('*') ? key : `${key}*`}${p.eq}UTF-8''${pct(Buffer.from(value, 'utf8'))}`;
    case 'ext-latin1':
      return `${p.sep}${key.endsWith('*') ? key : `${key}*`}${p.eq}iso-8859-1'en'${pct(Buffer.from(value, 'latin1'))}`;
    case 'ext-cp1252':
      // charsets busboy (Node's TextDecoder) and Python decode differently: for windows-1252 and
      // its label l1, \x99 is U+0099 in Node 20 and a trademark sign (NFKD "TM") in Python
      return `${p.sep}${key.endsWith('*') ? key : `${key}*`}${p.eq}${pick(['l1', 'windows-1252', 'koi8-r', 'utf-16le'], value.length)}''${pct(Buffer.from(`${value}\x99`, 'latin1'))}`;
    case 'ext-unknown':
      return `${p.sep}${key.endsWith('*') ? key : `${key}*`}${p.eq}x-unknown''${pct(Buffer.from(value, 'utf8'))}`;
    case 'unterminated':
      written = `"${value}`;
      break;
    case 'escaped':
      written = `"${value.replace(/[.a]/g, (c) => `\\${c}`)}"`;
      break;
    case 'pct22':
      written = `%22${value}%22`;
      break;
    case 'bare':
      return `${p.sep}${key}`;
  }
  return `${p.sep}${key}${p.eq}${written}`;
}

function headerName(name: string, spelling: PartSpec['headerNames']): string {
  switch (spelling) {
    case 'canonical':
      return `${name}: `;
    case 'lower':
      return `${name.toLowerCase()}: `;
    case 'upper':
      return `${name.toUpperCase()}: `;
    case 'space-before-colon':
      return `${name} : `;
    case 'no-space':
      return `${name}:`;
  }
}

function dataBytes(d: DataSpec, boundary: string, other: string, rawBoundary: string): Buffer {
  switch (d.kind) {
    case 'png':
      return pngBytes();
    case 'jpg':
      return jpegBytes();
    case 'gif':
      return gifBytes();
    case 'empty':
      return Buffer.alloc(0);
    case 'php':
      return Buffer.from('<?php system($_GET["c"]); ?>');
    case 'html':
      return Buffer.from('<html><script>alert(1)</script></html>');
    case 'svg':
      return Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>');
    case 'text':
      return Buffer.from(d.text, d.encoding);
    case 'bytes':
      return Buffer.from(d.bytes);
    case 'big':
      return pngBytes(d.size);
    case 'lookalike': {
      const variants = [
        `\r\n--${boundary}X\r\n<?php system($_GET[1]); ?>`,
        `\r\n--${boundary} \r\n`,
        `\r\n--${boundary}-\r\n`,
        `\r\n--${boundary}\t--\r\n`,
        `\n--${boundary}X\n`,
        `\r\n-- ${boundary}\r\n`,
        `x--${boundary}\r\n`,
        `\r\n--${boundary.toUpperCase() === boundary ? boundary.toLowerCase() : boundary.toUpperCase()}\r\n`,
      ];
      return Buffer.concat([pngBytes(), Buffer.from(variants[d.variant % variants.length]!, 'latin1')]);
    }
    case 'smuggle': {
      const fake = `Content-Disposition: form-data; name="file"; filename="shell.php"`;
      const variants = [
        `\n--${boundary}\n${fake}\n\n<?php system($_GET[1]); ?>\n`,
        `\r--${boundary}\r${fake}\r\r<?php system($_GET[1]); ?>\r`,
        `\n--${boundary}\r\n${fake}\r\n\r\n<?php system($_GET[1]); ?>`,
        `\r\n--${boundary} \r\n${fake}\r\n\r\n<?php system($_GET[1]); ?>`,
        `\n--${boundary}--\n`,
        `\r\n--${boundary}\t\r\n${fake}\r\n\r\n<?php`,
      ];
      return Buffer.concat([pngBytes(), Buffer.from(variants[d.variant % variants.length]!, 'latin1')]);
    }
    case 'decoy':
      return Buffer.concat([pngBytes(), Buffer.from(`\r\n--${rawBoundary}\\\\x\r\nX-Decoy: 1\r\n\r\nz\r\n--${rawBoundary}\\\\x--`, 'latin1')]);
    case 'nested':
      return Buffer.from(
        `\r\n--${other}\r\nContent-Disposition: form-data; name="file"; filename="shell.php"\r\nContent-Type: application/x-php\r\n\r\n<?php system($_GET[1]); ?>\r\n--${other}--\r\n`,
        'latin1',
      );
  }
}

/** The boundary busboy/Node frame the body with, and the one Werkzeug would use. */
function boundaries(v: ContentTypeVariant, b: string, o: string): { frame: string; werkzeug: string } {
  switch (v) {
    case 'dup-boundary':
    case 'boundary-star':
    case 'two-headers':
      return { frame: b, werkzeug: o };
    case 'dup-boundary-reversed':
      return { frame: o, werkzeug: b };
    case 'boundary-continuation':
      return { frame: b, werkzeug: b + o };
    case 'quoted-escaped':
      return { frame: b, werkzeug: escapeSome(b) };
    case 'escaped-backslash':
      // header text boundary="b\\x": busboy and Werkzeug unescape it to b\x
      return { frame: `${b}\\x`, werkzeug: `${b}\\x` };
    default:
      return { frame: b, werkzeug: b };
  }
}

function escapeSome(b: string): string {
  return b.replace(/./g, (c, i: number) => (i % 3 === 0 ? `\\${c}` : c));
}

function contentTypes(v: ContentTypeVariant, b: string, o: string): string[] {
  const needsQuotes = /[^0-9A-Za-z'+_\-.]/.test(b);
  const value = needsQuotes ? `"${b}"` : b;
  switch (v) {
    case 'plain':
      return [`multipart/form-data; boundary=${value}`];
    case 'quoted':
      return [`multipart/form-data; boundary="${b}"`];
    case 'quoted-escaped':
      return [`multipart/form-data; boundary="${escapeSome(b)}"`];
    case 'escaped-backslash':
      return [`multipart/form-data; boundary="${b}\\\\x"`];
    case 'charset-before':
      return [`multipart/form-data; charset=utf-8; boundary=${value}`];
    case 'charset-after':
      return [`multipart/form-data; boundary=${value}; charset=utf-8`];
    case 'upper':
      return [`Multipart/Form-Data; BOUNDARY=${value}`];
    case 'spaced':
      return [`multipart/form-data; boundary = ${value}`];
    case 'tab':
      return [`multipart/form-data;\tboundary=${value}`];
    case 'trailing-semicolon':
      return [`multipart/form-data; boundary=${value};`];
    case 'dup-boundary':
      return [`multipart/form-data; boundary=${value}; boundary=${o}`];
    case 'dup-boundary-reversed':
      return [`multipart/form-data; boundary=${o}; boundary=${value}`];
    case 'boundary-star':
      return [`multipart/form-data; boundary=${value}; boundary*=utf-8''${o}`];
    case 'boundary-continuation':
      return [`multipart/form-data; boundary=${value}; boundary*0=${o}`];
    case 'missing-boundary':
      return ['multipart/form-data'];
    case 'mixed':
      return [`multipart/mixed; boundary=${value}`];
    case 'two-headers':
      return [`multipart/form-data; boundary=${value}`, `multipart/form-data; boundary=${o}`];
  }
}

export function serialize(spec: RequestSpec): SerializedRequest {
  const { frame: b, werkzeug } = boundaries(spec.contentType, spec.boundary, spec.other);
  const fill = (s: string): string => s.replaceAll('{b}', b);
  const chunks: Buffer[] = [];
  const latin1 = (s: string): Buffer => Buffer.from(s, 'latin1');
  if (spec.preamble !== '') chunks.push(Buffer.from(fill(spec.preamble), 'utf8'), latin1(BREAKS[spec.preambleBreak]));
  const parts = spec.parts;
  parts.forEach((part, i) => {
    if (spec.close === 'early' && i === parts.length - 1 && i > 0) chunks.push(latin1(`\r\n--${b}--`));
    const lead = i === 0 ? '' : BREAKS[part.breakBefore];
    chunks.push(latin1(`${lead}--${b}${part.padding}${BREAKS[part.delimiterBreak]}`));
    const lines: string[] = [];
    if (part.disposition !== null) lines.push(`${headerName('Content-Disposition', part.headerNames)}${part.disposition.type}${part.disposition.params.map(paramText).join('')}`);
    if (part.contentType !== null) lines.push(`${headerName('Content-Type', part.headerNames)}${part.contentType}`);
    lines.push(...part.extraHeaders);
    const br = BREAKS[part.headerBreak];
    // header text: '\r\n' inside a value (folding separators) follows the block's line breaks
    const text = lines.map((l) => l.replaceAll('\r\n', br)).join(br) + br + br;
    chunks.push(Buffer.from(text, part.headerEncoding));
    chunks.push(dataBytes(part.data, b, werkzeug === b ? spec.other : werkzeug, spec.boundary));
  });
  const lead = parts.length === 0 ? '' : '\r\n';
  switch (spec.close) {
    case 'crlf':
    case 'early':
      chunks.push(latin1(`${lead}--${b}--\r\n`));
      break;
    case 'none':
      chunks.push(latin1(`${lead}--${b}--`));
      break;
    case 'lf':
      chunks.push(latin1(`${parts.length === 0 ? '' : '\n'}--${b}--\n`));
      break;
    case 'padded':
      chunks.push(latin1(`${lead}--${b}-- \t\r\n`));
      break;
    case 'dashes-only':
      chunks.push(latin1(`${lead}--${b}-\r\n`));
      break;
    case 'missing':
      break;
  }
  if (spec.epilogue !== '') chunks.push(Buffer.from(fill(spec.epilogue), 'utf8'));
  const body = Buffer.concat(chunks);
  const offsets = [...new Set(spec.cuts.map((f) => Math.floor(f * body.length)))].filter((o) => o > 0 && o < body.length).sort((x, y) => x - y);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const at of offsets) {
    pieces.push(body.subarray(from, at));
    from = at;
  }
  pieces.push(body.subarray(from));
  return { contentTypes: contentTypes(spec.contentType, spec.boundary, spec.other), body, pieces, route: spec.route };
}
