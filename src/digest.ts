// Duration histograms that combine: the summaries of many periods add up bucket by bucket, and
// p50/p95 come out of the sum within a stated error. Bucket 0 holds durations under 1 ms (the log
// writes whole milliseconds, so these are 0); bucket k ≥ 1 holds [GAMMA^(k-1), GAMMA^k) ms; the
// last bucket also takes everything beyond it (and NaN). A bucket stands for its geometric middle,
// so a duration is represented within a factor of √GAMMA of itself.

export const GAMMA = 1.1;
export const TOP_BUCKET = 470; // GAMMA^469 ≈ 2.4e19 ms: past any int8 of milliseconds

/** The relative error of one represented duration, and so of a percentile: √GAMMA − 1 ≈ 4.9 %. */
export const RELATIVE_ERROR = Math.sqrt(GAMMA) - 1;

/** The bucket of a duration, as SQL over the expression `d` (a float8). */
export function bucketSql(d: string): string {
  return `CASE WHEN ${d} < 1 THEN 0 WHEN ${d} < ${GAMMA ** (TOP_BUCKET - 1)}::float8
               THEN least(floor(ln(${d}) / ln(${GAMMA}::float8))::int + 1, ${TOP_BUCKET}) ELSE ${TOP_BUCKET} END`;
}

/** The duration a bucket stands for. */
export function representative(bucket: number): number {
  return bucket <= 0 ? 0 : GAMMA ** (bucket - 0.5);
}

/** Bucket → count; counts of the same bucket from several sources add up. */
export type Histogram = Map<number, number>;

export function addTo(into: Histogram, buckets: readonly number[], counts: readonly number[]): void {
  buckets.forEach((b, i) => into.set(b, (into.get(b) ?? 0) + Number(counts[i])));
}

/**
 * `percentile_cont(p)` over the histogram: the values at ranks floor and ceil of p·(n − 1),
 * interpolated as PostgreSQL does, each taken as its bucket's representative; never above `max`.
 */
export function percentile(histogram: Histogram, p: number, max: number | null): number | null {
  const sorted = [...histogram.entries()].filter(([, n]) => n > 0).sort(([a], [b]) => a - b);
  const total = sorted.reduce((sum, [, n]) => sum + n, 0);
  if (total === 0) return null;
  const position = p * (total - 1);
  const lower = Math.floor(position);
  const at = (rank: number): number => {
    let seen = 0;
    for (const [bucket, n] of sorted) {
      seen += n;
      if (rank < seen) return representative(bucket);
    }
    return representative(sorted.at(-1)![0]);
  };
  const low = at(lower);
  const value = low + (position - lower) * (at(Math.min(lower + 1, total - 1)) - low);
  return max === null || Number.isNaN(max) ? value : Math.min(value, max);
}
