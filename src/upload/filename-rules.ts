// Dangerous filenames beyond what secure_filename and the extension whitelist catch
// (docs/content-inspection.md "Filename rules"). Each rule is a policy key under `filenameRules`
// (config/schema.ts), safe by default:
//
//   controlCharacters      NUL, C0/C1 controls, DEL and bidi controls (U+202E RLO "gnp.php" tricks)
//                          -> MALFORMED_MULTIPART, in every filename mode
//   doubleExtensions       an executable extension before the final one: shell.php.jpg,
//                          x.phtml.png, x.asp;.jpg, x.jsp%00.png, shell.ｐｈｐ.png (NFKD), .php.jpg
//                          (Apache AddHandler runs any .php segment, IIS 6 cut at ';')
//                          reject | strip (drop those segments) | allow
//   trailingDotsAndSpaces  "photo.jpg. " (Windows drops them, so what is stored differs from what
//                          was checked) reject | strip | allow
//   windowsReservedNames   CON, PRN, AUX, NUL, COM0-9, LPT0-9 (and ¹²³), CONIN$, CONOUT$, CLOCK$,
//                          whatever the extension: reject | prefix ("_CON.jpg", Werkzeug on
//                          Windows) | allow
//   maxLength              bytes (UTF-8) of the forwarded name; NAME_MAX is 255 on Linux/ext4
//
// Rejections other than control characters are EXTENSION_NOT_ALLOWED with the SPEC's message
// "Invalid file type" and the rule in `reason`. In `uuid` mode the stored name is <uuid>.<ext>, so
// only controlCharacters and maxLength apply there; secure and keep get every rule (keep: applied
// to the original name, and to the name Werkzeug would store if the upstream sanitises it).

import type { ErrorCode } from '../errors.js';
import { finalExtension, rewriteFilename, secureFilename, type FilenameMode } from './filenames.js';

export type DoubleExtensionAction = 'reject' | 'strip' | 'allow';
export type TrailingAction = 'reject' | 'strip' | 'allow';
export type ReservedNameAction = 'reject' | 'prefix' | 'allow';
export type ControlCharacterAction = 'reject' | 'allow';

export interface FilenameRules {
  controlCharacters: ControlCharacterAction;
  doubleExtensions: DoubleExtensionAction;
  trailingDotsAndSpaces: TrailingAction;
  windowsReservedNames: ReservedNameAction;
  /** UTF-8 bytes of the forwarded name */
  maxLength: number;
  /** lower-case extensions that make a segment before the final extension dangerous */
  executableExtensions: ReadonlySet<string>;
}

/**
 * Extensions that make a segment *before* the final extension dangerous: Apache's AddHandler maps
 * (PHP in every handler alias, CGI languages, server-side includes) act on any segment of a
 * multi-extension name, IIS 6 cut names at ';', and the rest are programs, scripts and documents
 * a browser runs script in, which no image name should pretend to be. Common words that are also
 * extensions (com, js, xml, bin, inc, config...) are left out: "google.com.png" is a screenshot,
 * not an attack, and none of them has a handler that runs a non-final segment. Sources: OWASP File
 * Upload Cheat Sheet, HackTricks "File Upload", PayloadsAllTheThings "Upload Insecure Files".
 */
export const DEFAULT_EXECUTABLE_EXTENSIONS: readonly string[] = Object.freeze([
  // PHP
  'php', 'php2', 'php3', 'php4', 'php5', 'php6', 'php7', 'php8', 'phps', 'pht', 'phtm', 'phtml', 'pgif', 'phar', 'hphp', 'ctp',
  // ASP / ASP.NET / IIS handler maps (.cer, .asa and .cdx run as ASP)
  'asp', 'aspx', 'asa', 'asax', 'ascx', 'ashx', 'asmx', 'axd', 'cer', 'cdx', 'cshtml', 'vbhtml', 'svc',
  // Java EE
  'jsp', 'jspx', 'jspf', 'jsw', 'jsv', 'jtml', 'jhtml', 'war', 'jar',
  // server-side includes, CGI and scripting languages
  'shtml', 'shtm', 'stm', 'cgi', 'pl', 'py', 'pyc', 'rb', 'erb', 'rhtml', 'cfm', 'cfml', 'cfc', 'sh', 'bash',
  // Windows programs and scripts
  'exe', 'dll', 'bat', 'cmd', 'scr', 'pif', 'msi', 'cpl', 'hta', 'vbs', 'vbe', 'jse', 'wsf', 'wsh', 'ps1', 'psm1', 'lnk', 'reg',
  // Unix programs
  'elf',
  // documents browsers run script in
  'html', 'htm', 'xhtml', 'xht', 'svg', 'svgz', 'xsl', 'xslt', 'swf', 'mht', 'mhtml',
  // handler re-mapping
  'htaccess',
]);

export const DEFAULT_FILENAME_RULES: FilenameRules = Object.freeze({
  controlCharacters: 'reject',
  doubleExtensions: 'reject',
  trailingDotsAndSpaces: 'reject',
  windowsReservedNames: 'reject',
  maxLength: 255,
  executableExtensions: new Set(DEFAULT_EXECUTABLE_EXTENSIONS),
});

