// The Spend view's chart: each agent's spend so far today, accumulated hour by hour in the
// factory's timezone, its cap as a line, and where the last hour's pace takes it by midnight.
// No DOM: unit-tested.

export interface HourRow { hour: string; agent: string; usd: number | null }
export interface Outlook { agent: string | null; cap_usd: number | null; spent_usd: number | null; reserved_usd: number | null; projected_usd: number | null }
export interface Line { label: string; agent: string; kind: "spent" | "projection" | "cap"; values: (number | null)[] }

/** x (seconds): the day's start, the end of each hour so far, now, and midnight. */
export function spendChart(rows: HourRow[], outlooks: Outlook[], dayStart: number, now: number, dayEnd: number): { xs: number[]; lines: Line[] } {
  const hourEnds: number[] = [];
  for (let h = dayStart + 3600; h < now; h += 3600) hourEnds.push(h);
  const xs = [dayStart, ...hourEnds, now, dayEnd];
  const lines: Line[] = [];
  for (const o of outlooks.filter((o) => o.agent != null)) {
    const agent = o.agent!;
    const mine = rows.filter((r) => r.agent === agent).map((r) => ({ at: Date.parse(r.hour) / 1000, usd: r.usd ?? 0 }));
    // Spent by x: every hour that began before x (an hour is counted once it has begun).
    const spentBy = (x: number) => mine.filter((r) => r.at < x).reduce((a, r) => a + r.usd, 0);
    const spent = xs.map((x) => (x <= now ? spentBy(x) : null));
    // The ledger's own total wins at "now" (the hours' sum may lag a call being settled).
    spent[xs.length - 2] = (o.spent_usd ?? 0) + (o.reserved_usd ?? 0);
    const projection = xs.map((x, i) => (i === xs.length - 2 ? spent[i] : x === dayEnd ? o.projected_usd ?? spent[xs.length - 2] : null));
    lines.push({ label: `${agent}`, agent, kind: "spent", values: spent });
    lines.push({ label: `${agent} at this pace`, agent, kind: "projection", values: projection });
    lines.push({ label: `${agent} cap`, agent, kind: "cap", values: xs.map(() => o.cap_usd ?? null) });
  }
  return { xs, lines };
}
