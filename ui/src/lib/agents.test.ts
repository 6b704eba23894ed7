import { describe, expect, it } from "vitest";
import { byteLength, changedFields, editProblem } from "./agents";
import type { AgentConfigDto } from "../bindings";

const base: AgentConfigDto = {
  name: "rex", role: "engineering", capabilities: ["code"], prompt: "Write tests.", tier: "mid", model: null, daily_cap_usd: 20, max_concurrent: 2, tools: [],
};

describe("changedFields", () => {
  it("names each changed setting and nothing else", () => {
    expect(changedFields(base, { ...base, prompt: "Write more tests.", daily_cap_usd: 30 })).toEqual(["prompt", "daily cap"]);
    expect(changedFields(base, { ...base })).toEqual([]);
  });
  it("treats a cleared model like an absent one and marks the first revision", () => {
    expect(changedFields({ ...base, model: "" }, base)).toEqual([]);
    expect(changedFields(null, base)).toEqual(["first revision"]);
  });
});

describe("editProblem", () => {
  it("accepts a sane edit", () => expect(editProblem(base, 32768)).toBe(""));
  it("refuses negative or absurd caps, bad concurrency and oversized prompts", () => {
    expect(editProblem({ ...base, daily_cap_usd: -1 }, 32768)).toMatch(/non-negative/);
    expect(editProblem({ ...base, daily_cap_usd: NaN }, 32768)).toMatch(/non-negative/);
    expect(editProblem({ ...base, daily_cap_usd: 250_000 }, 32768)).toMatch(/typo/);
    expect(editProblem({ ...base, max_concurrent: 0 }, 32768)).toMatch(/1 to 64/);
    expect(editProblem({ ...base, prompt: "é".repeat(10) }, 15)).toMatch(/20 bytes/);
    expect(editProblem({ ...base, model: "gpt 4" }, 32768)).toMatch(/no spaces/);
  });
  it("counts bytes, not characters", () => expect(byteLength("é€")).toBe(5));
});