export type FilenameVerdict =
  | {
      ok: true;
      /** the original name after `strip` rules: what the whitelist and the extension come from */
      original: string;
      /** the name to forward, or null when the mode cannot produce one (rewriteFilename) */
      name: string | null;
    }
  | { ok: false; code: ErrorCode; message?: string; reason: string };

// C0 controls, DEL, C1 controls; bidi embeddings/overrides/isolates/marks (Trojan Source class,
// CVE-2021-42574); U+FFF9..U+FFFB interlinear annotations.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufff9-\ufffb]/u;
const TRAILING = /[. ]+$/;
// Windows device names (werkzeug #2623's list plus CLOCK$ and COM0/LPT0), checked on the part
// before the first dot with trailing spaces dropped, after NFKD (so ¹²³ become digits).
const RESERVED = /^(?:con|prn|aux|nul|com[0-9]|lpt[0-9]|conin\$|conout\$|clock\$)$/i;

function describe(char: string): string {
  return `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * The inner extension segments of a name: NFKD-folded (fullwidth "ｐｈｐ" is php to Werkzeug),
 * split on dots; the first segment (the base name) and the last (the final extension) are not
 * inner. Each is cut at the first character that is not a letter or digit, which is where IIS
 * (';'), NTFS (':'), C strings (NUL, "%00") and Werkzeug ("php " -> "php_") end an extension.
 */
function innerSegments(name: string): string[] {
  const segments = name.normalize('NFKD').split('.');
  return segments.slice(1, -1).map((s) => /^[a-z0-9]*/i.exec(s)![0].toLowerCase());
}

function hasExecutableInner(name: string, executable: ReadonlySet<string>): string | null {
  return innerSegments(name).find((s) => executable.has(s)) ?? null;
}

/** Drops the inner segments whose extension is executable: "shell.php.jpg" -> "shell.jpg". */
function stripExecutableInner(name: string, executable: ReadonlySet<string>): string {
  const segments = name.split('.');
  if (segments.length < 3) return name;
  const inner = segments.slice(1, -1).filter((s) => !executable.has(/^[a-z0-9]*/i.exec(s.normalize('NFKD'))![0].toLowerCase()));
  return [segments[0]!, ...inner, segments[segments.length - 1]!].join('.');
}

function reservedBase(name: string): string | null {
  const base = name.normalize('NFKD').split('.')[0]!.replace(/ +$/, '');
  return RESERVED.test(base) ? base : null;
}

const invalid = (reason: string): FilenameVerdict => ({ ok: false, code: 'EXTENSION_NOT_ALLOWED', reason });

/**
 * Applies the rules to one uploaded file's name and computes the name to forward (filenames.ts
 * rewriteFilename for the mode). The caller still checks the extension whitelist on
 * `finalExtension(verdict.original)` and that the forwarded name keeps that extension.
 */
export function applyFilenameRules(mode: FilenameMode, rules: FilenameRules, original: string): FilenameVerdict {
  if (rules.controlCharacters === 'reject') {
    const control = CONTROL.exec(original);
    if (control !== null) {
      const what = describe(control[0]);
      return { ok: false, code: 'MALFORMED_MULTIPART', message: `Malformed multipart body: control character ${what} in filename`, reason: `control character ${what} in filename` };
    }
  }

  let name = original;
  if (mode !== 'uuid') {
    if (rules.trailingDotsAndSpaces !== 'allow' && TRAILING.test(name)) {
      if (rules.trailingDotsAndSpaces === 'reject') return invalid('trailing dots or spaces in filename');
      name = name.replace(TRAILING, '');
    }
  }

  let forwarded = rewriteFilename(mode, name);
  if (forwarded !== null && mode !== 'uuid') {
    const executable = rules.executableExtensions;
    if (rules.doubleExtensions !== 'allow') {
      // what the guard forwards, and what Werkzeug would make of it (keep mode: the upstream may
      // sanitise itself; secure mode: already the same)
      const inner = hasExecutableInner(name, executable) ?? hasExecutableInner(forwarded, executable) ?? hasExecutableInner(secureFilename(forwarded), executable);
      if (inner !== null) {
        if (rules.doubleExtensions === 'reject') return invalid(`executable extension .${inner} inside the filename`);
        forwarded = stripExecutableInner(forwarded, executable);
        // stripping must leave a clean name, or the name is refused after all
        const left = hasExecutableInner(forwarded, executable) ?? hasExecutableInner(secureFilename(forwarded), executable);
        if (left !== null) return invalid(`executable extension .${left} inside the filename`);
        if (finalExtension(forwarded) === null) return invalid('no usable name left after removing executable extensions');
      }
    }
    if (rules.windowsReservedNames !== 'allow') {
      const reserved = reservedBase(forwarded) ?? reservedBase(secureFilename(forwarded));
      if (reserved !== null) {
        if (rules.windowsReservedNames === 'reject') return invalid(`Windows reserved device name ${reserved.toUpperCase()}`);
        forwarded = `_${forwarded}`;
      }
    }
  }

  if (forwarded !== null && Buffer.byteLength(forwarded, 'utf8') > rules.maxLength) {
    return invalid(`filename longer than ${rules.maxLength} bytes`);
  }
  return { ok: true, original: name, name: forwarded };
}
