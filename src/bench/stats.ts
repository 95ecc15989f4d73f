// Latency statistics of the bench: nearest-rank percentiles over the timed runs (no interpolation, so a
// reported figure is always one that was measured), median as the average of the two middle values.

function sorted(values: readonly number[], what: string): number[] {
  if (values.length === 0) throw new RangeError(`${what} of no values`);
  if (values.some((v) => !Number.isFinite(v))) throw new RangeError(`${what} of a non-finite value`);
  return [...values].sort((a, b) => a - b);
}

export function median(values: readonly number[]): number {
  const s = sorted(values, 'median');
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Nearest-rank percentile: the smallest value with at least p% of the values at or below it. */
export function percentile(values: readonly number[], p: number): number {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile ${p} is outside (0, 100]`);
  const s = sorted(values, `p${p}`);
  return s[Math.ceil((p / 100) * s.length) - 1];
}

export const p90 = (values: readonly number[]) => percentile(values, 90);
