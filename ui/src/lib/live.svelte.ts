// Live state shared by the views: the store's connection and a change counter the views
// reload on. Fed by typed events from the Rust side; nothing here polls.
import { commands, events } from "../bindings";

export const live = $state({
  /** null until the store first answered (or failed): the window never guesses "connected". */
  connected: null as boolean | null,
  message: "",
  /** Whether REEF keeps trying to reach the store by itself. */
  retrying: false,
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
    live.retrying = e.payload.retrying;
    // Views read again either way: with the store back, or to show why it is not.
    live.version += 1;
  });
  // What was announced before this window listened (an event sent then is not replayed).
  const now = await commands.storeStatus();
  if (now.status === "ok" && now.data && live.connected === null) {
    live.connected = now.data.connected;
    live.message = now.data.message;
    live.retrying = now.data.retrying;
    live.version += 1;
  }
}
