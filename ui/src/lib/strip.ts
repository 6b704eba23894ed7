// The status strip's words and levels, from what needs the operator (`attention`) and who runs
// the engine. No DOM: unit-tested. Everything a chip says is visible, never only on hover.

import type { AttentionDto, EngineDto, OutlookDto } from "../bindings";
import { capUse, clock, count, money } from "./format";

export type Level = "ok" | "warn" | "alert" | "muted";

export interface Chip {
  /** Stable name, for tests and the sidebar's badges. */
  id: string;
  text: string;
  level: Level;
  /** The view a click opens, if any. */
  go?: "approvals" | "tasks" | "agents" | "spend" | "settings";
}

/** The engine: who runs it, and why not when nobody does. */
export function engineChip(engine: EngineDto | null, dispatcher: string | null): Chip {
  if (!engine) return { id: "engine", text: "Engine: checking…", level: "muted" };
  switch (engine.mode) {
    case "here":
      return { id: "engine", text: "Engine running in this app", level: "ok" };
    case "elsewhere":
      return { id: "engine", text: `Engine running elsewhere (${dispatcher ?? "another process"})`, level: "ok" };
    case "remote":
      return dispatcher
        ? { id: "engine", text: "Remote window · the server's engine is running", level: "ok" }
        : { id: "engine", text: "Remote window · no engine is running on the server", level: "alert" };
    case "off":
      // A dispatcher elsewhere still runs the work; without one nothing moves.
      return dispatcher
        ? { id: "engine", text: `Engine running elsewhere (${dispatcher})`, level: "ok" }
        : { id: "engine", text: `Engine off: ${engine.detail.replace(/\.$/, "")}`, level: "alert" };
  }
}

/** One cap against today's pace: "$4.20 of $10.00 today · cap at ~18:05". */
export function paceText(o: OutlookDto, tz?: string): string {
  const used = `${money(o.spent_usd)} of ${money(o.cap_usd)}`;
  if (o.reached) return `${used} · cap reached`;
  if (o.cap_at) return `${used} · cap at ~${clock(o.cap_at, tz)}`;
  if ((o.per_hour_usd ?? 0) > 0) return `${used} · ~${money(o.projected_usd)} by midnight`;
  return `${used} today`;
}

export function paceLevel(o: OutlookDto): Level {
  if (o.reached) return "alert";
  return o.cap_at || capUse(o.spent_usd, o.reserved_usd, o.cap_usd) >= 80 ? "warn" : "ok";
}

/** Every chip of the strip, the engine first; counts only when there is something to count. */
export function chips(a: AttentionDto | null, engine: EngineDto | null): Chip[] {
  const out: Chip[] = [engineChip(engine, a?.dispatcher ?? null)];
  if (!a) return out;
  if (a.hold) {
    const why = a.hold.reason ? `: ${a.hold.reason}` : "";
    out.push({ id: "hold", text: `Factory ${a.hold.hold === "stop" ? "stopped" : "paused"}${a.hold.by ? ` by ${a.hold.by}` : ""}${why}`, level: "alert", go: "agents" });
  }
  for (const h of a.held_agents) {
    const what = h.hold === "cap" ? "held at its cap" : h.hold === "stop" ? "stopped" : "paused";
    out.push({ id: `held:${h.agent}`, text: `${h.agent} ${what}${h.hold !== "cap" && h.reason ? `: ${h.reason}` : ""}`, level: h.hold === "cap" ? "warn" : "alert", go: "agents" });
  }
  const factory = a.spend.find((o) => o.agent == null);
  if (factory) out.push({ id: "spend", text: `Spend ${paceText(factory, a.timezone)}`, level: paceLevel(factory), go: "spend" });
  // An agent's cap reached, or about to be, is worth a chip of its own.
  for (const o of a.spend.filter((o) => o.agent != null && paceLevel(o) !== "ok")) {
    out.push({ id: `spend:${o.agent}`, text: `${o.agent}: ${paceText(o, a.timezone)}`, level: paceLevel(o), go: "spend" });
  }
  if (a.approvals) out.push({ id: "approvals", text: count(a.approvals, "approval") + " waiting", level: "warn", go: "approvals" });
  if (a.questions) out.push({ id: "questions", text: count(a.questions, "question") + " for you", level: "warn", go: "approvals" });
  if (a.needs_human) out.push({ id: "needs_human", text: `${count(a.needs_human, "task")} handed to you`, level: "warn", go: "tasks" });
  if (a.failed) out.push({ id: "failed", text: `${a.failed >= 1000 ? "1,000+" : a.failed.toLocaleString("en-US")} failed`, level: "alert", go: "tasks" });
  return out;
}

/** The sidebar's badge per view: what waits there. */
export function badges(a: AttentionDto | null): Partial<Record<string, { n: number; level: Level }>> {
  if (!a) return {};
  const b: Partial<Record<string, { n: number; level: Level }>> = {};
  if (a.approvals + a.questions) b.approvals = { n: a.approvals + a.questions, level: "warn" };
  if (a.failed + a.needs_human) b.tasks = { n: a.failed + a.needs_human, level: a.failed ? "alert" : "warn" };
  const held = a.held_agents.length + (a.hold ? 1 : 0);
  if (held) b.agents = { n: held, level: "alert" };
  const worst = a.spend.map(paceLevel).sort((x, y) => rank(y) - rank(x))[0];
  if (worst && worst !== "ok") b.spend = { n: a.spend.filter((o) => paceLevel(o) !== "ok").length, level: worst };
  return b;
}

function rank(l: Level): number {
  return { muted: 0, ok: 1, warn: 2, alert: 3 }[l];
}
