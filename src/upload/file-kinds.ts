// What each allowed extension must look like inside: the metrics category (SPEC: image|video|
// document|other) and the file-type `ext` values that content sniffing may return for it.
// Text formats carry `text: true` instead: file-type only knows binary formats.

export type FileCategory = 'image' | 'video' | 'document' | 'other';

export type FileKind =
  | {
      readonly category: FileCategory;
      readonly expected: readonly string[];
      readonly text?: never;
      /** may hold uncompressed samples (pixels, audio): long runs of printable bytes that are not
       *  text, so the content check uses only its unambiguous markers (content-check.ts) */
      readonly rawSamples?: true;
    }
  | { readonly category: FileCategory; readonly text: true; readonly expected?: never; readonly rawSamples?: never };

function binary(category: FileCategory, ...expected: string[]): FileKind {
  return Object.freeze({ category, expected: Object.freeze(expected) });
}

/** A binary kind whose files may carry uncompressed samples (TIFF/BMP strips, WAV PCM, AVI). */
function raw(category: FileCategory, ...expected: string[]): FileKind {
  return Object.freeze({ category, expected: Object.freeze(expected), rawSamples: true as const });
}

function text(category: FileCategory): FileKind {
  return Object.freeze({ category, text: true as const });
}

// Values are file-type 21.3.x `ext` results (node_modules/file-type/core.js). Where one container
// legitimately yields several results the list says so, with the reason.
const KINDS: ReadonlyMap<string, FileKind> = new Map<string, FileKind>([
  // Images. An animated PNG is still a PNG: file-type reports 'apng' when acTL precedes IDAT.
  ['png', binary('image', 'png', 'apng')],
  ['jpg', binary('image', 'jpg')],
  ['jpeg', binary('image', 'jpg')],
  ['jpe', binary('image', 'jpg')],
  ['gif', binary('image', 'gif')],
  ['webp', binary('image', 'webp')],
  ['bmp', raw('image', 'bmp')],
  ['tif', raw('image', 'tif')],
  ['tiff', raw('image', 'tif')],
  ['ico', raw('image', 'ico')],
  // file-type maps every HEIF brand (heic, heix, hevc, hevx, mif1, msf1) to 'heic'.
  ['heic', binary('image', 'heic')],
  ['heif', binary('image', 'heic')],
  ['avif', binary('image', 'avif')],

  // Video. The ftyp major brand decides: any brand file-type does not single out is 'mp4'
  // (isom, mp41, mp42, avc1, dash, ...); Apple/HandBrake exports of ordinary MP4 use 'M4V '.
  ['mp4', binary('video', 'mp4', 'm4v')],
  ['m4v', binary('video', 'm4v', 'mp4')],
  // 'qt  ' brand, or a legacy QuickTime file starting with a moov/mdat/free/wide atom.
  ['mov', binary('video', 'mov')],
  ['webm', binary('video', 'webm')],
  ['mkv', binary('video', 'mkv')],
  ['avi', raw('video', 'avi')],

  // Audio has no SPEC category of its own.
  ['mp3', binary('other', 'mp3')],
  ['wav', raw('other', 'wav')],
  ['m4a', binary('other', 'm4a', 'mp4')],
  ['flac', binary('other', 'flac')],
  ['ogg', binary('other', 'ogg', 'oga', 'opus')],

  // Documents. OOXML is a zip; see content-check.ts for the 'zip' answer on a partial head.
  ['pdf', binary('document', 'pdf')],
  ['docx', binary('document', 'docx')],
  ['xlsx', binary('document', 'xlsx')],
  ['pptx', binary('document', 'pptx')],
  ['odt', binary('document', 'odt')],
  ['ods', binary('document', 'ods')],
  ['odp', binary('document', 'odp')],
  ['epub', binary('document', 'epub')],
  ['rtf', binary('document', 'rtf')],
  // Legacy Office files are OLE2 compound files; file-type cannot tell .doc from .xls from .msi.
  ['doc', binary('document', 'cfb')],
  ['xls', binary('document', 'cfb')],
  ['ppt', binary('document', 'cfb')],
  ['txt', text('document')],
  ['csv', text('document')],
  ['tsv', text('document')],
  ['json', text('document')],
  ['md', text('document')],

  // Archives. A .zip must be a plain zip, not a renamed docx/jar/apk.
  ['zip', binary('other', 'zip')],
  ['gz', binary('other', 'gz', 'tar.gz')],
  ['tgz', binary('other', 'tar.gz', 'gz')],
  ['tar', binary('other', 'tar')],
  ['7z', binary('other', '7z')],
]);

/** The kind of a lower-case extension (no dot), or undefined when the guard knows nothing of it. */
export function fileKind(ext: string): FileKind | undefined {
  return KINDS.get(ext.toLowerCase());
}

/** Metrics category of an extension; unknown extensions count as 'other'. */
export function categoryOf(ext: string): FileCategory {
  return KINDS.get(ext.toLowerCase())?.category ?? 'other';
}

/** Every extension the content check can verify (for config validation and docs). */
export const KNOWN_EXTENSIONS: readonly string[] = Object.freeze([...KINDS.keys()]);
