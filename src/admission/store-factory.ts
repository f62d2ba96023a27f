// Builds the configured rate-limit store. Redis support is loaded only when configured, so a
// memory-only deployment never loads the Redis client.

import type { CompiledConfig } from '../config/types.js';
import { logEvent } from '../observe/log.js';
import { MemoryStore } from './memory-store.js';
import type { RateLimitStore } from './rate-limit-store.js';

export async function createRateLimitStore(config: CompiledConfig): Promise<RateLimitStore> {
  const options = config.rateLimitStoreOptions;
  if (config.rateLimitStore.kind === 'memory') return new MemoryStore({ maxTrackedClients: options.maxTrackedClients });
  const { RedisStore } = await import('./redis-store.js');
  let lastError = '';
  return new RedisStore({
    url: config.rateLimitStore.url,
    timeoutMs: options.timeoutMs,
    onStoreError: options.onStoreError,
    maxTrackedClients: options.maxTrackedClients,
    // One line per distinct failure, not one per reconnect attempt.
    onError: (err) => {
      if (err.message === lastError) return;
      lastError = err.message;
      logEvent('rate limit store error', { error: err.message, onStoreError: options.onStoreError });
    },
  });
}
