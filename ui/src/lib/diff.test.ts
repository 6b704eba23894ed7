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

describe("git's own diffs", () => {
  it("read a git header as the file's start, a deleted file by its old name, and a binary file as a note", () => {
    const text = "diff --git a/CHANGELOG.md b/CHANGELOG.md\ndeleted file mode 100644\nindex bf77312..0000000\n--- a/CHANGELOG.md\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-## 0.3.0\n-- embedded checkout\ndiff --git a/src/t.ts b/src/t.ts\nnew file mode 100644\nindex 0000000..41bb7b5\n--- /dev/null\n+++ b/src/t.ts\n@@ -0,0 +1 @@\n+export const T = 300;\ndiff --git a/logo.png b/logo.png\nindex 1..2 100644\nBinary files a/logo.png and b/logo.png differ";
    const f = parseDiff(text);
    expect(f.map((x) => [x.path, x.created, x.added, x.removed])).toEqual([["CHANGELOG.md", false, 0, 2], ["src/t.ts", true, 1, 0], ["logo.png", false, 0, 0]]);
    expect(f[0].lines[0].kind).toBe("hunk");
    expect(f[2].lines).toEqual([{ kind: "note", text: "Binary files a/logo.png and b/logo.png differ", old: null, new: null }]);
  });
});
