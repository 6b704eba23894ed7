// Chart data placed by time: each series keeps its own timestamps, and the chart's x axis is
// their union, with a gap (null) where a series has no sample. Placing by position instead would
// draw a host's RAM against its CPU's timestamps even when they were sampled apart. Unit-tested.

export interface Points { t: (number | null)[]; v: (number | null)[] }

/** uPlot's aligned data: [x, ...ys], x the sorted union of every series' timestamps. */
export function alignByTime(series: Points[]): [number[], ...(number | null)[][]] {
  const xs = [...new Set(series.flatMap((s) => s.t).filter((t): t is number => t != null))].sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  const ys = series.map((s) => {
    const y: (number | null)[] = new Array(xs.length).fill(null);
    s.t.forEach((t, i) => { if (t != null) y[at.get(t)!] = s.v[i] ?? null; });
    return y;
  });
  return [xs, ...ys];
}
