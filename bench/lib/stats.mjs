// Summarising repeated measurements: the bench reports the median of BENCH_REPEAT rounds (one run
// on a shared 2-core machine is mostly noise), and keeps min and max.

/** Median of numbers (mean of the middle two for an even count); null if there are none. */
export function median(values) {
  const sorted = values.filter((v) => typeof v === 'number' && !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Summarises every numeric field of a list of results (one per round):
 * { runs, median: {field: n}, min: {...}, max: {...} }. Non-numeric fields (statuses, sink
 * counters) stay in `runs` for the sanity checks, which look at every run.
 */
export function summarize(runs) {
  const numericKeys = Object.keys(runs[0] ?? {}).filter((key) => runs.some((r) => typeof r[key] === 'number'));
  const pick = (fn) => Object.fromEntries(numericKeys.map((key) => [key, fn(runs.map((r) => r[key]).filter((v) => typeof v === 'number'))]));
  return {
    runs,
    median: pick(median),
    min: pick((values) => (values.length ? Math.min(...values) : null)),
    max: pick((values) => (values.length ? Math.max(...values) : null)),
  };
}
