// The test helpers are test code too: the samples must be what decoders and file-type say they
// are, the multipart builder and the strict parser must agree, and the recording upstream and
// raw-socket client must report what really went over the wire.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { describe, test } from 'node:test';
import { crc32, inflateSync } from 'node:zlib';
import { fileTypeFromBuffer } from 'file-type';
import { buildMultipart, buildMultipartStream, parseMultipart } from '../helpers/multipart-builder.js';
import { rawRequest } from '../helpers/raw-http.js';
import { startRecordingUpstream } from '../helpers/recording-upstream.js';
import { MIN_PNG_SIZE, gifBytes, jpegBytes, largePngStream, movBytes, mp4Bytes, pdfBytes, pngBytes, sha256 } from '../helpers/samples.js';

/** Walks a PNG's chunks, checking every length and CRC; returns the chunk types in order. */
function pngChunkTypes(png: Buffer): string[] {
  assert.deepEqual(png.subarray(0, 8), Buffer.from('89504e470d0a1a0a', 'hex'));
  const types: string[] = [];
  let pos = 8;
  while (pos < png.length) {
    const length = png.readUInt32BE(pos);
    const type = png.subarray(pos + 4, pos + 8).toString('latin1');
    const crc = png.readUInt32BE(pos + 8 + length);
    assert.equal(crc, crc32(png.subarray(pos + 4, pos + 8 + length)), `CRC of ${type} at ${pos}`);
    if (type === 'IDAT') assert.deepEqual(inflateSync(png.subarray(pos + 8, pos + 8 + length)), Buffer.from([0, 0x80]));
    types.push(type);
    pos += 12 + length;
  }
  assert.equal(pos, png.length);
  return types;
}

describe('samples', () => {
  test('pngBytes is a valid PNG that file-type recognises, padded in ancillary chunks', async () => {
    assert.deepEqual(pngChunkTypes(pngBytes()), ['IHDR', 'IDAT', 'IEND']);
    assert.equal(pngBytes().length, MIN_PNG_SIZE);
    const padded = pngBytes(100_000);
    assert.equal(padded.length, MIN_PNG_SIZE + 100_000 + 12);
    assert.deepEqual(pngChunkTypes(padded), ['IHDR', 'IDAT', 'ugPd', 'IEND']);
    assert.deepEqual(await fileTypeFromBuffer(pngBytes()), { ext: 'png', mime: 'image/png' });
    assert.deepEqual(await fileTypeFromBuffer(padded), { ext: 'png', mime: 'image/png' });
  });

  test('jpeg, gif, mp4, mov and pdf samples are recognised by file-type', async () => {
    assert.deepEqual(await fileTypeFromBuffer(jpegBytes()), { ext: 'jpg', mime: 'image/jpeg' });
    assert.deepEqual(await fileTypeFromBuffer(gifBytes()), { ext: 'gif', mime: 'image/gif' });
    assert.deepEqual(await fileTypeFromBuffer(mp4Bytes()), { ext: 'mp4', mime: 'video/mp4' });
    assert.deepEqual(await fileTypeFromBuffer(movBytes()), { ext: 'mov', mime: 'video/quicktime' });
    assert.deepEqual(await fileTypeFromBuffer(pdfBytes()), { ext: 'pdf', mime: 'application/pdf' });
  });

  test('largePngStream emits exactly totalBytes of a valid PNG and reports its sha256', async () => {
    for (const total of [MIN_PNG_SIZE, MIN_PNG_SIZE + 12, MIN_PNG_SIZE + 13, 3 * 1024 * 1024 + 7, 16 * 1024 * 1024 + MIN_PNG_SIZE + 12 + 5]) {
      const large = largePngStream(total, { pieceSize: 64 * 1024 });
      assert.throws(() => large.digest(), /before the stream emitted/);
      const chunks: Buffer[] = [];
      for await (const chunk of large.stream) chunks.push(chunk as Buffer);
      const png = Buffer.concat(chunks);
      assert.equal(png.length, total);
      assert.equal(large.digest(), createHash('sha256').update(png).digest('hex'));
      const types = pngChunkTypes(png);
      assert.deepEqual([types[0], types[1], types.at(-1)], ['IHDR', 'IDAT', 'IEND']);
      assert.deepEqual(await fileTypeFromBuffer(png.subarray(0, 4100)), { ext: 'png', mime: 'image/png' });
    }
    assert.throws(() => largePngStream(MIN_PNG_SIZE + 5), RangeError);
  });
});

