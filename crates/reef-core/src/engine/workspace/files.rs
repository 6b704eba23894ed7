//! The file tools: every path resolved by `cap-std` beneath the task's directory, so `..`,
//! absolute paths and symlinks (an agent can make one with `run_command`) never lead out of it.

use super::{Done, WorkspaceError};
use cap_std::fs::Dir;
use serde_json::{json, Value};
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

/// Bytes one `read_file` answers at most.
const READ_MAX: usize = 64 * 1024;
/// Lines one `read_file` answers by default and at most.
const READ_LINES: usize = 400;
const READ_LINES_MAX: usize = 2_000;
/// The largest file a write or edit makes.
const WRITE_MAX: usize = 1024 * 1024;
/// Entries one `list_files` answers at most.
const LIST_MAX: usize = 500;
/// What one search looks at and answers at most.
const SEARCH_FILES: usize = 5_000;
const SEARCH_FILE_BYTES: u64 = 1024 * 1024;
const SEARCH_MATCHES: usize = 100;
/// Files past this size are not diffed line by line (the diff says how the size changed).
const DIFF_MAX: usize = 256 * 1024;
/// The largest file `read_file` opens (it answers at most `READ_MAX` of it).
const READ_FILE_MAX: u64 = 16 * 1024 * 1024;
/// Folders one list or search walks, entries it reads from one folder, bytes a search reads.
const WALK_DIRS: usize = 2_000;
const DIR_ENTRIES: usize = 10_000;
const SEARCH_BYTES: u64 = 64 * 1024 * 1024;
/// `O_NONBLOCK` (Linux): opening a FIFO the agent made never waits for a writer.
const O_NONBLOCK: i32 = 0o4000;

pub(super) fn open_root(root: &Path) -> Result<Dir, WorkspaceError> {
    Dir::open_ambient_dir(root, cap_std::ambient_authority())
        .map_err(|e| WorkspaceError::Io(format!("the task's directory {} cannot be opened: {e}", root.display())))
}

fn text<'a>(args: &'a Value, key: &str) -> Result<&'a str, WorkspaceError> {
    args.get(key).and_then(Value::as_str).ok_or_else(|| WorkspaceError::Invalid(format!("{key} is required and must be a string")))
}

/// A path the agent named, checked before cap-std resolves it (for a clear refusal); `.` for none.
fn relative(raw: &str) -> Result<PathBuf, WorkspaceError> {
    let shown = || raw.chars().take(200).collect::<String>();
    // No NUL, and no newline or other control character: a path is shown in diff headers and
    // answers, where one would forge lines.
    if raw.chars().any(char::is_control) {
        return Err(WorkspaceError::Invalid("a path may not hold control characters (NUL, newline, …)".into()));
    }
    let p = Path::new(if raw.trim().is_empty() { "." } else { raw });
    if p.is_absolute() {
        return Err(WorkspaceError::Outside(shown()));
    }
    let mut depth: i64 = 0;
    for c in p.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return Err(WorkspaceError::Outside(shown()));
        }
    }
    Ok(p.to_path_buf())
}

fn under_git(p: &Path) -> bool {
    p.components().any(|c| matches!(c, Component::Normal(n) if n == ".git"))
}

/// An I/O error on `path` as the model should read it: a symlink out is "outside".
fn io(path: &Path, e: std::io::Error) -> WorkspaceError {
    let shown = path.display().to_string();
    match e.kind() {
        ErrorKind::NotFound => WorkspaceError::NotFound(shown),
        // cap-std's answer to a path (or a link) that leads out of the directory.
        ErrorKind::PermissionDenied if e.to_string().contains("outside") => WorkspaceError::Outside(shown),
        _ => WorkspaceError::Io(format!("{shown}: {e}")),
    }
}

