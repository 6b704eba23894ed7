import { describe, expect, it } from "vitest";
import { parseDiff } from "./diff";

describe("parseDiff", () => {
  it("numbers both sides and counts what changed", () => {
    const [f] = parseDiff("--- a/hello.py\n+++ b/hello.py\n@@ -1,2 +1,2 @@\n import os\n-print('hi')\n+print('hello')\n");
    expect(f.path).toBe("hello.py");
    expect(f.created).toBe(false);
    expect([f.added, f.removed]).toEqual([1, 1]);
    expect(f.lines.map((l) => [l.kind, l.old, l.new])).toEqual([
      ["hunk", null, null], ["same", 1, 1], ["del", 2, null], ["add", null, 2],
    ]);
  });
  it("knows a new file and keeps REEF's notes as notes", () => {
    const [f] = parseDiff("--- /dev/null\n+++ b/src/a.rs\n@@ -0,0 +1 @@\n+fn main() {}\n\\ No newline at end of file\n");
    expect(f.created).toBe(true);
    expect(f.lines.at(-1)?.kind).toBe("note");
    const [big] = parseDiff("--- a/x\n+++ b/x\n[too large to diff here: 1 → 2 bytes]\n");
    expect(big.lines).toEqual([{ kind: "note", text: "[too large to diff here: 1 → 2 bytes]", old: null, new: null }]);
  });
  it("splits several files", () => {
    const files = parseDiff("--- a/a\n+++ b/a\n@@ -1 +1 @@\n-x\n+y\n--- /dev/null\n+++ b/b\n@@ -0,0 +1 @@\n+z\n");
    expect(files.map((f) => f.path)).toEqual(["a", "b"]);
  });
});
