// The attack corpus (test/fixtures/attack-corpus.ts) through the guard (in-process GuardServer) in
// front of the REAL Flask uploader (examples/flask-uploader/app.py, Debian's Werkzeug). Each
// attack gets the answer its table row expects; afterwards the Flask upload folder must hold no
// dangerous file: no name with a non-allowed or inner executable extension, no content with
// script, PHP, JSP/ASP, HTML or SVG markers, no PDF action, no macro, no program.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfigText } from '../../src/config/load.ts';
import { GuardServer } from '../../src/server/guard-server.ts';
import { ATTACKS, type Attack } from '../fixtures/attack-corpus.ts';
import { startFlaskUploader, type FlaskUploader } from '../helpers/flask-app.ts';
import { buildMultipart } from '../helpers/multipart-builder.ts';
import { rawRequest } from '../helpers/raw-http.ts';

// The seed app's whitelist (app.py ALLOWED_EXTENSIONS), enforced by the guard as well.
const ALLOWED = ['png', 'jpg', 'jpeg', 'gif', 'mp4', 'mov', 'pdf', 'docx'];

// Independent of the guard's code: what must never be in the upload folder.
const INNER_EXECUTABLE = /\.(php\d?|phtml|pht|phar|asp|aspx|asa|cer|jsp|jspx|shtml|cgi|pl|py|sh|exe|html?|svg|htaccess)(?=[.;:%\s]|$)/i;
const ACTIVE_MARKERS = /<\?php|<\?=|<\?\s|<%|<script|<svg|<html|<!doctype html|<iframe|__halt_compiler|javascript:/i;
const PDF_ACTIONS = /\/(JavaScript|JS|Launch|RichMedia|XFA)\b|\/J#/;

let uploads = '';
let flask: FlaskUploader;
let guard: GuardServer;
let port = 0;

before(async () => {
  uploads = mkdtempSync(join(tmpdir(), 'ug-attack-corpus-'));
  flask = await startFlaskUploader({ uploadDir: uploads });
  const loaded = loadConfigText(`
listen: 127.0.0.1:0
admin: false
upstream: { url: "${flask.url}" }
routes: [{ name: upload, path: /upload, methods: [POST], policy: seed }]
policies:
  seed: { allow: [${ALLOWED.join(', ')}], maxFileSize: 20MiB, maxRequestSize: 40MiB }
`);
  assert.ok('config' in loaded, JSON.stringify(loaded));
  guard = new GuardServer(loaded.config);
  port = (await guard.listen()).port;
});

after(async () => {
  await guard?.close();
  await flask?.stop();
  if (uploads !== '') rmSync(uploads, { recursive: true, force: true });
});

interface Answer {
  status: number;
  json: Record<string, unknown>;
}

async function send(attack: Attack): Promise<Answer> {
  let contentTypes: string[];
  let body: Buffer;
  if (attack.file !== undefined) {
    const built = buildMultipart([{ name: 'file', filename: attack.file.filename, data: attack.file.data, contentType: attack.file.contentType ?? 'application/octet-stream' }]);
    contentTypes = [built.contentType];
    body = built.body;
  } else {
    contentTypes = attack.raw!.contentTypes;
    body = attack.raw!.body;
  }
  const head = [
    'POST /upload HTTP/1.1',
    'Host: guard.test',
    ...contentTypes.map((type) => `Content-Type: ${type}`),
    `Content-Length: ${body.length}`,
    'Connection: close',
    '',
    '',
  ].join('\r\n');
  // filenames are written as UTF-8, as browsers do
  const res = await rawRequest(port, Buffer.concat([Buffer.from(head, 'utf8'), body]), { timeoutMs: 60_000, stopWritingOnResponse: true });
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
  } catch {
    json = { raw: res.body.toString('latin1').slice(0, 200) };
  }
  return { status: res.status, json };
}

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out;
}

const answers = new Map<string, Answer>();

