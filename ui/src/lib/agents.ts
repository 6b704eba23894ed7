// What the Agents view's editor needs beyond the commands: what changed between two revisions,
// and whether an edit may be sent. Pure functions, tested with Vitest.
import type { AgentConfigDto } from "../bindings";

const fields: [keyof AgentConfigDto, string][] = [
  ["prompt", "prompt"],
  ["tier", "tier"],
  ["model", "model"],
  ["daily_cap_usd", "daily cap"],
  ["max_concurrent", "concurrency"],
  ["role", "role"],
  ["tools", "tools"],
];

/** The names of the settings that differ between `before` and `after` (empty when none). */
export function changedFields(before: AgentConfigDto | null, after: AgentConfigDto): string[] {
  if (!before) return ["first revision"];
  return fields.filter(([k]) => norm(before[k]) !== norm(after[k])).map(([, label]) => label);
}

function norm(v: unknown): string {
  return v === null || v === undefined ? "" : String(v);
}

/** UTF-8 length, which is what the server's prompt limit counts. */
export function byteLength(s: string): number {
  return new TextEncoder().encode(s).length;
}

/** Why an edit cannot be saved yet, or "" when it can. Mirrors the server's checks so the
 *  operator hears about a typo before the round trip; the server checks again. */
export function editProblem(c: AgentConfigDto, maxPromptBytes: number): string {
  if (c.daily_cap_usd == null || !Number.isFinite(c.daily_cap_usd) || c.daily_cap_usd < 0) return "the daily cap must be a non-negative amount";
  if (c.daily_cap_usd > 100_000) return "the daily cap is over $100,000 — a typo?";
  if (!Number.isInteger(c.max_concurrent) || c.max_concurrent < 1 || c.max_concurrent > 64) return "concurrency must be 1 to 64";
  const n = byteLength(c.prompt);
  if (n > maxPromptBytes) return `the prompt is ${n} bytes; the limit is ${maxPromptBytes}`;
  if (c.model && /\s/.test(c.model.trim())) return "a model name has no spaces";
  return "";
}
