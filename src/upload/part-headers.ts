// A second reading of each part's raw header block (kept by the delimiter scanner), for what
// busboy parses without saying so: which Content-Disposition parameters were written, and how.
//
// busboy keeps the FIRST occurrence of a parameter and prefers `filename*`; Werkzeug 2.2.2 keeps
// the LAST, files `filename*` under `filename`, APPENDS RFC 2231 continuations (`filename*0`),
// stops reading parameters at a key like `x*y`, reads an unquoted value up to the next `;`
// (trailing spaces included), ignores every parameter when the disposition type is followed by
// whitespace, and unfolds folded headers with one space where busboy keeps the tab. Each of
// those would let the two parsers name a part differently (research/multipart-bypasses.md §2-§4),
// so a part written that way is refused; the guard never guesses which reading was meant.

import { rawPartHeader } from './delimiter-scanner.js';

export interface PartHeaderReading {
  /** why the part cannot be read unambiguously, or null */
  problem: string | null;
  /** Content-Disposition carries a filename (or filename*) parameter: Werkzeug makes the part a file */
  hasFilename: boolean;
}

// RFC 9110 tchar, as busboy's TOKEN table
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]$/;
/** charsets of `filename*=` that busboy and Python decode alike */
const EXTENDED_CHARSETS = new Set(['utf-8', 'utf8', 'iso-8859-1', 'latin1']);

export function readPartHeaders(block: string): PartHeaderReading {
  const lines = block.split('\r\n');
  if (lines.some((line) => line.startsWith(' ') || line.startsWith('\t'))) return refused('a folded part header');
  const disposition = rawPartHeader(block, 'content-disposition');
  if (disposition === null) return refused('duplicate Content-Disposition headers');
  // none at all: busboy skips the part, and the part count refuses the request
  if (disposition === undefined) return { problem: null, hasFilename: false };
  return readDisposition(disposition);
}

function refused(problem: string): PartHeaderReading {
  return { problem, hasFilename: false };
}

function readDisposition(value: string): PartHeaderReading {
  let i = 0;
  while (i < value.length && TOKEN.test(value[i]!)) i++;
  if (i === 0) return refused('Content-Disposition has no type');
  const seen = new Set<string>();
  let hasFilename = false;
  while (i < value.length) {
    if (value[i] !== ';') return refused('Content-Disposition: unexpected text before a parameter');
    i++;
    while (value[i] === ' ' || value[i] === '\t') i++;
    const keyStart = i;
    while (i < value.length && TOKEN.test(value[i]!)) i++;
    const key = value.slice(keyStart, i).toLowerCase();
    if (key === '' || value[i] !== '=') return refused('Content-Disposition: malformed parameter');
    i++;
    const star = key.indexOf('*');
    const root = star === -1 ? key : key.slice(0, star);
    if (star !== -1 && star !== key.length - 1) return refused(`Content-Disposition: RFC 2231 continuation parameter ${key}`);
    if (seen.has(root)) return refused(`Content-Disposition: repeated ${root} parameter`);
    seen.add(root);
    if (root === 'filename') hasFilename = true;
    if (star !== -1) {
      // extended value: charset'language'percent-encoded; nothing may follow but ";"
      const charsetEnd = value.indexOf("'", i);
      if (charsetEnd === -1 || !EXTENDED_CHARSETS.has(value.slice(i, charsetEnd).toLowerCase())) {
        return refused(`Content-Disposition: ${key} in a charset the parsers may decode differently`);
      }
      while (i < value.length && value[i] !== ';' && value[i] !== ' ' && value[i] !== '\t') i++;
    } else if (value[i] === '"') {
      i++;
      while (i < value.length && value[i] !== '"') i += value[i] === '\\' ? 2 : 1;
      if (i >= value.length) return refused('Content-Disposition: unterminated quoted value');
      i++;
      // whitespace after a quoted value is read alike; skip it
      while (value[i] === ' ' || value[i] === '\t') i++;
    } else {
      // token value: Werkzeug would read trailing whitespace into it, so none may follow
      while (i < value.length && TOKEN.test(value[i]!)) i++;
    }
  }
  return { problem: null, hasFilename };
}