pub(super) fn list(dir: &Dir, args: &Value) -> Result<Value, WorkspaceError> {
    let path = relative(args.get("path").and_then(Value::as_str).unwrap_or("."))?;
    let recursive = args.get("recursive").and_then(Value::as_bool).unwrap_or(false);
    let mut out = vec![];
    let mut pending = vec![path.clone()];
    let (mut more, mut walked) = (false, 0usize);
    while let Some(folder) = pending.pop() {
        walked += 1;
        if walked > WALK_DIRS {
            more = true;
            break;
        }
        let (mut names, cut) = entries(dir, &folder)?;
        more |= cut;
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, meta) in names {
            if out.len() >= LIST_MAX {
                more = true;
                break;
            }
            let rel = folder.join(&name);
            let kind = if meta.is_symlink() {
                "link"
            } else if meta.is_dir() {
                "dir"
            } else {
                "file"
            };
            if kind == "dir" && recursive {
                pending.push(rel.clone());
            }
            out.push(json!({"path": clean(&rel), "kind": kind, "size": meta.len()}));
        }
    }
    Ok(json!({"path": clean(&path), "entries": out, "more": more}))
}

/// A folder's entries (but `.git`) with their metadata, at most `DIR_ENTRIES`; whether there were more.
fn entries(dir: &Dir, folder: &Path) -> Result<(Vec<(String, cap_std::fs::Metadata)>, bool), WorkspaceError> {
    let mut out = vec![];
    for e in dir.read_dir(folder).map_err(|e| io(folder, e))?.flatten() {
        if out.len() >= DIR_ENTRIES {
            return Ok((out, true));
        }
        let name = e.file_name().to_string_lossy().into_owned();
        if name != ".git" {
            if let Ok(m) = e.metadata() {
                out.push((name, m));
            }
        }
    }
    Ok((out, false))
}

/// A relative path as the model wrote it, without a leading `./`.
fn clean(p: &Path) -> String {
    let s = p.display().to_string();
    s.strip_prefix("./").map(String::from).unwrap_or(s)
}

