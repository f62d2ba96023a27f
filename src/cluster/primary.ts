// The primary of a multi-process guard (config `workers` > 1): forks the workers that serve the
// public port, holds the shared in-memory rate-limit store, owns the metrics, the status page
// and the admin listener, and coordinates reloads and the drain.
// - SIGTERM/SIGINT: /readyz fails at once, every worker drains (drainTimeout), exit 0 when all
//   are gone; a second signal kills the workers and exits 1.
// - SIGHUP or a config file change: the primary validates the file; a valid one is reloaded by
//   every worker, an invalid one is refused and counted.
// - A worker that dies while not draining is replaced.

import cluster, { type Worker } from 'node:cluster';
import { MemoryStore } from '../admission/memory-store.js';
import { missingHeapFlags } from '../lifecycle/heap-flags.js';
import type { CompiledConfig } from '../config/types.js';
import { reloadOnSignalAndChange, startAdmin } from '../lifecycle/operations.js';
import { logEvent } from '../observe/log.js';
import { GuardMetrics } from '../observe/metrics.js';
import { StatusBoard } from '../observe/status-board.js';
import { isWorkerMessage, type PrimaryMessage, type WorkerMessage } from './messages.js';
import { answerStoreCall } from './primary-store.js';

export async function runPrimary(config: CompiledConfig, configPath: string): Promise<void> {
  const metrics = new GuardMetrics({ routes: config.routes.map((r) => r.name) });
  const board = new StatusBoard();
  const store = config.rateLimitStore.kind === 'memory' ? new MemoryStore({ maxTrackedClients: config.rateLimitStoreOptions.maxTrackedClients }) : null;
  let draining = false;
  let announced = false;
  const listening = new Set<number>();

  const onMessage = (worker: Worker, message: WorkerMessage): void => {
    switch (message.ug) {
      case 'store':
        if (store !== null) worker.send(answerStoreCall(store, message.id, message.call) satisfies PrimaryMessage);
        break;
      case 'observed':
        for (const route of message.started) {
          metrics.started(route);
          board.started(route);
        }
        for (const request of message.finished) {
          metrics.finished(request);
          board.finished(request);
        }
        if (message.storageFree !== null) metrics.storageFree(message.storageFree);
        break;
      case 'reloaded':
        if (message.result === 'failure') logEvent('worker reload failed', { worker: worker.id, errors: message.errors });
        break;
      case 'listening':
        listening.add(worker.id);
        if (!announced && listening.size === config.workers) {
          announced = true;
          logEvent('listening', { listen: `${config.listen.host}:${message.port}`, upstream: config.upstream.url.origin, workers: config.workers });
        }
        break;
    }
  };

  // Workers get the heap flags even when the primary was started without them (heap-flags.ts).
  cluster.setupPrimary({ execArgv: [...process.execArgv, ...missingHeapFlags(process.execArgv)] });
  const fork = (): void => {
    const worker = cluster.fork();
    worker.on('message', (message: unknown) => {
      if (isWorkerMessage(message)) onMessage(worker, message);
    });
  };
  cluster.on('exit', (worker, code, signal) => {
    listening.delete(worker.id);
    if (draining) {
      if (Object.keys(cluster.workers ?? {}).length === 0) void finish();
      return;
    }
    logEvent('worker died; starting another', { worker: worker.id, code, signal });
    fork();
  });
  for (let i = 0; i < config.workers; i++) fork();

  const admin = await startAdmin(config, metrics, board, () => store?.stats() ?? {});

  const broadcast = (message: PrimaryMessage): void => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.send(message);
  };
  const reloader = reloadOnSignalAndChange(
    configPath,
    metrics,
    async (next) => {
      if (next.workers !== config.workers) logEvent('config reload: a new worker count needs a restart', { workers: config.workers });
      broadcast({ ug: 'reload' });
      admin?.setConfig(next);
    },
    { workers: config.workers },
  );

  const finish = async (): Promise<void> => {
    logEvent('drained', { workers: config.workers });
    await admin?.close();
    process.exit(0);
  };
  const stop = (signal: string): void => {
    if (draining) {
      logEvent('second signal: exiting without waiting', { signal });
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
      process.exit(1);
    }
    draining = true;
    reloader.close();
    admin?.setDraining(true);
    logEvent('draining', { signal, workers: Object.keys(cluster.workers ?? {}).length, drainTimeoutMs: config.drainTimeoutMs });
    broadcast({ ug: 'drain' });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
