// Filename rewriting for forwarded file parts.
//
// secureFilename is a port of Werkzeug's werkzeug.utils.secure_filename as it behaves on POSIX
// (os.sep "/", no altsep, no Windows device-name prefixing), so the name the guard checks and
// forwards is the name the Flask upstream would have computed itself. Its output is a fixed point
// of secure_filename, so the upstream re-applying it stores exactly what the guard forwarded.
//
// Unicode version caveat: NFKD tables come from Node's ICU, Werkzeug's from Python's unicodedata.
// They differ only on code points one side does not know yet (e.g. Python 3.11 = Unicode 14 does not
// decompose the Unicode 16 "outlined" letters U+1CCD6..U+1CCF9 or U+A7F1, Node with Unicode 17 maps
// them to ASCII). test/unit/filenames.test.ts checks every code point against the real Werkzeug.

import { randomUUID } from 'node:crypto';

export type FilenameMode = 'secure' | 'uuid' | 'keep';

// encode("ascii", "ignore") drops every non-ASCII code unit, lone surrogates included.
const NON_ASCII = /[^\x00-\x7f]/g;
// Python's argument-less str.split() whitespace; only the ASCII members can remain at this point.
const PY_WHITESPACE_RUN = /[\t\n\v\f\r\x1c-\x1f ]+/;
const DISALLOWED = /[^A-Za-z0-9_.-]/g;
// Content-Disposition quoted-string breakers for the canonical header the forwarder writes.
const UNSAFE_IN_HEADER = /[\0\r\n"]/;

export function secureFilename(name: string): string {
  const ascii = name.normalize('NFKD').replace(NON_ASCII, '');
  const joined = ascii
    .replaceAll('/', ' ')
    .split(PY_WHITESPACE_RUN)
    .filter((word) => word !== '')
    .join('_');
  return stripDotsAndUnderscores(joined.replace(DISALLOWED, ''));
}

// str.strip("._") by index scan: a `[._]+$` regex would backtrack quadratically on long runs.
function stripDotsAndUnderscores(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isDotOrUnderscore(s.charCodeAt(start))) start++;
  while (end > start && isDotOrUnderscore(s.charCodeAt(end - 1))) end--;
  return s.slice(start, end);
}

function isDotOrUnderscore(code: number): boolean {
  return code === 0x2e || code === 0x5f;
}

/**
 * Lower-cased text after the last dot, or null when there is none. A leading dot marks a dotfile,
 * not an extension, and a trailing dot gives an empty extension: both are null.
 */
export function finalExtension(name: string): string | null {
  const dot = name.lastIndexOf('.');
  if (dot <= 0 || dot === name.length - 1) return null;
  return name.slice(dot + 1).toLowerCase();
}

/** The filename to forward upstream, or null when the name is unusable and the part must be rejected. */
export function rewriteFilename(mode: FilenameMode, original: string): string | null {
  switch (mode) {
    case 'secure': {
      const secure = secureFilename(original);
      return secure === '' ? null : secure;
    }
    case 'uuid': {
      // The extension comes from the secure name so only [a-z0-9_-] reaches the header.
      const extension = finalExtension(secureFilename(original));
      return extension === null ? null : `${randomUUID()}.${extension}`;
    }
    case 'keep':
      return original === '' || UNSAFE_IN_HEADER.test(original) ? null : original;
  }
}