describe('multipart builder and strict parser', () => {
  test('buildMultipart -> parseMultipart round trip keeps names, filenames, headers and bytes', () => {
    const png = pngBytes(5000);
    const binary = Buffer.from([0x0d, 0x0a, 0x2d, 0x2d, 0x00, 0xff, 0x0d, 0x0a]); // CRLF-- inside data
    const built = buildMultipart([
      { name: 'title', data: 'héllo\r\nworld' },
      { name: 'file', filename: 'My cat.png', contentType: 'image/png', data: png },
      { name: 'raw', filename: 'x.bin', data: binary, extraHeaders: ['X-Extra: 1'] },
      { name: 'empty', data: '' },
    ]);
    assert.match(built.contentType, /^multipart\/form-data; boundary=----ug-test-[0-9a-f]{24}$/);
    const parts = parseMultipart(built.body, built.contentType);
    assert.equal(parts.length, 4);
    assert.deepEqual(parts.map((p) => [p.name, p.filename]), [['title', undefined], ['file', 'My cat.png'], ['raw', 'x.bin'], ['empty', undefined]]);
    assert.equal(parts[0]!.data.toString('utf8'), 'héllo\r\nworld');
    assert.deepEqual(parts[1]!.data, png);
    assert.equal(parts[1]!.headers['content-type'], 'image/png');
    assert.deepEqual(parts[2]!.data, binary);
    assert.deepEqual(parts[2]!.headers, { 'content-disposition': 'form-data; name="raw"; filename="x.bin"', 'content-type': 'application/octet-stream', 'x-extra': '1' });
    assert.equal(parts[3]!.data.length, 0);
    assert.deepEqual(parseMultipart(buildMultipart([], 'b').body, 'multipart/form-data; boundary="b"'), []);
  });

  test('parseMultipart refuses what is not canonical CRLF framing', () => {
    const ok = 'multipart/form-data; boundary=B';
    const bad: Array<[string, string, RegExp]> = [
      ['LF-only', '--B\nContent-Disposition: form-data; name="a"\n\nv\n--B--\n', /not followed by CRLF/],
      ['preamble', 'junk\r\n--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--B--\r\n', /does not start/],
      ['no close', '--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nv', /not closed/],
      ['epilogue', '--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--B--\r\nextra', /after the close/],
      ['attachment', '--B\r\nContent-Disposition: attachment; name="a"\r\n\r\nv\r\n--B--\r\n', /non-canonical/],
      ['repeated header', '--B\r\nContent-Disposition: form-data; name="a"\r\nContent-Disposition: form-data; name="b"\r\n\r\nv\r\n--B--\r\n', /repeated/],
      ['no disposition', '--B\r\nContent-Type: text/plain\r\n\r\nv\r\n--B--\r\n', /without Content-Disposition/],
    ];
    for (const [why, body, message] of bad) assert.throws(() => parseMultipart(Buffer.from(body), ok), message, why);
    assert.throws(() => parseMultipart(Buffer.from('--B--\r\n'), 'text/plain'), /no boundary/);
  });

  test('buildMultipartStream produces the same bytes as buildMultipart, with its length', async () => {
    const png = pngBytes(70_000);
    const parts = [{ name: 'a', data: 'v' }, { name: 'file', filename: 'a.png', contentType: 'image/png', data: png }];
    const whole = buildMultipart(parts, 'XyZ');
    const large = largePngStream(MIN_PNG_SIZE + 12 + 1000);
    const streamed = buildMultipartStream([...parts, { name: 'big', filename: 'big.png', contentType: 'image/png', data: large.stream, size: large.size }], 'XyZ');
    const chunks: Buffer[] = [];
    for await (const chunk of streamed.stream) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    assert.equal(body.length, streamed.length);
    const parsed = parseMultipart(body, streamed.contentType);
    assert.deepEqual(parsed.slice(0, 2), parseMultipart(whole.body, whole.contentType));
    assert.equal(sha256(parsed[2]!.data), large.digest());
  });
});

