// What needs the operator, read once for the status strip and the sidebar's badges (every view
// shows them): re-read on every change in the store, one read at a time.
import { commands } from "../bindings";
import { Load, ok } from "./load.svelte";

export const attention = new Load(async () => {
  const [a, e] = await Promise.all([commands.attention(), commands.engineStatus()]);
  return { attention: ok(a), engine: ok(e) };
});
