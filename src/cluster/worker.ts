// One worker of a multi-process guard: serves the public port (shared by node:cluster), asks the
// primary for rate-limit decisions (memory store) or Redis directly, reports what it observed,
// and reloads or drains when the primary says so. Signals are the primary's business: a Ctrl-C
// reaches the whole process group, and a worker must not die before it drained.

import { loadConfigFile } from '../config/load.js';
import type { CompiledConfig } from '../config/types.js';
import { GuardServer } from '../server/guard-server.js';
import { ForwardingObserver } from './forwarding-observer.js';
import { isPrimaryMessage, type WorkerMessage } from './messages.js';
import { PrimaryStore } from './primary-store.js';

export async function runWorker(config: CompiledConfig, configPath: string): Promise<void> {
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => undefined);
  const observer = new ForwardingObserver();
  const store = config.rateLimitStore.kind === 'memory' ? new PrimaryStore() : undefined;
  const guard = new GuardServer(config, { observers: [observer], ...(store ? { store } : {}) });
  const { port } = await guard.listen();
  send({ ug: 'listening', port });

  process.on('message', (message: unknown) => {
    if (!isPrimaryMessage(message)) return;
    if (message.ug === 'reload') {
      const loaded = loadConfigFile(configPath);
      if ('errors' in loaded) {
        send({ ug: 'reloaded', result: 'failure', errors: loaded.errors });
        return;
      }
      guard.applyConfig(loaded.config).then(
        () => send({ ug: 'reloaded', result: 'success' }),
        (err: unknown) => send({ ug: 'reloaded', result: 'failure', errors: [String(err)] }),
      );
    } else if (message.ug === 'drain') {
      void guard.drain().then(async () => {
        observer.close();
        await store?.close();
        process.disconnect();
        process.exit(0);
      });
    }
  });
}

function send(message: WorkerMessage): void {
  if (process.connected) process.send!(message);
}