describe('recording upstream and raw requests', () => {
  test('records method, target, raw headers and body; answers with the byte count', async () => {
    const upstream = await startRecordingUpstream();
    try {
      const built = buildMultipart([{ name: 'file', filename: 'a.png', contentType: 'image/png', data: pngBytes(1000) }]);
      const head = `POST /upload?x=1 HTTP/1.1\r\nHost: up\r\nX-Mixed-Case: Yes\r\nContent-Type: ${built.contentType}\r\nContent-Length: ${built.body.length}\r\n\r\n`;
      const half = Math.floor(built.body.length / 2);
      const res = await rawRequest(upstream.port, [Buffer.from(head), built.body.subarray(0, half), built.body.subarray(half)], { delayBetweenMs: 20 });
      assert.equal(res.status, 200);
      assert.deepEqual(JSON.parse(res.body.toString()), { ok: true, received: built.body.length });
      assert.equal(res.complete, true);
      const [got] = await upstream.waitForRequests(1);
      assert.equal(got!.method, 'POST');
      assert.equal(got!.url, '/upload?x=1');
      assert.deepEqual(got!.rawHeaders[1], ['X-Mixed-Case', 'Yes']);
      assert.deepEqual(got!.body, built.body);
      assert.equal(got!.sha256, sha256(built.body));
      assert.equal(got!.complete, true);
      assert.equal(got!.aborted, false);
      assert.equal(parseMultipart(got!.body!, String(got!.headers['content-type']))[0]!.filename, 'a.png');
    } finally {
      await upstream.stop();
    }
  });

  test('large bodies are kept as sha256 + length only; chunked bodies are recorded decoded', async () => {
    const upstream = await startRecordingUpstream({ keepBodiesUpTo: 1000 });
    try {
      const body = pngBytes(5000);
      const chunked = `${body.length.toString(16)}\r\n`;
      const res = await rawRequest(upstream.port, [Buffer.from(`PUT /x HTTP/1.1\r\nHost: up\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`), body, Buffer.from('\r\n0\r\n\r\n')]);
      assert.equal(res.status, 200);
      const [got] = await upstream.waitForRequests(1);
      assert.equal(got!.body, null);
      assert.equal(got!.bodyLength, body.length);
      assert.equal(got!.sha256, sha256(body));
    } finally {
      await upstream.stop();
    }
  });

  test('a body cut off mid-way is recorded as aborted', async () => {
    const upstream = await startRecordingUpstream();
    try {
      const head = Buffer.from('POST /upload HTTP/1.1\r\nHost: up\r\nContent-Length: 100\r\n\r\n0123456789');
      // The client gives up (timeout) and closes its socket.
      const gaveUp = await rawRequest(upstream.port, head, { timeoutMs: 200 });
      assert.equal(gaveUp.timedOut, true);
      // The client half-closes: Node's parser sees EOF mid-body and the upstream can still answer 400.
      const halfClosed = await rawRequest(upstream.port, head, { halfClose: true, timeoutMs: 2000 });
      assert.equal(halfClosed.status, 400);
      assert.deepEqual(upstream.clientErrors.map((e) => e.code), ['HPE_INVALID_EOF_STATE', 'HPE_INVALID_EOF_STATE']);
      for (const got of await upstream.waitForRequests(2)) {
        assert.equal(got.complete, false);
        assert.equal(got.aborted, true);
        assert.equal(got.bodyLength, 10);
        assert.deepEqual(got.body, Buffer.from('0123456789'));
        assert.equal(got.sha256, sha256(Buffer.from('0123456789')));
      }
    } finally {
      await upstream.stop();
    }
  });

  test('behaviours: status + delay, hang, destroy, early answer', async () => {
    const upstream = await startRecordingUpstream({ behaviour: { status: 503, body: 'busy', delayMs: 150 } });
    const post = (): Buffer => Buffer.from('POST /u HTTP/1.1\r\nHost: up\r\nContent-Length: 3\r\n\r\nabc');
    try {
      const started = Date.now();
      const slow = await rawRequest(upstream.port, post());
      assert.equal(slow.status, 503);
      assert.equal(slow.body.toString(), 'busy');
      assert.ok(Date.now() - started >= 140, 'delayed');

      upstream.setBehaviour({ mode: 'hang' });
      const hung = await rawRequest(upstream.port, post(), { timeoutMs: 300 });
      assert.equal(hung.timedOut, true);
      assert.equal(hung.status, 0);

      upstream.setBehaviour({ mode: 'destroy' });
      const destroyed = await rawRequest(upstream.port, post());
      assert.equal(destroyed.closedByServer, true);
      assert.equal(destroyed.status, 0);

      upstream.setBehaviour((r) => (r.url === '/early' ? { mode: 'early', status: 413 } : {}));
      const early = await rawRequest(upstream.port, [Buffer.from('POST /early HTTP/1.1\r\nHost: up\r\nContent-Length: 6\r\n\r\nabc'), Buffer.from('def')], { delayBetweenMs: 100, stopWritingOnResponse: true, timeoutMs: 2000 });
      assert.equal(early.status, 413);
      assert.equal(early.bytesWritten, Buffer.byteLength('POST /early HTTP/1.1\r\nHost: up\r\nContent-Length: 6\r\n\r\nabc'));
      assert.equal(upstream.requests.length, 4);
      assert.deepEqual(upstream.requests.slice(0, 3).map((r) => r.complete), [true, true, true]);
    } finally {
      await upstream.stop();
    }
  });

  test('destroy-immediately makes an HTTP client see a socket error; connections are counted', async () => {
    const upstream = await startRecordingUpstream({ behaviour: { mode: 'destroy-immediately' } });
    try {
      const error = await new Promise<NodeJS.ErrnoException>((resolve, reject) => {
        const req = request(`${upstream.url}/u`, { method: 'POST' }, () => reject(new Error('got a response')));
        req.on('error', resolve);
        req.end('x');
      });
      assert.match(String(error.code), /ECONNRESET|EPIPE/);
      assert.equal(upstream.connections, 1);
    } finally {
      await upstream.stop();
    }
  });

  test('rawRequest reports a server that answers Connection: close and closes while the client still sends', async () => {
    const upstream = await startRecordingUpstream({ behaviour: { mode: 'early', status: 400, headers: { connection: 'close' }, body: 'no' } });
    try {
      const res = await rawRequest(upstream.port, [Buffer.from('POST /u HTTP/1.1\r\nHost: up\r\nContent-Length: 5\r\n\r\n'), Buffer.from('abcde')], { delayBetweenMs: 50, timeoutMs: 2000 });
      assert.equal(res.status, 400);
      assert.equal(res.headers.connection, 'close');
      assert.equal(res.body.toString(), 'no');
      assert.equal(res.closedByServer, true);
      assert.equal(res.timedOut, false);
    } finally {
      await upstream.stop();
    }
  });
});
