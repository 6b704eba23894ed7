import { describe, expect, it } from "vitest";
import { spendChart } from "./spendchart";

describe("the spend chart", () => {
  it("accumulates each agent's spend by hour, with its cap and its pace to midnight", () => {
    const day = Date.parse("2026-11-30T00:00:00Z") / 1000;
    const now = day + 2.5 * 3600;
    const rows = [
      { hour: "2026-11-30T00:00:00.000Z", agent: "rex", usd: 1 },
      { hour: "2026-11-30T01:00:00.000Z", agent: "rex", usd: 2 },
      { hour: "2026-11-30T02:00:00.000Z", agent: "rex", usd: 0.5 },
      { hour: "2026-11-30T01:00:00.000Z", agent: "kev", usd: 4 },
    ];
    const outlooks = [
      { agent: null, cap_usd: 100, spent_usd: 7.5, reserved_usd: 0, projected_usd: 20 },
      { agent: "rex", cap_usd: 10, spent_usd: 3.5, reserved_usd: 0, projected_usd: 14 },
    ];
    const { xs, lines } = spendChart(rows, outlooks, day, now, day + 86400);
    expect(xs).toEqual([day, day + 3600, day + 7200, now, day + 86400]);
    const get = (kind: string) => lines.find((l) => l.kind === kind)!.values;
    expect(get("spent")).toEqual([0, 1, 3, 3.5, null]);
    expect(get("projection")).toEqual([null, null, null, 3.5, 14]);
    expect(get("cap")).toEqual([10, 10, 10, 10, 10]);
    expect(lines.map((l) => l.agent)).not.toContain("kev"); // only agents with an outlook (a cap)
  });
});
