// A body sink that keeps nothing: report-only mode runs the checks on a copy of the body while
// the original goes to the upstream untouched.

import type { BodySink } from './body-sink.js';
import type { UpstreamResponse } from './upstream.js';

export class DiscardSink implements BodySink {
  length = 0;
  write(chunk: Buffer): Promise<void> {
    this.length += chunk.length;
    return Promise.resolve();
  }
  complete(): Promise<UpstreamResponse> {
    return Promise.reject(new Error('a discard sink forwards nothing'));
  }
  abort(): void {}
}
