// Zip-level checks for ContentInspector:
//   - OfficePackageWalker: an OOXML (docx/xlsx/pptx) or OpenDocument (odt/ods/odp) package that
//     carries macros or ActiveX controls: entry names (local headers and central directory) such
//     as word/vbaProject.bin, xl/macrosheets/, word/activeX/, Basic/, Scripts/, and a
//     [Content_Types].xml that declares a VBA project, a macro-enabled main part, ActiveX or macro
//     sheets (inflated, bounded). Office itself refuses a renamed .docm/.xlsm opened as .docx/.xlsx,
//     so this is defence in depth for other consumers (LibreOffice runs such macros on request).
//   - endsWithZip: a zip archive appended to a non-zip file (GIFAR, phar.zip and JAR polyglots):
//     zip readers start from the end-of-central-directory record in the last 64 KiB.

import { inflateRawSync } from 'node:zlib';
import { read, REST, skip, StepDriver, type Step } from './step-driver.js';

const LOCAL = 0x04034b50;
const CENTRAL = 0x02014b50;
const EOCD = 0x06054b50;
const ZIP64_EOCD = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const DESCRIPTOR = 0x08074b50;
/** Largest [Content_Types].xml (compressed) inflated for inspection, and its inflated cap. */
const CONTENT_TYPES_MAX = 1024 * 1024;
const CONTENT_TYPES_INFLATED_MAX = 8 * 1024 * 1024;

/** Why an entry name means active content, or null. */
export function macroEntry(name: string): string | null {
  const n = name.toLowerCase().replaceAll('\\', '/');
  if (n.includes('vbaproject')) return 'VBA macros';
  if (n.includes('macrosheets/')) return 'Excel 4.0 macro sheets';
  if (n.includes('activex')) return 'ActiveX controls';
  if (n.startsWith('basic/') || n.startsWith('scripts/')) return 'macros';
  return null;
}

const CONTENT_TYPE_MARKERS: ReadonlyArray<[string, string]> = [
  ['vbaproject', 'VBA macros'],
  ['macroenabled', 'a macro-enabled main part'],
  ['ms-office.activex', 'ActiveX controls'],
  ['macrosheet', 'Excel 4.0 macro sheets'],
  ['ms-office.vbakeymapcustomizations', 'VBA macros'],
];

/**
 * Walks the zip's records in file order: local headers (name, then data skipped by its compressed
 * size, or resynchronised on the next signature when a data descriptor follows), central directory
 * headers, and the end records. Bounded: only a [Content_Types].xml up to CONTENT_TYPES_MAX is read.
 */
export class OfficePackageWalker {
  problem: string | null = null;
  private readonly driver: StepDriver;
  private carry = Buffer.alloc(0); // resync: up to 3 bytes of a signature split by chunks

  constructor() {
    this.driver = new StepDriver(read(0, () => this.record()));
  }

  feed(chunk: Buffer): void {
    if (this.problem === null) this.driver.feed(chunk);
  }

  finish(): void {
    // nothing pending matters: a truncated package carries nothing the names did not show
  }

  private fail(reason: string): Step {
    this.problem ??= reason;
    return REST;
  }

  private record(): Step {
    return read(4, (sig) => this.afterSignature(sig.readUInt32LE(0)) ?? this.resync());
  }

  private afterSignature(sig: number): Step | null {
    switch (sig) {
      case LOCAL:
        return read(26, (h) => {
          const flags = h.readUInt16LE(2);
          const method = h.readUInt16LE(4);
          const compressed = h.readUInt32LE(14);
          const nameLength = h.readUInt16LE(22);
          const extraLength = h.readUInt16LE(24);
          return read(nameLength, (nameBytes) => {
            const name = nameBytes.toString('utf8');
            const macro = macroEntry(name);
            if (macro !== null) return this.fail(`Office document with ${macro} (${name})`);
            const sizeKnown = (flags & 0x08) === 0 && compressed !== 0xffffffff;
            return skip(extraLength, () => {
              if (!sizeKnown) return this.resync();
              if (name.toLowerCase() === '[content_types].xml' && compressed <= CONTENT_TYPES_MAX) {
                return read(compressed, (data) => this.contentTypes(data, method) ?? this.record());
              }
              return skip(compressed, () => this.record());
            });
          });
        });
      case CENTRAL:
        return read(42, (h) => {
          const nameLength = h.readUInt16LE(24);
          const rest = h.readUInt16LE(26) + h.readUInt16LE(28);
          return read(nameLength, (nameBytes) => {
            const name = nameBytes.toString('utf8');
            const macro = macroEntry(name);
            if (macro !== null) return this.fail(`Office document with ${macro} (${name})`);
            return skip(rest, () => this.record());
          });
        });
      case DESCRIPTOR:
        return this.resync();
      case EOCD:
      case ZIP64_EOCD:
      case ZIP64_LOCATOR:
        return REST;
      default:
        return null;
    }
  }

