// Reload on SIGHUP and when the config file changes. A config that does not validate is refused
// and the running one keeps serving; either way the result is reported (log + metric).
//
// The file's directory is watched, not the file: editors save by renaming a new file over the old
// one, and Kubernetes updates a mounted ConfigMap by swapping a `..data` symlink, and both leave a
// watch on the old inode blind. Bursts of events are folded into one reload.

import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { loadConfigFile } from '../config/load.js';
import type { CompiledConfig } from '../config/types.js';

export type ReloadResult = { result: 'success'; config: CompiledConfig } | { result: 'failure'; errors: string[] };

const DEBOUNCE_MS = 200;

export class ConfigReloader {
  readonly path: string;
  readonly #apply: (config: CompiledConfig) => Promise<void>;
  readonly #report: (outcome: ReloadResult, trigger: string) => void;
  #watcher: FSWatcher | null = null;
  #debounce: NodeJS.Timeout | null = null;
  /** reloads run one at a time, in order */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(path: string, apply: (config: CompiledConfig) => Promise<void>, report: (outcome: ReloadResult, trigger: string) => void) {
    this.path = path;
    this.#apply = apply;
    this.#report = report;
  }

  /** Loads, validates and applies the file now. */
  reload(trigger: string): Promise<ReloadResult> {
    const run = async (): Promise<ReloadResult> => {
      const loaded = loadConfigFile(this.path);
      let outcome: ReloadResult;
      if ('errors' in loaded) {
        outcome = { result: 'failure', errors: loaded.errors };
      } else {
        try {
          await this.#apply(loaded.config);
          outcome = { result: 'success', config: loaded.config };
        } catch (err) {
          outcome = { result: 'failure', errors: [`${this.path}: ${err instanceof Error ? err.message : String(err)}`] };
        }
      }
      this.#report(outcome, trigger);
      return outcome;
    };
    const next = this.#queue.then(run, run);
    this.#queue = next;
    return next;
  }

  /** Reloads whenever the file (or the ConfigMap symlink in its directory) changes. */
  watchFile(): void {
    const name = basename(this.path);
    this.#watcher = watch(dirname(this.path), (_event, changed) => {
      if (changed !== null && changed !== name && !changed.startsWith('..')) return;
      if (this.#debounce !== null) clearTimeout(this.#debounce);
      this.#debounce = setTimeout(() => {
        this.#debounce = null;
        void this.reload('file change');
      }, DEBOUNCE_MS);
    });
    this.#watcher.unref();
  }

  close(): void {
    this.#watcher?.close();
    if (this.#debounce !== null) clearTimeout(this.#debounce);
  }
}
