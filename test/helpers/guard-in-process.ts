// The guard in this process, from a YAML text, listening on a free port: what most integration
// tests put in front of their recording upstream.

import assert from 'node:assert/strict';
import { loadConfigText } from '../../src/config/load.ts';
import { GuardServer, type GuardServerOptions } from '../../src/server/guard-server.ts';

export async function startGuard(yaml: string, options: GuardServerOptions = {}): Promise<{ guard: GuardServer; port: number }> {
  const loaded = loadConfigText(yaml);
  assert.ok('config' in loaded, JSON.stringify(loaded));
  const guard = new GuardServer(loaded.config, options);
  const { port } = await guard.listen();
  return { guard, port };
}