/// The bytes of a regular file, at most `limit`: opened without waiting (a FIFO never blocks
/// REEF) and checked on the open handle (what was opened is what is read).
fn read_bytes(dir: &Dir, path: &Path, limit: u64) -> Result<Vec<u8>, WorkspaceError> {
    use cap_std::fs::OpenOptionsExt;
    use std::io::Read;
    let f = dir.open_with(path, cap_std::fs::OpenOptions::new().read(true).custom_flags(O_NONBLOCK)).map_err(|e| io(path, e))?;
    let meta = f.metadata().map_err(|e| io(path, e))?;
    if meta.is_dir() {
        return Err(WorkspaceError::Invalid(format!("{} is a folder: use list_files", path.display())));
    }
    if !meta.is_file() {
        return Err(WorkspaceError::Invalid(format!("{} is not a regular file (a pipe, socket or device)", path.display())));
    }
    if meta.len() > limit {
        return Err(WorkspaceError::TooLarge { what: path.display().to_string(), size: meta.len(), limit });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    f.into_std().take(limit).read_to_end(&mut bytes).map_err(|e| io(path, e))?;
    Ok(bytes)
}

fn read_text(dir: &Dir, path: &Path, limit: u64) -> Result<String, WorkspaceError> {
    String::from_utf8(read_bytes(dir, path, limit)?).map_err(|_| WorkspaceError::Invalid(format!("{} is not UTF-8 text", path.display())))
}

pub(super) fn read(dir: &Dir, args: &Value) -> Result<Value, WorkspaceError> {
    let path = relative(text(args, "path")?)?;
    let whole = read_text(dir, &path, READ_FILE_MAX)?;
    let offset = args.get("offset").and_then(Value::as_u64).unwrap_or(1).max(1) as usize;
    let limit = (args.get("limit").and_then(Value::as_u64).unwrap_or(READ_LINES as u64) as usize).clamp(1, READ_LINES_MAX);
    let total = whole.lines().count();
    let mut content = String::new();
    let mut last = offset.saturating_sub(1);
    for line in whole.lines().skip(offset - 1).take(limit) {
        if content.len() + line.len() + 1 > READ_MAX {
            break;
        }
        content.push_str(line);
        content.push('\n');
        last += 1;
    }
    Ok(json!({"path": clean(&path), "from_line": offset, "to_line": last, "total_lines": total, "more": last < total, "content": content}))
}

fn writable(raw: &str) -> Result<PathBuf, WorkspaceError> {
    let path = relative(raw)?;
    if under_git(&path) {
        return Err(WorkspaceError::GitInternals(raw.chars().take(200).collect()));
    }
    if path.components().all(|c| matches!(c, Component::CurDir)) {
        return Err(WorkspaceError::Invalid("name a file to write".into()));
    }
    Ok(path)
}

/// Writes `new` at `path` (its folders made) and answers with the diff from `old`.
fn put(dir: &Dir, path: &Path, old: Option<&str>, new: &str) -> Result<Done, WorkspaceError> {
    if new.len() > WRITE_MAX {
        return Err(WorkspaceError::TooLarge { what: "the content".into(), size: new.len() as u64, limit: WRITE_MAX as u64 });
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        dir.create_dir_all(parent).map_err(|e| {
            // A folder on the way that is a link out of the directory: say so, not "exists".
            let out = parent.ancestors().any(|a| {
                !a.as_os_str().is_empty()
                    && dir.symlink_metadata(a).is_ok_and(|m| m.is_symlink())
                    && dir.metadata(a).is_err_and(|e| e.kind() == ErrorKind::PermissionDenied)
            });
            if out {
                WorkspaceError::Outside(clean(path))
            } else {
                io(parent, e)
            }
        })?;
    }
    // A link at the path itself is replaced, never followed: the file written is this one.
    if dir.symlink_metadata(path).is_ok_and(|m| m.is_symlink()) {
        dir.remove_file(path).map_err(|e| io(path, e))?;
    }
    dir.write(path, new.as_bytes()).map_err(|e| io(path, e))?;
    let shown = clean(path);
    let diff = diff(&shown, old, new);
    let (added, removed) = counts(&diff);
    Ok(Done {
        answer: json!({"path": shown, "bytes": new.len(), "created": old.is_none(), "lines_added": added, "lines_removed": removed}),
        diff: Some(diff),
    })
}

pub(super) fn write(dir: &Dir, args: &Value) -> Result<Done, WorkspaceError> {
    let path = writable(text(args, "path")?)?;
    let content = text(args, "content")?;
    let old = match dir.symlink_metadata(&path) {
        Ok(m) if m.is_file() => Some(read_text(dir, &path, READ_FILE_MAX).unwrap_or_default()),
        Ok(m) if m.is_dir() => return Err(WorkspaceError::Invalid(format!("{} is a folder", path.display()))),
        // A link is replaced; a pipe, socket or device is never opened for writing.
        Ok(m) if !m.is_symlink() => {
            return Err(WorkspaceError::Invalid(format!("{} is not a regular file (a pipe, socket or device)", path.display())))
        }
        _ => None,
    };
    put(dir, &path, old.as_deref(), content)
}

pub(super) fn edit(dir: &Dir, args: &Value) -> Result<Done, WorkspaceError> {
    let path = writable(text(args, "path")?)?;
    let (old_text, new_text) = (text(args, "old_text")?, text(args, "new_text")?);
    if old_text.is_empty() {
        return Err(WorkspaceError::Invalid("old_text is empty: use write_file to make a file".into()));
    }
    let old = read_text(dir, &path, WRITE_MAX as u64)?;
    match old.matches(old_text).count() {
        0 => {
            Err(WorkspaceError::Invalid(format!("old_text does not occur in {}: read the file and copy the text exactly", path.display())))
        }
        1 => put(dir, &path, Some(&old), &old.replacen(old_text, new_text, 1)),
        n => Err(WorkspaceError::Invalid(format!("old_text occurs {n} times in {}: give more of the text around it", path.display()))),
    }
}

pub(super) fn search(dir: &Dir, args: &Value) -> Result<Value, WorkspaceError> {
    let pattern = text(args, "pattern")?;
    let re = regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| WorkspaceError::Invalid(format!("pattern is not a regular expression: {e}")))?;
    let start = relative(args.get("path").and_then(Value::as_str).unwrap_or("."))?;
    let (mut matches, mut visited, mut more, mut walked, mut read) = (vec![], 0usize, false, 0usize, 0u64);
    let mut pending = vec![start.clone()];
    'walk: while let Some(folder) = pending.pop() {
        walked += 1;
        if walked > WALK_DIRS {
            more = true;
            break;
        }
        let Ok((mut names, cut)) = entries(dir, &folder) else { continue };
        more |= cut;
        names.sort_by(|a, b| b.0.cmp(&a.0));
        for (name, meta) in names {
            let rel = folder.join(&name);
            if meta.is_dir() {
                pending.push(rel);
                continue;
            }
            if !meta.is_file() || meta.len() > SEARCH_FILE_BYTES {
                continue;
            }
            visited += 1;
            read += meta.len();
            if visited > SEARCH_FILES || read > SEARCH_BYTES {
                more = true;
                break 'walk;
            }
            let Ok(bytes) = read_bytes(dir, &rel, SEARCH_FILE_BYTES) else { continue };
            if bytes.iter().take(8192).any(|b| *b == 0) {
                continue; // binary
            }
            let body = String::from_utf8_lossy(&bytes);
            for (i, line) in body.lines().enumerate() {
                if re.is_match(line) {
                    if matches.len() >= SEARCH_MATCHES {
                        more = true;
                        break 'walk;
                    }
                    let shown: String = line.chars().take(300).collect();
                    matches.push(json!({"path": clean(&rel), "line": i + 1, "text": shown}));
                }
            }
        }
    }
    Ok(json!({"pattern": pattern, "matches": matches, "more": more}))
}