  private contentTypes(data: Buffer, method: number): Step | null {
    let xml: Buffer;
    try {
      xml = method === 0 ? data : method === 8 ? inflateRawSync(data, { maxOutputLength: CONTENT_TYPES_INFLATED_MAX }) : Buffer.alloc(0);
    } catch {
      return this.fail('[Content_Types].xml cannot be decompressed for inspection');
    }
    const text = xml.toString('latin1').toLowerCase();
    for (const [marker, what] of CONTENT_TYPE_MARKERS) {
      if (text.includes(marker)) return this.fail(`Office document with ${what} ([Content_Types].xml)`);
    }
    return null;
  }

  /** Skips to the next local, central or end signature ("PK" + two bytes), across chunks. */
  private resync(): Step {
    this.carry = Buffer.alloc(0);
    return {
      kind: 'scan',
      consume: (bytes) => {
        // a signature that began in the previous chunk
        if (this.carry.length > 0) {
          const joined = Buffer.concat([this.carry, bytes.subarray(0, 4 - this.carry.length)]);
          for (let i = 0; i + 4 <= joined.length; i++) {
            if (i < this.carry.length && isSignature(joined, i)) {
              const used = i + 4 - this.carry.length;
              this.carry = Buffer.alloc(0);
              return { used, next: this.afterSignature(joined.readUInt32LE(i))! };
            }
          }
          this.carry = Buffer.alloc(0);
        }
        for (let p = bytes.indexOf(0x50); p !== -1; p = bytes.indexOf(0x50, p + 1)) {
          if (p + 4 > bytes.length) {
            this.carry = Buffer.from(bytes.subarray(p));
            return { used: bytes.length, next: null };
          }
          if (isSignature(bytes, p)) return { used: p + 4, next: this.afterSignature(bytes.readUInt32LE(p))! };
        }
        return { used: bytes.length, next: null };
      },
    };
  }
}

function isSignature(bytes: Buffer, at: number): boolean {
  if (bytes[at] !== 0x50 || bytes[at + 1] !== 0x4b) return false;
  const sig = bytes.readUInt32LE(at);
  return sig === LOCAL || sig === CENTRAL || sig === EOCD || sig === ZIP64_EOCD;
}

/** How many trailing bytes endsWithZip needs: EOCD (22) plus the longest comment (65535). */
export const ZIP_TAIL_BYTES = 22 + 0xffff;

/**
 * True when `tail` (the last bytes of a file, up to ZIP_TAIL_BYTES) ends with a zip
 * end-of-central-directory record whose comment runs exactly to the end of the file, as every zip
 * reader requires. Random data matches with probability ~2^-32 per file.
 */
export function endsWithZip(tail: Buffer): boolean {
  if (tail.length < 22) return false;
  const lowest = Math.max(0, tail.length - ZIP_TAIL_BYTES);
  // native search backwards for the signature (a JS byte loop here cost ~4% of a small upload)
  for (let at = tail.lastIndexOf(EOCD_SIGNATURE, tail.length - 22); at >= lowest; at = at > 0 ? tail.lastIndexOf(EOCD_SIGNATURE, at - 1) : -1) {
    if (tail.readUInt16LE(at + 20) === tail.length - at - 22) return true;
  }
  return false;
}

const EOCD_SIGNATURE = Buffer.from([0x50, 0x4b, 0x05, 0x06]);
