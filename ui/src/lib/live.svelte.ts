// Live state shared by the views: the store's connection and a change counter the views
// reload on. Fed by typed events from the Rust side; nothing here polls.
import { events } from "../bindings";

export const live = $state({
  connected: true,
  message: "",
  /** Bumped on every change in the store; views re-read when it moves. */
  version: 0,
  /** Changes per collection, so a view reloads only for what it shows. */
  touched: {} as Record<string, number>,
  /** Set when the operator asked to quit while this app runs the engine. */
  quit: "" as string,
});

let started = false;

export async function startLive() {
  if (started) return;
  started = true;
  await events.storeChanged.listen((e) => {
    live.version += 1;
    live.touched[e.payload.collection] = (live.touched[e.payload.collection] ?? 0) + 1;
  });
  await events.quitRequested.listen((e) => {
    live.quit = e.payload.reason;
  });
  await events.storeStatus.listen((e) => {
    live.connected = e.payload.connected;
    live.message = e.payload.message;
    if (e.payload.connected) live.version += 1;
  });
}

type Res<T> = { status: "ok"; data: T } | { status: "error"; error: { code: string; message: string } };

/** Unwraps a command result, throwing the `{code, message}` error for the view to show. */
export function ok<T>(r: Res<T>): T {
  if (r.status === "ok") return r.data;
  throw r.error;
}

export function errorText(e: unknown): string {
  if (e && typeof e === "object" && "message" in e) return String((e as { message: unknown }).message);
  return String(e);
}

/**
 * Wraps a loader so at most one runs at a time and a burst of triggers causes one more run
 * after the current one, not one run each.
 */
export function singleFlight(load: () => Promise<void>): () => void {
  let running = false;
  let again = false;
  const run = async () => {
    if (running) { again = true; return; }
    running = true;
    try { await load(); } finally {
      running = false;
      if (again) { again = false; run(); }
    }
  };
  return () => { run(); };
}
