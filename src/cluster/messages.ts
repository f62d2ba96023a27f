// What the primary and the workers of a multi-process guard (config `workers` > 1) say to each
// other over the cluster IPC channel. Every message carries `ug` so foreign messages (prom-client,
// user code) are ignored.

import type { BanParams, TokenBucketParams } from '../config/types.js';
import type { FinishedRequest } from '../observe/request-observer.js';
import type { BanResult, TakeResult } from '../admission/rate-limit-store.js';

export type StoreCall =
  | { op: 'take' | 'debit'; key: string; params: TokenBucketParams; amount: number }
  | { op: 'recordRejection'; clientKey: string; ban: BanParams }
  | { op: 'isBanned'; clientKey: string };

export type StoreAnswer = TakeResult | BanResult | number;

/** worker → primary */
export type WorkerMessage =
  | { ug: 'store'; id: number; call: StoreCall }
  | { ug: 'observed'; started: string[]; finished: FinishedRequest[]; storageFree: number | null }
  | { ug: 'reloaded'; result: 'success' | 'failure'; errors?: string[] }
  | { ug: 'listening'; port: number };

/** primary → worker */
export type PrimaryMessage =
  | { ug: 'store'; id: number; answer: StoreAnswer }
  | { ug: 'reload' }
  | { ug: 'drain' };

function isGuardMessage(message: unknown): boolean {
  return typeof message === 'object' && message !== null && typeof (message as { ug?: unknown }).ug === 'string';
}

export function isWorkerMessage(message: unknown): message is WorkerMessage {
  return isGuardMessage(message);
}

export function isPrimaryMessage(message: unknown): message is PrimaryMessage {
  return isGuardMessage(message);
}
