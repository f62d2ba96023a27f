// V8 heap settings the guard is started with (package.json `start`, the Dockerfile's ENTRYPOINT,
// the systemd unit, the bench; a cluster primary adds any that are missing to its workers). Heap sizes are read when the isolate is created, so
// they cannot be set from inside the process and NODE_OPTIONS refuses them: they go on the command
// line.
//
// Why: every body chunk is a new ArrayBuffer (node:http copies each one), so a big upload allocates
// its own size again in external memory. With V8's defaults, a process whose old generation had
// grown to ~20 MB (the guard's code, config and caches) kept its old-generation limit only ~24 MB
// above the heap, and its external-memory scavenges turned into incremental mark-compacts,
// 13-16 per 256 MiB, whose concurrent marking cost 40-80 CPU ticks on the helper threads on top
// of the main thread. Which processes fell into that depended on their history (all of them after
// 20,000 GETs and 2,000 small uploads; about half of fresh ones), so 1 GiB stream uploads ran at
// either ~500 or ~250 MB/s. An old generation that
// starts at 128 MB (a floor the limit keeps after a mark-compact) and a young generation capped at
// 8 MB per semi-space: no mark-compacts in stream mode after the same load, 2-4 instead of 15-28
// in spool mode, and less young-generation memory (Node 24's defaults held ~400 MB of RSS after
// the load; these ~220 MB). Numbers: bench/README.md, "Heap settings".

import { setFlagsFromString } from 'node:v8';

/** The flags, in the order they are written everywhere. */
export const HEAP_FLAGS: readonly string[] = ['--initial-old-space-size=128', '--max-semi-space-size=8'];

/** The heap flags this process was started without (a flag given with another value counts as given). */
export function missingHeapFlags(execArgv: readonly string[]): string[] {
  const given = new Set(execArgv.map((arg) => arg.split('=')[0]!.replace(/_/g, '-')));
  return HEAP_FLAGS.filter((flag) => !given.has(flag.split('=')[0]!));
}

// V8 13 (Node 24) no longer answers external-memory pressure with a scavenge, as V8 11 (Node 20)
// does, but with an incremental mark-compact: a 256 MiB stream upload ran 7 of them (30-40 ticks
// of helper-thread CPU per upload) for the ArrayBuffers of its socket reads and parse batches,
// which die young. With the young generation capped at 4 MB V8 scavenges them away instead: 0-1
// mark-compacts per 256 MiB, 6-10 helper ticks, 1 GiB stream uploads 533 → 683 MB/s and spool
// 317 → 519 in the bench, peak RSS lower. Unlike the semi-space flag this one is read each time the
// young generation grows, so it can be set here rather than on every command line (a command-line
// --max-semi-space-size=2 did the same on Node 24 but cost Node 20 +55 MB of RSS).
// Numbers: bench/README.md, "Node 24 and external memory".
const RUNTIME_V8_FLAGS: readonly string[] = ['--scavenger-max-new-space-capacity-mb=4'];
/** The first V8 with the behaviour the flag answers (V8 12, Node 22, has the flag but scavenges on its own, as V8 11). */
const RUNTIME_FLAGS_FROM_V8 = 13;

/** Sets RUNTIME_V8_FLAGS where this V8 has them (an unknown flag would only print a warning). */
export function applyRuntimeHeapFlags(v8Version: string = process.versions.v8): readonly string[] {
  if (Number.parseInt(v8Version, 10) < RUNTIME_FLAGS_FROM_V8) return [];
  for (const flag of RUNTIME_V8_FLAGS) setFlagsFromString(flag);
  return RUNTIME_V8_FLAGS;
}
