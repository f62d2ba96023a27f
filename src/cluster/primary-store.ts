// A worker's rate-limit store when the guard runs several processes with the memory store: every
// call goes to the primary, which holds the one MemoryStore, so buckets and bans stay exact across
// workers. (With Redis, every worker talks to Redis itself and this is not used.)
//
// Infinity does not survive JSON (the IPC encoding): retryAfterMs Infinity travels as -1.

import type { BanParams, TokenBucketParams } from '../config/types.js';
import type { BanResult, RateLimitStore, TakeResult } from '../admission/rate-limit-store.js';
import type { MemoryStore } from '../admission/memory-store.js';
import { isPrimaryMessage, type PrimaryMessage, type StoreAnswer, type StoreCall, type WorkerMessage } from './messages.js';

export class PrimaryStore implements RateLimitStore {
  #nextId = 1;
  readonly #pending = new Map<number, (answer: StoreAnswer) => void>();
  readonly #onMessage = (message: unknown): void => {
    if (!isPrimaryMessage(message) || message.ug !== 'store') return;
    const resolve = this.#pending.get(message.id);
    this.#pending.delete(message.id);
    resolve?.(message.answer);
  };

  constructor() {
    process.on('message', this.#onMessage);
  }

  async take(key: string, params: TokenBucketParams, cost: number): Promise<TakeResult> {
    return fromWire((await this.#call({ op: 'take', key, params, amount: cost })) as TakeResult);
  }

  async debit(key: string, params: TokenBucketParams, amount: number): Promise<TakeResult> {
    return fromWire((await this.#call({ op: 'debit', key, params, amount })) as TakeResult);
  }

  async recordRejection(clientKey: string, ban: BanParams): Promise<BanResult> {
    return (await this.#call({ op: 'recordRejection', clientKey, ban })) as BanResult;
  }

  async isBanned(clientKey: string): Promise<number> {
    return (await this.#call({ op: 'isBanned', clientKey })) as number;
  }

  stats(): Record<string, number> {
    return {};
  }

  close(): Promise<void> {
    process.off('message', this.#onMessage);
    return Promise.resolve();
  }

  #call(call: StoreCall): Promise<StoreAnswer> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      const message: WorkerMessage = { ug: 'store', id, call };
      process.send!(message);
    });
  }
}

/** The primary's side: answers one worker's store call from the shared MemoryStore. */
export function answerStoreCall(store: MemoryStore, id: number, call: StoreCall): PrimaryMessage {
  return { ug: 'store', id, answer: answerOf(store, call) };
}

function answerOf(store: MemoryStore, call: StoreCall): StoreAnswer {
  switch (call.op) {
    case 'take':
      return toWire(store.takeNow(call.key, call.params, call.amount));
    case 'debit':
      return toWire(store.debitNow(call.key, call.params, call.amount));
    case 'recordRejection':
      return store.recordRejectionNow(call.clientKey, call.ban);
    case 'isBanned':
      return store.banMsLeftNow(call.clientKey);
  }
}

function toWire(result: TakeResult): TakeResult {
  return Number.isFinite(result.retryAfterMs) ? result : { ...result, retryAfterMs: -1 };
}

function fromWire(result: TakeResult): TakeResult {
  return result.retryAfterMs === -1 ? { ...result, retryAfterMs: Number.POSITIVE_INFINITY } : result;
}
