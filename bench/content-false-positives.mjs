#!/usr/bin/env node
// False-positive rate of the content checks (docs/content-inspection.md), on the built dist/:
//
//   A. random data: FP_RANDOM_GIB (default 1) GiB of crypto-random bytes, in 64 KiB chunks, through
//      ContentInspector as a .mp4 (the whole-file marker scan, the embedded-program scan and the
//      appended-zip check: every check that reads arbitrary binary data) and FP_RANDOM_PNG_MIB
//      (default 256) MiB as the IDAT data of a valid PNG (adds the PNG structure walk). Random
//      data stands in for compressed media, which is what most upload bytes are.
//   B. real files found on this machine (FP_ROOTS, default /usr/share /usr/lib /opt /var/lib
//      /home /root /srv): every png, jpg/jpeg, gif, webp, bmp, ico, tif/tiff, pdf, mp4/m4v/mov,
//      webm/mkv, mp3/wav/ogg/flac, docx/xlsx/pptx, odt/ods/odp, zip, through the head check
//      (checkContent) and the streaming inspector, exactly as an upload would be checked.
//   C. generated media (FP_GENERATE=0 skips): when ImageMagick (convert-im6) and ffmpeg are installed
//      (Debian: imagemagick ffmpeg), real encoder output made from the photos and images of B:
//      baseline/progressive/commented JPEG, GIF, uncompressed TIFF and BMP (raw pixels), WebP and
//      PNG with text chunks, H.264 MP4 / MOV / MKV and MPEG-4 clips, PCM WAV and MP3 audio; cached
//      in <tmpdir>/ug-fp-corpus. (Debian's ImageMagick policy forbids writing PDF.)
//      (B gets most PDFs from texlive-latex-base-doc: pdfTeX output with object streams.)
//
// Prints figures and every flagged file with the reason; writes bench/results/content-fp-<ts>.json.
// Run: npm run build && node bench/content-false-positives.mjs

import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { checkContent, SNIFF_BYTES } from '../dist/upload/content-check.js';
import { ContentInspector } from '../dist/upload/content-inspector.js';

const MiB = 1024 * 1024;
const RANDOM_GIB = Number(process.env.FP_RANDOM_GIB ?? 1);
const GENERATE = process.env.FP_GENERATE !== '0';
const CONVERT = ['/usr/bin/convert-im6.q16', '/usr/bin/convert-im6'].find((p) => existsSync(p));
const FFMPEG = ['/usr/bin/ffmpeg'].find((p) => existsSync(p));
// one IDAT chunk holds it all, and a PNG chunk is at most 2^31-1 bytes
const RANDOM_PNG_MIB = Math.min(2047, Number(process.env.FP_RANDOM_PNG_MIB ?? 256));
const ROOTS = (process.env.FP_ROOTS ?? '/usr/share /usr/lib /opt /var/lib /home /root /srv').split(/\s+/).filter(Boolean);
const EXTENSIONS = new Set([
  'png', 'jpg', 'jpeg', 'gif', 'webp', 'bmp', 'ico', 'tif', 'tiff', 'pdf', 'mp4', 'm4v', 'mov', 'webm', 'mkv', 'avi',
  'mp3', 'wav', 'ogg', 'flac', 'docx', 'xlsx', 'pptx', 'odt', 'ods', 'odp', 'zip',
]);
const CHUNK = 64 * 1024;

function fmt(n) {
  return n.toLocaleString('en-US');
}

// ---- A. random data ------------------------------------------------------------------------

function randomRun(label, ext, head, totalBytes, tail) {
  const inspector = new ContentInspector(ext);
  const buffer = Buffer.alloc(CHUNK);
  let fed = 0;
  let verdict = inspector.feed(head);
  fed += head.length;
  const started = performance.now();
  while (verdict === null && fed < totalBytes) {
    randomFillSync(buffer);
    const piece = Math.min(CHUNK, totalBytes - fed);
    verdict = inspector.feed(piece === CHUNK ? buffer : buffer.subarray(0, piece));
    fed += piece;
  }
  if (verdict === null && tail) verdict = inspector.feed(tail);
  verdict ??= inspector.finish();
  const seconds = (performance.now() - started) / 1000;
  const result = { label, ext, bytes: fed, flagged: verdict !== null, reason: verdict, seconds: +seconds.toFixed(2), mibPerSecond: +(fed / MiB / seconds).toFixed(0) };
  console.log(`  ${label}: ${fmt(fed)} bytes, ${verdict === null ? 'no finding' : `FLAGGED: ${verdict}`} (${result.mibPerSecond} MiB/s incl. random generation)`);
  return result;
}

