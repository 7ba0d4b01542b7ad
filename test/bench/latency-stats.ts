// Percentiles of a latency sample (nearest-rank: the value below which p% of samples fall).

export function percentile(sortedNs: Float64Array, p: number): number {
  if (sortedNs.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sortedNs.length);
  return sortedNs[Math.min(sortedNs.length, Math.max(1, rank)) - 1];
}

export function sortedLatencies(...samples: number[][]): Float64Array {
  const all = new Float64Array(samples.reduce((n, s) => n + s.length, 0));
  let offset = 0;
  for (const sample of samples) {
    all.set(sample, offset);
    offset += sample.length;
  }
  return all.sort();
}
