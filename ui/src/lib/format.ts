// View logic with no DOM: formatting and the small calculations the views share. Unit-tested.

export function money(usd: number): string {
  if (usd !== 0 && Math.abs(usd) < 0.01) return `$${usd.toFixed(4)}`;
  return `$${usd.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

/** An amount in its own currency (revenue is never converted). */
export function amount(value: number, currency: string): string {
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

/** Time left until `iso`, or "expired". */
export function until(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return "no expiry";
  const ms = Date.parse(iso) - now;
  if (ms <= 0) return "expired";
  return `in ${age(new Date(now - ms).toISOString(), now)}`;
}

/** Share of a cap used (spent + reserved), 0–100+. */
export function capUse(spent: number, reserved: number, cap: number): number {
  if (cap <= 0) return 0;
  return ((spent + reserved) / cap) * 100;
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

export const STATUS_ORDER = [
  "backlog", "pending", "blocked", "claimed", "running", "review",
  "awaiting_approval", "needs_human", "paused", "done", "failed", "cancelled",
] as const;

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
