import { describe, expect, it, vi } from "vitest";
import { Load, ok, throttle } from "./load.svelte";

/** A fetch whose answers the test hands out one by one, in any order it likes. */
function scripted<T>() {
  const pending: { resolve: (v: T) => void; reject: (e: unknown) => void }[] = [];
  const fetch = () => new Promise<T>((resolve, reject) => pending.push({ resolve, reject }));
  return { fetch, pending };
}

// Lets the loader's `await` and `finally` run.
const settle = () => new Promise((r) => setTimeout(r, 0));

describe("Load", () => {
  it("drops an answer to old inputs that arrives after the inputs changed", async () => {
    const s = scripted<string>();
    const l = new Load(s.fetch);
    l.refresh("task-a");
    l.refresh("task-b"); // the operator clicked another task while the first read ran
    expect(s.pending.length).toBe(1);
    s.pending[0].resolve("history of a");
    await settle();
    expect(l.data).toBeUndefined(); // never shown: it answers the old question
    expect(l.loading).toBe(true);
    expect(s.pending.length).toBe(2); // the newer question is asked at once
    s.pending[1].resolve("history of b");
    await settle();
    expect(l.data).toBe("history of b");
    expect(l.loading).toBe(false);
  });

  it("turns a burst of changes into one more read, not one each", async () => {
    const s = scripted<number>();
    const l = new Load(s.fetch);
    l.refresh();
    for (let i = 0; i < 50; i++) l.refresh();
    expect(s.pending.length).toBe(1);
    s.pending[0].resolve(1);
    await settle();
    expect(s.pending.length).toBe(2);
    s.pending[1].resolve(2);
    await settle();
    expect(s.pending.length).toBe(2);
    expect(l.data).toBe(2);
  });

  it("shows each newer answer for the same inputs, so a flood never starves the view", async () => {
    const s = scripted<number>();
    const l = new Load(s.fetch);
    l.refresh("all");
    l.refresh("all"); // the store changed again while the first read ran
    s.pending[0].resolve(1);
    await settle();
    expect(l.data).toBe(1);
    s.pending[1].resolve(2);
    await settle();
    expect(l.data).toBe(2);
  });

  it("keeps the error until a read succeeds, and calls onData only for accepted answers", async () => {
    const s = scripted<number>();
    const seen: number[] = [];
    const l = new Load(s.fetch, (d) => seen.push(d));
    l.refresh("x");
    s.pending[0].reject({ code: "unavailable", message: "store unreachable" });
    await settle();
    expect(l.error).toBe("store unreachable");
    expect(l.loading).toBe(false);
    l.refresh("y");
    l.refresh("z");
    s.pending[1].resolve(7); // answers "y": dropped
    await settle();
    s.pending[2].resolve(8);
    await settle();
    expect(l.error).toBe("");
    expect(seen).toEqual([8]);
  });

  it("unwraps a typed command result or throws its {code, message}", () => {
    expect(ok({ status: "ok", data: 3 })).toBe(3);
    expect(() => ok({ status: "error", error: { code: "not_found", message: "no task" } })).toThrow();
  });
});

describe("throttle", () => {
  it("runs at once, then folds a flood into one run per window", () => {
    vi.useFakeTimers();
    let runs = 0;
    const t = throttle(() => { runs += 1; }, 1000);
    t();
    expect(runs).toBe(1);
    for (let i = 0; i < 1000; i++) t();
    expect(runs).toBe(1);
    vi.advanceTimersByTime(1000);
    expect(runs).toBe(2);
    vi.advanceTimersByTime(5000);
    expect(runs).toBe(2);
    vi.useRealTimers();
  });
});
