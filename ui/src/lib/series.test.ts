import { describe, expect, it } from "vitest";
import { alignByTime } from "./series";

describe("series placed by time", () => {
  it("puts each sample at its own time, with gaps where a series has none", () => {
    const cpu = { t: [0, 60, 120], v: [10, 20, 30] };
    const ram = { t: [60, 180], v: [50, 55] }; // sampled apart from the CPU
    expect(alignByTime([cpu, ram])).toEqual([
      [0, 60, 120, 180],
      [10, 20, 30, null],
      [null, 50, null, 55],
    ]);
  });
  it("handles no series and empty ones", () => {
    expect(alignByTime([])).toEqual([[]]);
    expect(alignByTime([{ t: [], v: [] }])).toEqual([[], []]);
  });
});