describe('attack corpus through the guard in front of the real Flask uploader', { timeout: 600_000 }, () => {
  test('the corpus has at least 50 named attacks, each with a source', () => {
    assert.ok(ATTACKS.length >= 50, `${ATTACKS.length} attacks`);
    const ids = new Set<string>();
    for (const attack of ATTACKS) {
      assert.ok(!ids.has(attack.id), `duplicate id ${attack.id}`);
      ids.add(attack.id);
      assert.ok(attack.source.length > 5 && attack.title.length > 5, attack.id);
      assert.ok((attack.file === undefined) !== (attack.raw === undefined), attack.id);
    }
  });

  test('a clean control upload is stored (the harness can store files at all)', async () => {
    const answer = await send({ id: 'control', title: 'control', source: 'control', file: { filename: 'holiday photo.png', data: ATTACKS.find((a) => a.id === 'name-traversal')!.file!.data }, expect: { stored: 'holiday_photo.png' } });
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    assert.equal(answer.json.filename, 'holiday_photo.png');
  });

  for (const attack of ATTACKS) {
    test(`${attack.id}: ${attack.title}  [${attack.source}]`, async () => {
      const answer = await send(attack);
      answers.set(attack.id, answer);
      const expect = attack.expect;
      const said = JSON.stringify(answer.json);
      if (expect === 'refused-or-canonical') {
        // the guard refused it, or Flask refused what the guard forwarded, or Flask stored a
        // canonical file (checked by the sweep below)
        if (answer.status === 200) assert.equal(typeof answer.json.filename, 'string', said);
        else assert.ok(answer.status === 400 || answer.status === 413, `status ${answer.status}: ${said}`);
      } else if ('code' in expect) {
        assert.equal(answer.json.code, expect.code, said);
        if (expect.code === 'EXTENSION_NOT_ALLOWED') assert.equal(answer.json.error, 'Invalid file type', said);
        if (expect.why !== undefined) assert.match(String(answer.json.reason ?? answer.json.error), expect.why, said);
      } else {
        assert.equal(answer.status, 200, said);
        assert.equal(answer.json.filename, expect.stored, said);
      }
    });
  }

  test('afterwards the upload folder holds no dangerous file', () => {
    const stored = filesUnder(uploads);
    const report: string[] = [];
    for (const path of stored) {
      const name = relative(uploads, path);
      const base = name.slice(name.lastIndexOf('/') + 1);
      const ext = base.includes('.') ? base.slice(base.lastIndexOf('.') + 1).toLowerCase() : '';
      const bytes = readFileSync(path);
      const text = bytes.toString('latin1');
      if (!ALLOWED.includes(ext)) report.push(`${name}: extension .${ext} not allowed`);
      if (INNER_EXECUTABLE.test(base.slice(0, base.lastIndexOf('.')))) report.push(`${name}: executable inner extension`);
      if (ACTIVE_MARKERS.test(text)) report.push(`${name}: active content ${ACTIVE_MARKERS.exec(text)![0]}`);
      if (ext === 'pdf' && PDF_ACTIONS.test(text)) report.push(`${name}: PDF action ${PDF_ACTIONS.exec(text)![0]}`);
      if (/vbaProject|macroEnabled|Basic\//i.test(text)) report.push(`${name}: macro`);
      if (text.includes('\x7fELF') || /PE\0\0/.test(text)) report.push(`${name}: program header`);
      if (statSync(path).size === 0) report.push(`${name}: empty`);
    }
    assert.deepEqual(report, [], `stored files:\n${stored.map((p) => relative(uploads, p)).join('\n')}`);
    // exactly the files the corpus expects to be stored, plus what canonicalised differentials stored
    const expected = new Set(['images/holiday_photo.png', ...ATTACKS.flatMap((a) => (typeof a.expect === 'object' && 'stored' in a.expect ? [`images/${a.expect.stored}`] : []))]);
    for (const attack of ATTACKS) {
      const answer = answers.get(attack.id);
      if (attack.expect === 'refused-or-canonical' && answer?.status === 200) expected.add(`images/${String(answer.json.filename)}`);
    }
    assert.deepEqual(new Set(stored.map((p) => relative(uploads, p))), expected);
  });

  test('what each multipart-level trick got (diagnostic)', () => {
    const lines = ATTACKS.filter((a) => a.expect === 'refused-or-canonical').map((a) => {
      const answer = answers.get(a.id);
      return `${a.id}: ${answer?.status} ${answer?.json.code ?? answer?.json.filename ?? answer?.json.error}`;
    });
    // every one of them was either refused or stored under a name on the whitelist
    for (const line of lines) assert.match(line, /: (400|413) |: 200 [\w.-]+\.(png|jpg|jpeg|gif|mp4|mov|pdf|docx)$/, line);
    console.log(lines.join('\n'));
  });
});
