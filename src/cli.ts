#!/usr/bin/env node
// Command line of SPEC.md: serve, check-config, inspect, demo.

import { readFileSync } from 'node:fs';
import { loadConfigFile, loadConfigText } from './config/load.js';
import { startDemoUploader } from './demo/demo-uploader.js';
import { applyRuntimeHeapFlags } from './lifecycle/heap-flags.js';
import { logEvent } from './observe/log.js';
import { serveWithLifecycle } from './lifecycle/serve.js';
import { GuardServer } from './server/guard-server.js';
import { inspectUpload } from './upload/offline-inspect.js';

const USAGE = `upload-guard [serve] [--config PATH]
upload-guard check-config --config PATH
upload-guard inspect --config PATH --route NAME FILE...
upload-guard demo [--port 8080]
upload-guard --version | --help`;

function option(args: string[], name: string): string | undefined {
  const at = args.indexOf(name);
  return at === -1 ? undefined : args[at + 1];
}

function configPath(args: string[]): string {
  return option(args, '--config') ?? process.env.UPLOAD_GUARD_CONFIG ?? 'config/default.yaml';
}

function checkConfig(args: string[]): number {
  const result = loadConfigFile(configPath(args));
  if ('errors' in result) {
    for (const line of result.errors) console.error(line);
    return 1;
  }
  console.log(`${result.config.source}: ok`);
  return 0;
}

/** Offline verdict per file: the same name and content checks an upload on that route gets. */
async function inspect(args: string[]): Promise<number> {
  const result = loadConfigFile(configPath(args));
  if ('errors' in result) {
    for (const line of result.errors) console.error(line);
    return 1;
  }
  const routeName = option(args, '--route');
  const route = result.config.routes.find((r) => r.name === routeName);
  if (!route) {
    console.error(`no route named ${JSON.stringify(routeName)}`);
    return 1;
  }
  const files = args.filter((a, i) => !a.startsWith('--') && !['--config', '--route'].includes(args[i - 1] ?? '') && a !== 'inspect');
  const policy = route.policy;
  let rejected = 0;
  for (const file of files) {
    // the same name rules and content inspection, in the same order, as an upload on that route
    const verdict = await inspectUpload(policy, file);
    if (!verdict.ok) rejected++;
    console.log(JSON.stringify({ file, verdict: verdict.ok ? 'accepted' : 'rejected', ...verdict }));
  }
  return rejected > 0 ? 1 : 0;
}

async function serve(args: string[]): Promise<number> {
  applyRuntimeHeapFlags();
  const path = configPath(args);
  const result = loadConfigFile(path);
  if ('errors' in result) {
    for (const line of result.errors) console.error(line);
    return 1;
  }
  await serveWithLifecycle(result.config, path);
  return 0;
}

/** The guard in front of a bundled uploader that stores to a temp dir: curl at it at once. */
async function demo(args: string[]): Promise<number> {
  applyRuntimeHeapFlags();
  const uploader = await startDemoUploader();
  const port = option(args, '--port') ?? '8080';
  const result = loadConfigText(
    `listen: 127.0.0.1:${port}\nadmin: false\nupstream: { url: "http://127.0.0.1:${uploader.port}" }\n` +
      'routes: [{ name: upload, path: /upload, methods: [POST], policy: images }]\n' +
      'policies: { images: { allow: [png, jpg, jpeg, gif, mp4, mov, pdf], maxFileSize: 50MiB, maxRequestSize: 50MiB } }\n',
    '<demo>',
  );
  if ('errors' in result) {
    for (const line of result.errors) console.error(line);
    return 1;
  }
  const guard = new GuardServer(result.config);
  const address = await guard.listen();
  logEvent('demo', {
    listen: `${address.host}:${address.port}`,
    uploads: uploader.dir,
    try: `curl -F file=@picture.png http://127.0.0.1:${address.port}/upload`,
  });
  return 0;
}

async function main(args: string[]): Promise<number> {
  const command = args[0] ?? 'serve';
  if (command === '--version') {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    console.log(pkg.version);
    return 0;
  }
  if (command === '--help' || command === '-h') {
    console.log(USAGE);
    return 0;
  }
  if (command === 'check-config') return checkConfig(args);
  if (command === 'inspect') return inspect(args);
  if (command === 'serve' || command === '--config') return serve(args);
  if (command === 'demo') return demo(args);
  console.error(`upload-guard: '${command}' is not available in this build\n${USAGE}`);
  return 2;
}

process.exitCode = await main(process.argv.slice(2));
