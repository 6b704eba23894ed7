// Where the window is and what it was asked to show: every id in every view is a link that
// lands here, so a click on an event's subject or an approval's task opens that thing.
import type { TaskStatus } from "../bindings";

export const VIEWS = [
  { id: "overview", label: "Overview", key: "1" },
  { id: "tasks", label: "Tasks", key: "2" },
  { id: "approvals", label: "Approvals", key: "3" },
  { id: "agents", label: "Agents", key: "4" },
  { id: "products", label: "Products", key: "p" },
  { id: "schedules", label: "Schedules", key: "5" },
  { id: "graph", label: "Knowledge graph", key: "6" },
  { id: "memory", label: "Memory", key: "7" },
  { id: "revenue", label: "Revenue", key: "8" },
  { id: "spend", label: "Spend", key: "9" },
  { id: "hardware", label: "Hardware", key: "h" },
  { id: "events", label: "Events", key: "0" },
  { id: "settings", label: "Settings", key: "s" },
] as const;
export type ViewId = (typeof VIEWS)[number]["id"];

export const nav = $state({
  view: "overview" as ViewId,
  /** A task to open in the Tasks view; the view clears it once shown. */
  task: null as string | null,
  /** A state to filter the Tasks view by; cleared once applied. */
  tasksFilter: null as TaskStatus | null,
  /** An approval to open in the Approvals view. */
  approval: null as string | null,
  /** An agent to show in the Agents view. */
  agent: null as string | null,
});

export function go(v: ViewId) {
  nav.view = v;
}

export function openTask(id: string) {
  nav.task = id;
  nav.view = "tasks";
}

export function openTasks(status: TaskStatus) {
  nav.tasksFilter = status;
  nav.view = "tasks";
}

export function openApproval(id: string) {
  nav.approval = id;
  nav.view = "approvals";
}

export function openAgent(name: string) {
  nav.agent = name;
  nav.view = "agents";
}

/** Opens what an id names, as REEF writes them: `agent:rex`, `task:<id>`, `schedule:…`, a bare
 * task id. Returns false for what has no view of its own. */
export function openSubject(subject: string | null | undefined): boolean {
  if (!subject) return false;
  const [kind, ...rest] = subject.split(":");
  const name = rest.join(":");
  if (kind === "agent" && name) return openAgent(name), true;
  if (kind === "task" && name) return openTask(name), true;
  if (kind === "schedule") return go("schedules"), true;
  if (kind === "product" || kind === "revenue") return go("revenue"), true;
  if (kind === "global" || kind === "factory" || kind === "cap_override") return go("spend"), true;
  if (kind === "host") return go("hardware"), true;
  // A bare id (REEF's task ids are UUIDv7s): a task.
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(subject)) return openTask(subject), true;
  return false;
}