function pngChunkHead(type, length) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(length, 0);
  head.write(type, 4, 'latin1');
  return head;
}

function pngWithRandomIdat(totalData) {
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const ihdrData = Buffer.from([0, 0, 0x10, 0, 0, 0, 0x10, 0, 8, 2, 0, 0, 0]);
  const ihdrHead = pngChunkHead('IHDR', ihdrData.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(ihdrData, crc32(ihdrHead.subarray(4))), 0);
  // one IDAT chunk announcing all the random data (CRCs are not checked by the inspector)
  const head = Buffer.concat([signature, ihdrHead, ihdrData, crc, pngChunkHead('IDAT', totalData)]);
  const iend = Buffer.concat([Buffer.alloc(4), pngChunkHead('IEND', 0), Buffer.from([0xae, 0x42, 0x60, 0x82])]);
  return { head, tail: iend };
}

// ---- B. real files -------------------------------------------------------------------------

function* walk(dir, depth = 0) {
  if (depth > 24) return;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path, depth + 1);
    else if (entry.isFile()) yield path;
  }
}

function extensionOf(path) {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const dot = name.lastIndexOf('.');
  return dot <= 0 ? null : name.slice(dot + 1).toLowerCase();
}

async function judgeFile(path, ext) {
  const inspector = new ContentInspector(ext);
  const head = [];
  let headLength = 0;
  let verdict = null;
  for await (const chunk of createReadStream(path, { highWaterMark: CHUNK })) {
    if (headLength < SNIFF_BYTES) {
      head.push(chunk);
      headLength += chunk.length;
    }
    verdict ??= inspector.feed(chunk);
    if (verdict !== null) break;
  }
  const headBytes = Buffer.concat(head).subarray(0, SNIFF_BYTES);
  const size = statSync(path).size;
  const headVerdict = await checkContent(ext, headBytes, size <= SNIFF_BYTES);
  verdict ??= inspector.finish();
  return { headVerdict, verdict, size };
}

/** Every candidate file under the roots; photos and larger images are remembered as sources for C. */
function* walkAll(roots, sources) {
  for (const root of roots) {
    for (const path of walk(root)) {
      const ext = extensionOf(path);
      if (ext === null || !EXTENSIONS.has(ext)) continue;
      if (['png', 'jpg', 'jpeg', 'webp'].includes(ext)) {
        try {
          const size = statSync(path).size;
          if (size >= 20_000) sources.push({ path, size });
        } catch {
          // unreadable
        }
      }
      yield { path, ext };
    }
  }
}

async function judgeAll(candidates) {
  const perExt = {};
  const flagged = [];
  const headRefused = [];
  let files = 0;
  let bytes = 0;
  for (const { path, ext } of candidates) {
    let result;
    try {
      result = await judgeFile(path, ext);
    } catch {
      continue; // unreadable
    }
    files++;
    bytes += result.size;
    const stats = (perExt[ext] ??= { files: 0, bytes: 0, headRefused: 0, flagged: 0, flaggedOnly: 0 });
    stats.files++;
    stats.bytes += result.size;
    if (!result.headVerdict.ok) {
      stats.headRefused++;
      headRefused.push({ path, ext, reason: result.headVerdict.reason });
    }
    if (result.verdict !== null) {
      stats.flagged++;
      // flagged although the head check took it for a good file of its type
      if (result.headVerdict.ok) stats.flaggedOnly++;
      flagged.push({ path, ext, size: result.size, reason: result.verdict, headAccepted: result.headVerdict.ok });
    }
  }
  return { files, bytes, perExt, flagged, headRefused };
}

function report({ files, bytes, perExt, flagged, headRefused }) {
  console.log(`  ${fmt(files)} files, ${fmt(bytes)} bytes`);
  for (const [ext, s] of Object.entries(perExt).sort()) {
    console.log(
      `  .${ext.padEnd(5)} ${String(s.files).padStart(6)} files ${fmt(s.bytes).padStart(15)} bytes  inspector flagged ${s.flagged} (of which head-accepted ${s.flaggedOnly})  head check refused ${s.headRefused}`,
    );
  }
  console.log(`  flagged by the streaming inspector: ${flagged.length} (${flagged.filter((f) => f.headAccepted).length} of them accepted by the head check)`);
  for (const f of flagged) console.log(`    ${f.path}: ${f.reason}${f.headAccepted ? '' : '  [also refused by the head check: not a file of its type]'}`);
  console.log(`  refused by the head check (magic bytes; not this bench's subject, listed for context): ${headRefused.length}`);
  for (const f of headRefused.slice(0, 50)) console.log(`    ${f.path}: ${f.reason}`);
}

