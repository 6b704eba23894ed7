// A change as the window shows it: side-by-side rows from a unified diff, a light syntax
// highlighter (keywords, strings, comments, numbers) chosen by file name, and the summary of a
// file that is binary or too large to show at once.
import type { DiffLine } from "./diff";

export interface SideRow { left: DiffLine | null; right: DiffLine | null; kind: "same" | "change" | "hunk" | "note" }

/** Pairs deletions with the additions that follow them, line by line, as a side-by-side view. */
export function sideBySide(lines: DiffLine[]): SideRow[] {
  const rows: SideRow[] = [];
  let i = 0;
  while (i < lines.length) {
    const l = lines[i];
    if (l.kind === "del" || l.kind === "add") {
      const dels: DiffLine[] = [], adds: DiffLine[] = [];
      while (i < lines.length && lines[i].kind === "del") dels.push(lines[i++]);
      while (i < lines.length && lines[i].kind === "add") adds.push(lines[i++]);
      for (let k = 0; k < Math.max(dels.length, adds.length); k++) rows.push({ left: dels[k] ?? null, right: adds[k] ?? null, kind: "change" });
      continue;
    }
    if (l.kind === "same") rows.push({ left: l, right: l, kind: "same" });
    else if (l.kind === "hunk") rows.push({ left: l, right: null, kind: "hunk" });
    else rows.push({ left: l, right: null, kind: "note" });
    i++;
  }
  return rows;
}

export type TokKind = "kw" | "str" | "com" | "num" | "txt";
export interface Tok { kind: TokKind; text: string }

const KEYWORDS: Record<string, string[]> = {
  py: "def class return if elif else for while in not and or import from as with try except finally raise yield lambda None True False pass break continue async await".split(" "),
  js: "function const let var return if else for while of in new class extends import from export default async await try catch finally throw null undefined true false typeof this".split(" "),
  rs: "fn let mut pub struct enum impl trait use mod match if else for while loop return self Self crate super async await move ref where as in true false None Some Ok Err".split(" "),
  go: "func package import return if else for range struct interface type var const go defer chan map nil true false".split(" "),
  sh: "if then else elif fi for do done while case esac function in export local return".split(" "),
};
const LANG: Record<string, keyof typeof KEYWORDS> = { py: "py", js: "js", ts: "js", jsx: "js", tsx: "js", mjs: "js", svelte: "js", rs: "rs", go: "go", sh: "sh", bash: "sh" };

/** The language a path is highlighted as, if any. */
export function langOf(path: string): keyof typeof KEYWORDS | null {
  const ext = path.split(".").pop()?.toLowerCase() ?? "";
  return LANG[ext] ?? null;
}

/** Splits one line into tokens; a line in an unknown language is one text token. */
export function highlight(text: string, lang: keyof typeof KEYWORDS | null): Tok[] {
  if (!lang || text.length > 2000) return [{ kind: "txt", text }];
  const kw = new Set(KEYWORDS[lang]);
  const comment = lang === "py" || lang === "sh" ? "#" : "//";
  const out: Tok[] = [];
  const push = (kind: TokKind, t: string) => { if (!t) return; const last = out[out.length - 1]; if (last && last.kind === kind) last.text += t; else out.push({ kind, text: t }); };
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (text.startsWith(comment, i)) { push("com", text.slice(i)); break; }
    if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === "\\" ? 2 : 1;
      push("str", text.slice(i, j + 1)); i = j + 1; continue;
    }
    if (/[0-9]/.test(c) && !/[A-Za-z_]/.test(text[i - 1] ?? "")) {
      let j = i; while (j < text.length && /[0-9A-Fa-fx._]/.test(text[j])) j++;
      push("num", text.slice(i, j)); i = j; continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let j = i; while (j < text.length && /[A-Za-z0-9_]/.test(text[j])) j++;
      const w = text.slice(i, j); push(kw.has(w) ? "kw" : "txt", w); i = j; continue;
    }
    push("txt", c); i++;
  }
  return out;
}

/** Lines past which a file's diff is not loaded until asked for. */
export const LARGE_FILE_LINES = 3000;

/** How a file of the change is described in the list, and whether its diff opens by itself. */
export function fileSummary(f: { added: number | null; deleted: number | null }): { text: string; binary: boolean; large: boolean } {
  if (f.added == null || f.deleted == null) return { text: "binary", binary: true, large: false };
  const large = f.added + f.deleted > LARGE_FILE_LINES;
  return { text: `+${f.added} −${f.deleted}`, binary: false, large };
}
