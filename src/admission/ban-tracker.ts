// Ban arithmetic, pure (policy `ban: { after, within, for }`): `after` rejections from one client
// inside a window of `within` earn it a ban of `for`. The window is fixed: it opens at the first
// rejection and closes `within` later (the Redis store does the same with INCR + PEXPIRE, so the
// two stores agree). Once the ban starts the count restarts from zero.

import type { BanParams } from '../config/types.js';

export interface RejectionWindow {
  count: number;
  /** clock reading (ms) when this window closes */
  endsMs: number;
}

export interface RejectionOutcome {
  /** the window to keep, or null when it should be forgotten (the ban just started) */
  window: RejectionWindow | null;
  /** clock reading (ms) when the ban that starts now ends, or null when there is no new ban */
  bannedUntilMs: number | null;
}

/** Counts one rejection into the client's window. */
export function countRejection(window: RejectionWindow | undefined, ban: BanParams, nowMs: number): RejectionOutcome {
  const current = window === undefined || nowMs >= window.endsMs ? { count: 0, endsMs: nowMs + ban.withinMs } : window;
  const count = current.count + 1;
  if (count >= ban.after) return { window: null, bannedUntilMs: nowMs + ban.forMs };
  return { window: { count, endsMs: current.endsMs }, bannedUntilMs: null };
}

/** ms of ban left at `nowMs`; 0 when not banned. */
export function banMsLeft(bannedUntilMs: number | undefined, nowMs: number): number {
  return bannedUntilMs === undefined ? 0 : Math.max(0, Math.ceil(bannedUntilMs - nowMs));
}