/// A unified diff of one file, `a/` before and `b/` after (`/dev/null` for a new file).
pub fn diff(path: &str, old: Option<&str>, new: &str) -> String {
    let before = old.unwrap_or("");
    if before.len() > DIFF_MAX || new.len() > DIFF_MAX {
        return format!("--- a/{path}\n+++ b/{path}\n[too large to diff here: {} → {} bytes]\n", before.len(), new.len());
    }
    let from = if old.is_some() { format!("a/{path}") } else { "/dev/null".to_string() };
    similar::TextDiff::from_lines(before, new).unified_diff().context_radius(3).header(&from, &format!("b/{path}")).to_string()
}

/// Lines added and removed by a unified diff.
fn counts(diff: &str) -> (usize, usize) {
    let body = diff.lines().filter(|l| !l.starts_with("+++") && !l.starts_with("---"));
    body.fold((0, 0), |(a, r), l| match l.as_bytes().first() {
        Some(b'+') => (a + 1, r),
        Some(b'-') => (a, r + 1),
        _ => (a, r),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> (tempfile::TempDir, Dir) {
        let t = tempfile::tempdir().unwrap();
        let d = open_root(t.path()).unwrap();
        (t, d)
    }

    #[test]
    fn paths_out_of_the_task_directory_are_refused_whatever_their_spelling() {
        let (t, d) = dir();
        let outside = t.path().parent().unwrap().join(format!("reef-outside-{}", std::process::id()));
        std::fs::write(&outside, "secret").unwrap();
        std::os::unix::fs::symlink(&outside, t.path().join("leak")).unwrap();
        std::os::unix::fs::symlink("/etc", t.path().join("etc")).unwrap();
        for p in ["/etc/passwd", "../x", "a/../../x", "leak", "etc/passwd"] {
            let e = read(&d, &json!({"path": p})).unwrap_err();
            assert_eq!(e.code(), "outside_workspace", "{p}: {e}");
        }
        // Writing through a link replaces the link; the file it pointed to is untouched.
        write(&d, &json!({"path": "leak", "content": "mine"})).unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "secret");
        assert_eq!(std::fs::read_to_string(t.path().join("leak")).unwrap(), "mine");
        let e = write(&d, &json!({"path": "etc/x", "content": "y"})).unwrap_err();
        assert_eq!(e.code(), "outside_workspace", "{e}");
        let e = write(&d, &json!({"path": ".git/config", "content": "[core]\nfsmonitor = evil"})).unwrap_err();
        assert_eq!(e.code(), "git_internals", "{e}");
        std::fs::remove_file(outside).unwrap();
    }

    #[test]
    fn a_pipe_or_a_path_with_a_newline_never_blocks_or_forges_anything() {
        let (t, d) = dir();
        let made = std::process::Command::new("mkfifo").arg(t.path().join("p")).status().unwrap();
        assert!(made.success());
        // Nobody writes to the pipe: a blocking open would hang here for ever.
        let e = read(&d, &json!({"path": "p"})).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let e = write(&d, &json!({"path": "p", "content": "x"})).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(search(&d, &json!({"pattern": "x"})).unwrap()["matches"].as_array().unwrap().is_empty());
        let e = write(&d, &json!({"path": "a\n+++ b/other", "content": "x"})).unwrap_err();
        assert_eq!(e.code(), "invalid", "{e}");
    }

    #[test]
    fn writes_and_edits_answer_with_the_diff_and_edits_need_one_exact_match() {
        let (t, d) = dir();
        let w = write(&d, &json!({"path": "src/main.py", "content": "print('hi')\n"})).unwrap();
        assert!(w.diff.as_ref().unwrap().contains("+++ b/src/main.py") && w.diff.as_ref().unwrap().contains("--- /dev/null"));
        assert_eq!(w.answer["created"], true);
        let e = edit(&d, &json!({"path": "src/main.py", "old_text": "print('hi')", "new_text": "print('hello')"})).unwrap();
        let diff = e.diff.unwrap();
        assert!(diff.contains("-print('hi')") && diff.contains("+print('hello')"), "{diff}");
        assert_eq!((e.answer["lines_added"].as_u64(), e.answer["lines_removed"].as_u64()), (Some(1), Some(1)));
        assert_eq!(std::fs::read_to_string(t.path().join("src/main.py")).unwrap(), "print('hello')\n");
        write(&d, &json!({"path": "two.txt", "content": "a\na\n"})).unwrap();
        assert!(edit(&d, &json!({"path": "two.txt", "old_text": "a", "new_text": "b"})).unwrap_err().to_string().contains("2 times"));
        assert_eq!(edit(&d, &json!({"path": "none.txt", "old_text": "a", "new_text": "b"})).unwrap_err().code(), "not_found");
    }

    #[test]
    fn reads_lists_and_searches_stay_within_their_limits() {
        let (_t, d) = dir();
        let body: String = (1..=1000).map(|i| format!("line {i}\n")).collect();
        write(&d, &json!({"path": "big.txt", "content": body})).unwrap();
        write(&d, &json!({"path": "a/b/c.rs", "content": "fn main() { todo() }\n"})).unwrap();
        let r = read(&d, &json!({"path": "big.txt", "offset": 10, "limit": 5})).unwrap();
        assert_eq!(r["content"], "line 10\nline 11\nline 12\nline 13\nline 14\n");
        assert_eq!((r["total_lines"].as_u64(), r["more"].as_bool()), (Some(1000), Some(true)));
        let l = list(&d, &json!({"recursive": true})).unwrap();
        let paths: Vec<&str> = l["entries"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
        assert!(paths.contains(&"a/b/c.rs") && paths.contains(&"big.txt"), "{paths:?}");
        let s = search(&d, &json!({"pattern": r"todo\(\)"})).unwrap();
        assert_eq!(s["matches"][0]["path"], "a/b/c.rs");
        let s = search(&d, &json!({"pattern": "line"})).unwrap();
        assert_eq!((s["matches"].as_array().unwrap().len(), s["more"].as_bool()), (SEARCH_MATCHES, Some(true)));
        assert_eq!(search(&d, &json!({"pattern": "("})).unwrap_err().code(), "invalid");
        let huge = "x".repeat(WRITE_MAX + 1);
        assert_eq!(write(&d, &json!({"path": "huge", "content": huge})).unwrap_err().code(), "too_large");
    }
}
