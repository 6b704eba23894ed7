// Unified diffs as the window shows them: one renderer (views/Diff.svelte) for files an agent
// wrote in its trace, and later for a delivery's changes. Lines keep their numbers on both sides.

export type DiffKind = "file" | "hunk" | "add" | "del" | "same" | "note";
export interface DiffLine { kind: DiffKind; text: string; old: number | null; new: number | null }
export interface DiffFile { path: string; created: boolean; added: number; removed: number; lines: DiffLine[] }

const HUNK = /^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@/;

/** Splits a unified diff (one or more files) into files and numbered lines. */
export function parseDiff(text: string): DiffFile[] {
  const files: DiffFile[] = [];
  let cur: DiffFile | null = null;
  let oldNo = 0, newNo = 0;
  const lines = text.replace(/\n$/, "").split("\n");
  // A git header ("diff --git a/x b/x") opens a file whose ---/+++ lines, if any, follow.
  let headed = false;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l.startsWith("diff --git ")) {
      const m = / b\/(.*)$/.exec(l);
      cur = { path: m ? m[1] : "", created: false, added: 0, removed: 0, lines: [] };
      files.push(cur);
      headed = true;
      continue;
    }
    if (headed && /^(index |similarity index |rename from |rename to |old mode |new mode |deleted file mode )/.test(l)) continue;
    if (headed && l.startsWith("new file mode ")) { cur!.created = true; continue; }
    if (l.startsWith("--- ") && lines[i + 1]?.startsWith("+++ ")) {
      const from = l.slice(4).trim(), to = lines[i + 1].slice(4).trim();
      const path = to === "/dev/null" ? from.replace(/^a\//, "") : to.replace(/^b\//, "");
      if (headed && cur && cur.lines.length === 0) { cur.path = path; cur.created = cur.created || from === "/dev/null"; }
      else { cur = { path, created: from === "/dev/null", added: 0, removed: 0, lines: [] }; files.push(cur); }
      headed = false;
      i++;
      continue;
    }
    headed = false;
    if (!cur) { cur = { path: "", created: false, added: 0, removed: 0, lines: [] }; files.push(cur); }
    const h = HUNK.exec(l);
    if (h) {
      oldNo = Number(h[1]); newNo = Number(h[2]);
      cur.lines.push({ kind: "hunk", text: l, old: null, new: null });
    } else if (l.startsWith("+")) {
      cur.added++;
      cur.lines.push({ kind: "add", text: l.slice(1), old: null, new: newNo++ });
    } else if (l.startsWith("-")) {
      cur.removed++;
      cur.lines.push({ kind: "del", text: l.slice(1), old: oldNo++, new: null });
    } else if (l.startsWith(" ")) {
      cur.lines.push({ kind: "same", text: l.slice(1), old: oldNo++, new: newNo++ });
    } else {
      // "\ No newline at end of file", REEF's own notes ("[too large to diff…]", "[… cut by REEF…]").
      cur.lines.push({ kind: "note", text: l, old: null, new: null });
    }
  }
  return files;
}
