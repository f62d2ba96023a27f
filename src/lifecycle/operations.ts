// What a single-process guard and the primary of a multi-process one set up alike: the admin
// listener, and reload on SIGHUP or a change of the config file, logged and counted the same way.

import type { CompiledConfig } from '../config/types.js';
import { logEvent } from '../observe/log.js';
import type { GuardMetrics } from '../observe/metrics.js';
import type { StatusBoard } from '../observe/status-board.js';
import { AdminServer, type LimiterStats } from '../server/admin-server.js';
import { ConfigReloader } from './config-reloader.js';

/** The admin listener of config.admin, listening; null when the config disables it. */
export async function startAdmin(config: CompiledConfig, metrics: GuardMetrics, board: StatusBoard, limiterStats: () => LimiterStats): Promise<AdminServer | null> {
  if (config.admin === null) return null;
  const admin = new AdminServer(config, { metrics, board, limiterStats });
  const bound = await admin.listen();
  logEvent('admin listening', { listen: `${bound.host}:${bound.port}`, endpoints: ['/metrics', '/healthz', '/readyz', '/'] });
  return admin;
}

/**
 * Reloads through `apply` on SIGHUP and whenever the file changes; every outcome is counted in
 * upload_guard_config_reloads_total and logged (`details` adds fields to the success line).
 */
export function reloadOnSignalAndChange(
  configPath: string,
  metrics: GuardMetrics,
  apply: (next: CompiledConfig) => Promise<void>,
  details: Record<string, unknown> = {},
): ConfigReloader {
  const reloader = new ConfigReloader(configPath, apply, (outcome, trigger) => {
    metrics.configReloaded(outcome.result);
    if (outcome.result === 'success') logEvent('config reloaded', { trigger, source: configPath, ...details });
    else logEvent('config reload refused, keeping the running config', { trigger, errors: outcome.errors });
  });
  reloader.watchFile();
  process.on('SIGHUP', () => void reloader.reload('SIGHUP'));
  return reloader;
}
