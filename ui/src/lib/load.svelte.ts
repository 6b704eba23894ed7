// The one loader every view uses: its data, its error and whether the first answer is still
// due. One read at a time, a burst of changes causes one more read after it, and an answer to
// an older question (inputs changed while it was in flight) is dropped, never shown.

import type { AppError } from "../bindings";

/** The result shape every typed command returns. */
export type Res<T> = { status: "ok"; data: T } | { status: "error"; error: AppError };

/** Unwraps a command result, throwing the `{code, message}` error for the view to show. */
export function ok<T>(r: Res<T>): T {
  if (r.status === "ok") return r.data;
  throw r.error;
}

export function errorText(e: unknown): string {
  if (e && typeof e === "object" && "message" in e) return String((e as { message: unknown }).message);
  return String(e);
}

/** A stable text for a view's inputs, so equal inputs compare equal. */
function keyOf(inputs: unknown): string {
  return inputs === undefined ? "" : JSON.stringify(inputs);
}

export class Load<T> {
  /** The latest accepted answer; raw: answers are replaced whole, never edited in place. */
  data = $state.raw<T | undefined>(undefined);
  /** The latest read's error, "" when it succeeded. */
  error = $state("");
  /** True until the first answer arrived (or failed); later reads keep the last answer shown. */
  loading = $state(true);

  #fetch: () => Promise<T>;
  #onData: ((d: T) => void) | undefined;
  #key = "";
  #generation = 0;
  #running = false;
  #again = false;

  constructor(fetch: () => Promise<T>, onData?: (d: T) => void) {
    this.#fetch = fetch;
    this.#onData = onData;
  }

  /**
   * Reads again. `inputs` are what the read depends on (filters, a selected id): when they
   * differ from the last call's, an answer still in flight belongs to the old inputs and is
   * dropped. With the same inputs a newer answer is always shown, so a flood of changes can
   * never starve the view.
   */
  refresh = (inputs?: unknown): void => {
    const key = keyOf(inputs);
    if (key !== this.#key) {
      this.#key = key;
      this.#generation += 1;
    }
    this.#run();
  };

  async #run(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    const mine = this.#generation;
    try {
      const d = await this.#fetch();
      if (mine === this.#generation) {
        this.data = d;
        this.error = "";
        this.#onData?.(d);
      }
    } catch (e) {
      if (mine === this.#generation) this.error = errorText(e);
    } finally {
      if (mine === this.#generation) this.loading = false;
      this.#running = false;
      // A newer question arrived while this one ran: ask it now (once, however many came).
      if (this.#again || mine !== this.#generation) {
        this.#again = false;
        this.#run();
      }
    }
  }
}

/**
 * `f` at most once per `ms`: the first call runs at once, calls within the window fold into one
 * run at its end. For views that re-read on every change in the store, which an agent printing a
 * line a millisecond (each an event) would otherwise make re-read a thousand times a second.
 */
export function throttle(f: () => void, ms: number): () => void {
  let at = -Infinity;
  let timer: ReturnType<typeof setTimeout> | null = null;
  return () => {
    const wait = at + ms - Date.now();
    if (wait <= 0) { at = Date.now(); f(); }
    else if (!timer) timer = setTimeout(() => { timer = null; at = Date.now(); f(); }, wait);
  };
}
