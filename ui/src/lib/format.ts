// View logic with no DOM: formatting and the small calculations the views share. Unit-tested.
// Amounts arrive as `number | null`: the wire sends a float that is not a number as null, and
// the views show that as "—" rather than guess.

import type { EngineMode, TaskStatus } from "../bindings";

/** A count with its noun, singular for one ("1 call", "3 calls"). */
export function count(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;
}

export function money(usd: number | null): string {
  if (usd == null) return "—";
  if (usd !== 0 && Math.abs(usd) < 0.01) return `$${usd.toFixed(4)}`;
  return `$${usd.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

/** An amount in its own currency (revenue is never converted). */
export function amount(value: number | null, currency: string): string {
  if (value == null) return "—";
  try {
    return new Intl.NumberFormat("en-US", { style: "currency", currency: currency.toUpperCase() }).format(value);
  } catch {
    return `${value.toFixed(2)} ${currency.toUpperCase()}`;
  }
}

/** "12 s", "4 min", "3 h", "2 d" ago; "—" for no time. */
export function age(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return "—";
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

function parts(iso: string, tz: string | undefined): Record<string, string> {
  const opts: Intl.DateTimeFormatOptions = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" };
  let f: Intl.DateTimeFormat;
  try { f = new Intl.DateTimeFormat("en-US", { ...opts, timeZone: tz }); } catch { f = new Intl.DateTimeFormat("en-US", opts); }
  return Object.fromEntries(f.formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
}

/** The one absolute time format: "2026-11-30 14:05:09", in the factory's timezone when known. */
export function stamp(iso: string | null | undefined, tz?: string): string {
  if (!iso || Number.isNaN(Date.parse(iso))) return "—";
  const p = parts(iso, tz);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

/** A time of day, "14:05", in the factory's timezone when known. */
export function clock(iso: string | null | undefined, tz?: string): string {
  if (!iso || Number.isNaN(Date.parse(iso))) return "—";
  const p = parts(iso, tz);
  return `${p.hour}:${p.minute}`;
}

/** Time left until `iso`, or "expired". */
export function until(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return "no expiry";
  const ms = Date.parse(iso) - now;
  if (ms <= 0) return "expired";
  return `in ${age(new Date(now - ms).toISOString(), now)}`;
}

/** Share of a cap used (spent + reserved), 0–100+. */
export function capUse(spent: number | null, reserved: number | null, cap: number | null): number {
  if (cap == null || cap <= 0) return 0;
  return (((spent ?? 0) + (reserved ?? 0)) / cap) * 100;
}

export function capLevel(pct: number): "ok" | "warn" | "alert" {
  return pct >= 100 ? "alert" : pct >= 80 ? "warn" : "ok";
}

/** "agent:rex:day:2026-11-21" → "Rex"; "global:day:…" → "Factory". */
export function scopeLabel(scope: string): string {
  const [kind, name] = scope.split(":");
  if (kind === "global") return "Factory";
  if (kind === "agent" && name) return name[0].toUpperCase() + name.slice(1);
  return scope;
}

// Every task state in the order the views list them. A Record over the wire's `TaskStatus`, so a
// state added on the Rust side fails the type check here until it is placed.
const STATUS_RANK: Record<TaskStatus, number> = {
  backlog: 0, pending: 1, blocked: 2, claimed: 3, running: 4, review: 5,
  awaiting_approval: 6, needs_human: 7, paused: 8, done: 9, failed: 10, cancelled: 11,
};
export const STATUS_ORDER: readonly TaskStatus[] = (Object.keys(STATUS_RANK) as TaskStatus[]).sort((a, b) => STATUS_RANK[a] - STATUS_RANK[b]);

const ENGINE_LABEL: Record<EngineMode, string> = {
  here: "running in this app",
  elsewhere: "another process",
  remote: "remote",
  off: "off",
};

/** The engine pill's words for who runs the engine. */
export function engineLabel(m: EngineMode): string {
  return ENGINE_LABEL[m];
}

export function statusLabel(s: string): string {
  return s.replace(/_/g, " ");
}

/** The rows a virtual list draws: the visible window plus `overscan` each side. */
export function windowOf(total: number, rowHeight: number, scrollTop: number, viewport: number, overscan = 8) {
  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const last = Math.min(total, Math.ceil((scrollTop + viewport) / rowHeight) + overscan);
  return { first, last, offset: first * rowHeight, height: total * rowHeight };
}

/** Case-insensitive match of a task against a free-text filter. */
export function matches(t: { title: string; id: string; assigned_to: string | null; product: string | null }, q: string): boolean {
  if (!q) return true;
  const n = q.toLowerCase();
  return [t.title, t.id, t.assigned_to ?? "", t.product ?? ""].some((x) => x.toLowerCase().includes(n));
}
