import { describe, expect, it } from "vitest";
import { amount, age, capLevel, capUse, count, engineLabel, matches, money, scopeLabel, STATUS_ORDER, until, windowOf } from "./format";

describe("format", () => {
  it("shows money the way the CLI does", () => {
    expect(money(24.9)).toBe("$24.90");
    expect(money(0.0005)).toBe("$0.0005");
    expect(money(1234.5)).toBe("$1,234.50");
  });
  it("counts with a singular for one", () => {
    expect(count(1, "call")).toBe("1 call");
    expect(count(0, "call")).toBe("0 calls");
    expect(count(12345, "subscription")).toBe("12,345 subscriptions");
    expect(count(2, "entry", "entries")).toBe("2 entries");
  });
  it("shows revenue in its own currency", () => {
    expect(amount(17, "eur")).toBe("€17.00");
    expect(amount(9, "usd")).toBe("$9.00");
    expect(amount(5, "zzz")).toMatch(/ZZZ\s5\.00/);
  });
  it("ages and expiries are relative to now", () => {
    const now = Date.parse("2026-11-21T10:00:00Z");
    expect(age("2026-11-21T09:59:30Z", now)).toBe("30 s");
    expect(age("2026-11-21T07:00:00Z", now)).toBe("3 h");
    expect(age(null, now)).toBe("—");
    expect(until("2026-11-21T09:00:00Z", now)).toBe("expired");
    expect(until("2026-11-21T12:00:00Z", now)).toBe("in 2 h");
  });
  it("cap use counts reservations and flags 80 and 100 %", () => {
    expect(capUse(30, 10, 40)).toBe(100);
    expect(capLevel(capUse(30, 3, 40))).toBe("warn");
    expect(capLevel(50)).toBe("ok");
    expect(capUse(1, 0, 0)).toBe(0);
  });
  it("names scopes for people", () => {
    expect(scopeLabel("agent:rex:day:2026-11-21")).toBe("Rex");
    expect(scopeLabel("global:day:2026-11-21")).toBe("Factory");
  });
  it("draws only the visible window of a long list", () => {
    const w = windowOf(100_000, 36, 36_000, 720);
    expect(w.first).toBe(992);
    expect(w.last).toBe(1028);
    expect(w.height).toBe(3_600_000);
    expect(windowOf(3, 36, 0, 720).last).toBe(3);
  });
  it("filters tasks by title, id, agent or product", () => {
    const t = { title: "Deploy Invoicely", id: "abc", assigned_to: "rex", product: "invoicely" };
    expect(matches(t, "deploy")).toBe(true);
    expect(matches(t, "REX")).toBe(true);
    expect(matches(t, "scout")).toBe(false);
  });
});

describe("typed wire values", () => {
  it("lists every task state once, in the pipeline's order", () => {
    expect(STATUS_ORDER).toEqual(["backlog", "pending", "blocked", "claimed", "running", "review", "awaiting_approval", "needs_human", "paused", "done", "failed", "cancelled"]);
  });
  it("names every engine mode and shows a missing amount as a dash", () => {
    expect(engineLabel("here")).toBe("running in this app");
    expect(engineLabel("elsewhere")).toBe("another process");
    expect(money(null)).toBe("—");
    expect(amount(null, "usd")).toBe("—");
    expect(capUse(null, 1, 10)).toBe(10);
  });
});
