import { describe, expect, it } from "vitest";
import type { AttentionDto, OutlookDto } from "../bindings";
import { badges, chips, engineChip, paceText } from "./strip";
import { clock, stamp } from "./format";

const cap = (o: Partial<OutlookDto>): OutlookDto => ({
  agent: null, cap_usd: 10, spent_usd: 0, reserved_usd: 0, per_hour_usd: 0, projected_usd: 0, cap_at: null, reached: false, ...o,
});
const quiet: AttentionDto = {
  timezone: "Europe/Berlin", day_ends: "2026-11-30T23:00:00Z", dispatcher: "reef:dreamteam:1:a", hold: null, held_agents: [],
  approvals: 0, questions: 0, needs_human: 0, failed: 0, failed_since: "2026-11-29T23:00:00Z", acknowledged_at: null, spend: [cap({ spent_usd: 1.5 })],
};

describe("the status strip", () => {
  it("gives the engine's reason in words when it is off", () => {
    expect(engineChip({ mode: "off", detail: "REEF_NO_ENGINE is set." }, null)).toEqual({ id: "engine", text: "Engine off: REEF_NO_ENGINE is set", level: "alert" });
    expect(engineChip({ mode: "off", detail: "x" }, "reef:server:1:b").level).toBe("ok");
    expect(engineChip({ mode: "remote", detail: "" }, null).level).toBe("alert");
  });
  it("says when the cap is reached at today's pace, in the factory's timezone", () => {
    expect(paceText(cap({ spent_usd: 6, per_hour_usd: 1, cap_at: "2026-11-30T17:05:00Z", projected_usd: 13 }), "Europe/Berlin")).toBe("$6.00 of $10.00 · cap at ~18:05");
    expect(paceText(cap({ spent_usd: 10, reached: true }))).toBe("$10.00 of $10.00 · cap reached");
    expect(paceText(cap({ spent_usd: 2, per_hour_usd: 0.1, projected_usd: 2.6 }))).toBe("$2.00 of $10.00 · ~$2.60 by midnight");
  });
  it("shows only what needs the operator, with plurals, and badges the views it is in", () => {
    expect(chips(quiet, { mode: "here", detail: "" }).map((c) => c.id)).toEqual(["engine", "spend"]);
    const busy: AttentionDto = {
      ...quiet, approvals: 1, questions: 2, failed: 3, needs_human: 0,
      hold: { agent: null, hold: "pause", by: "operator:adam@dreamteam", at: null, reason: "deploy freeze" },
      held_agents: [{ agent: "rex", hold: "cap", by: null, at: null, reason: "held" }],
      spend: [cap({ spent_usd: 9 }), cap({ agent: "rex", spent_usd: 5, cap_usd: 5, reached: true })],
    };
    const c = chips(busy, { mode: "here", detail: "" });
    expect(c.map((x) => x.text)).toEqual([
      "Engine running in this app",
      "Factory paused by operator:adam@dreamteam: deploy freeze",
      "rex held at its cap",
      "Spend $9.00 of $10.00 today",
      "rex: $5.00 of $5.00 · cap reached",
      "1 approval waiting",
      "2 questions for you",
      "3 failed",
    ]);
    expect(c.find((x) => x.id === "spend")?.level).toBe("warn");
    expect(badges(busy)).toEqual({ approvals: { n: 3, level: "warn" }, tasks: { n: 3, level: "alert" }, agents: { n: 2, level: "alert" }, spend: { n: 2, level: "alert" } });
    expect(badges(quiet)).toEqual({});
  });
  it("writes every absolute time one way", () => {
    expect(stamp("2026-11-30T13:05:09.120Z", "Europe/Berlin")).toBe("2026-11-30 14:05:09");
    expect(stamp("2026-11-30T13:05:09Z", "UTC")).toBe("2026-11-30 13:05:09");
    expect(clock("2026-11-30T23:30:00Z", "America/New_York")).toBe("18:30");
    expect(stamp(null)).toBe("—");
  });
});
