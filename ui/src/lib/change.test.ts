import { describe, expect, it } from "vitest";
import { parseDiff } from "./diff";
import { fileSummary, highlight, langOf, sideBySide } from "./change";

describe("side by side", () => {
  it("pairs deletions with the additions after them and keeps context on both sides", () => {
    const [f] = parseDiff("--- a/calc.py\n+++ b/calc.py\n@@ -1,3 +1,3 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n+# fixed\n x = 1\n");
    const rows = sideBySide(f.lines);
    expect(rows.map((r) => r.kind)).toEqual(["hunk", "same", "change", "change", "same"]);
    expect(rows[2].left?.text).toBe("    return a - b");
    expect(rows[2].right?.text).toBe("    return a + b");
    expect(rows[3].left).toBeNull();
    expect(rows[3].right?.new).toBe(3);
    expect(rows[4].left?.old).toBe(3);
  });
});

describe("highlight", () => {
  it("marks keywords, strings, numbers and comments by language, and leaves unknown files plain", () => {
    const t = highlight("def f(x): return 'a#b' + 42  # done", langOf("m.py"));
    expect(t.filter((x) => x.kind === "kw").map((x) => x.text)).toEqual(["def", "return"]);
    expect(t.find((x) => x.kind === "str")?.text).toBe("'a#b'");
    expect(t.find((x) => x.kind === "num")?.text).toBe("42");
    expect(t[t.length - 1]).toEqual({ kind: "com", text: "# done" });
    expect(t.map((x) => x.text).join("")).toBe("def f(x): return 'a#b' + 42  # done");
    expect(highlight("let x = 1", langOf("notes.txt"))).toEqual([{ kind: "txt", text: "let x = 1" }]);
  });
});

describe("file summary", () => {
  it("says binary for files without line counts and holds back very large ones", () => {
    expect(fileSummary({ added: null, deleted: null })).toEqual({ text: "binary", binary: true, large: false });
    expect(fileSummary({ added: 2, deleted: 1 }).large).toBe(false);
    expect(fileSummary({ added: 5000, deleted: 0 }).large).toBe(true);
  });
});
