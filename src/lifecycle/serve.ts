// `upload-guard serve`: the guard, its admin listener, and what the process does on signals.
// With `workers` > 1 the same runs split over processes: src/cluster/primary.ts and worker.ts.
// - SIGTERM/SIGINT: drain. /readyz fails at once, the listener stops accepting, uploads in flight
//   get drainTimeout to finish, then exit 0. A second signal exits at once (exit 1).
// - SIGHUP, or a change of the config file: reload (config-reloader.ts). An invalid config is
//   refused and the running one keeps serving; the result is logged and counted.

import cluster from 'node:cluster';
import { runPrimary } from '../cluster/primary.js';
import { runWorker } from '../cluster/worker.js';
import type { CompiledConfig } from '../config/types.js';
import { logEvent } from '../observe/log.js';
import { GuardMetrics } from '../observe/metrics.js';
import { StatusBoard } from '../observe/status-board.js';
import { GuardServer } from '../server/guard-server.js';
import { missingHeapFlags } from './heap-flags.js';
import { reloadOnSignalAndChange, startAdmin } from './operations.js';

export async function serveWithLifecycle(config: CompiledConfig, configPath: string): Promise<void> {
  if (cluster.isWorker) return runWorker(config, configPath);
  if (config.workers > 1) return runPrimary(config, configPath);
  const metrics = new GuardMetrics({ routes: config.routes.map((r) => r.name) });
  const board = new StatusBoard();
  const guard = new GuardServer(config, { observers: [metrics, board] });
  const address = await guard.listen();
  logEvent('listening', { listen: `${address.host}:${address.port}`, upstream: config.upstream.url.origin });
  const missing = missingHeapFlags(process.execArgv);
  if (missing.length > 0) {
    logEvent('started without the recommended heap flags: large uploads can run at half speed', { missing: missing.join(' ') });
  }
  const admin = await startAdmin(config, metrics, board, () => guard.limiterStats());

  let current = config;
  const reloader = reloadOnSignalAndChange(configPath, metrics, async (next) => {
    if (next.listen.host !== current.listen.host || next.listen.port !== current.listen.port) {
      logEvent('config reload: listen changes need a restart; keeping the current listener', { listen: current.listen });
    }
    await guard.applyConfig(next);
    admin?.setConfig(next);
    current = next;
  });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      logEvent('second signal: exiting without waiting', { signal, inFlight: guard.inFlightRequests });
      process.exit(1);
    }
    stopping = true;
    reloader.close();
    admin?.setDraining(true);
    logEvent('draining', { signal, inFlight: guard.inFlightRequests, drainTimeoutMs: current.drainTimeoutMs });
    void guard
      .drain()
      .then(async (finished) => {
        logEvent(finished ? 'drained' : 'drain timed out; closed the remaining connections', { signal });
        await admin?.close();
        process.exit(0);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