function run(command, args) {
  const r = spawnSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
  return r.status === 0;
}

/** Real encoder output made from the machine's images (section C). */
function generateCorpus(sources) {
  if (CONVERT === undefined || FFMPEG === undefined) return null;
  const dir = join(tmpdir(), 'ug-fp-corpus');
  mkdirSync(dir, { recursive: true });
  // the largest distinct images first: photos (wallpapers) and big illustrations
  const seen = new Set();
  const picked = sources
    .sort((a, b) => b.size - a.size)
    .filter((s) => {
      const key = s.path.slice(s.path.lastIndexOf('/') + 1);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .slice(0, Number(process.env.FP_GENERATE_N ?? 60));
  picked.forEach((source, i) => {
    const base = join(dir, `g${String(i).padStart(3, '0')}`);
    const src = `${source.path}[0]`;
    const image = (out, ...opts) => existsSync(out) || run(CONVERT, [src, '-resize', '1600x1600>', ...opts, out]);
    image(`${base}.jpg`, '-quality', '85');
    image(`${base}-progressive.jpg`, '-interlace', 'Plane', '-quality', '80');
    image(`${base}-comment.jpg`, '-set', 'comment', `Photo ${i}: <3 Holiday & friends (2024) -- made with ImageMagick`);
    image(`${base}.gif`, '-resize', '400x400>');
    image(`${base}.tiff`, '-resize', '600x600>');
    image(`${base}.webp`, '-quality', '80');
    image(`${base}.bmp`, '-resize', '800x800>');
    image(`${base}-text.png`, '-resize', '800x800>', '-set', 'comment', 'Created for the upload-guard false-positive bench');
    if (i < 20) {
      const still = `${base}.jpg`;
      const video = (out, ...opts) =>
        existsSync(out) ||
        run(FFMPEG, ['-hide_banner', '-loglevel', 'error', '-y', '-loop', '1', '-i', still, '-t', '4', '-vf', "scale='min(1280,iw)':-2,zoompan=z='zoom+0.002':d=100:s=1280x720,format=yuv420p", ...opts, out]);
      video(`${base}.mp4`, '-c:v', 'libx264', '-movflags', '+faststart');
      video(`${base}.mov`, '-c:v', 'libx264', '-f', 'mov');
      video(`${base}.mkv`, '-c:v', 'libx264');
      video(`${base}-mpeg4.mp4`, '-c:v', 'mpeg4', '-q:v', '4');
      const audio = (out, source) => existsSync(out) || run(FFMPEG, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', source, '-t', '3', out]);
      audio(`${base}-tone.wav`, `sine=frequency=${220 + 40 * i}`);
      audio(`${base}-noise.wav`, `anoisesrc=color=pink:amplitude=${(0.05 + i / 40).toFixed(2)}`);
      audio(`${base}.mp3`, `sine=frequency=${300 + 30 * i}`);
    }
  });
  return dir;
}

async function main() {
  const started = new Date();
  console.log(`content false positives — node ${process.version}`);
  console.log(`A. random data`);
  const random = [
    randomRun(`${RANDOM_GIB} GiB random as .mp4 (marker, program and appended-zip scans)`, 'mp4', Buffer.alloc(0), Math.floor(RANDOM_GIB * 1024 * MiB)),
  ];
  const png = pngWithRandomIdat(RANDOM_PNG_MIB * MiB);
  random.push(randomRun(`${RANDOM_PNG_MIB} MiB random as PNG IDAT (plus the PNG walk)`, 'png', png.head, RANDOM_PNG_MIB * MiB + png.head.length, png.tail));

  console.log(`B. real files under ${ROOTS.join(' ')}`);
  const sources = [];
  const realFiles = await judgeAll(walkAll(ROOTS, sources));
  report(realFiles);

  let generated = null;
  if (GENERATE) {
    const dir = generateCorpus(sources);
    if (dir !== null) {
      console.log(`C. generated media in ${dir}`);
      generated = await judgeAll(walkAll([dir], []));
      report(generated);
    } else {
      console.log('C. generated media: skipped (needs /usr/bin/convert-im6 and /usr/bin/ffmpeg: apt-get install imagemagick ffmpeg)');
    }
  }

  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  const out = new URL(`./results/content-fp-${started.toISOString().replaceAll(':', '-').replace('.', '-')}.json`, import.meta.url);
  writeFileSync(out, `${JSON.stringify({ started, node: process.version, random, realFiles: { roots: ROOTS, ...realFiles }, generated }, null, 2)}\n`);
  console.log(`results: ${out.pathname}`);
}

await main();
