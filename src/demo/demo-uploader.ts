// A minimal uploader for `upload-guard demo`: stores every file it receives in a temp dir, so a
// newcomer can curl an upload through the guard within a minute, with no Flask app at hand.

import { createWriteStream, mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import busboy from 'busboy';

export interface DemoUploader {
  server: Server;
  port: number;
  dir: string;
}

export async function startDemoUploader(): Promise<DemoUploader> {
  const dir = mkdtempSync(join(tmpdir(), 'upload-guard-demo-'));
  const server = createServer((req, res) => {
    if (req.method !== 'POST') {
      res.end(`upload-guard demo uploader: POST multipart to /upload; files land in ${dir}\n`);
      return;
    }
    const stored: string[] = [];
    const parser = busboy({ headers: req.headers });
    parser.on('file', (_field, stream, info) => {
      // the guard already rewrote the name; basename is belt and braces for direct callers
      const name = basename(info.filename || 'unnamed');
      stored.push(name);
      stream.pipe(createWriteStream(join(dir, name)));
    });
    parser.on('close', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ message: 'File uploaded', stored, dir }));
    });
    parser.on('error', () => {
      res.statusCode = 400;
      res.end('{"error":"bad upload"}');
    });
    req.pipe(parser);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { server, dir, port: typeof address === 'object' && address ? address.port : 0 };
}
