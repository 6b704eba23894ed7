//! A change's file list read from git's `-z` output, and the flags a change earns by touching
//! tests or the definitions of the checks that judge it (never merged without a person).

use serde::{Deserialize, Serialize};

/// How a file changed.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Added,
    Modified,
    Deleted,
    Renamed,
    Copied,
    /// A type change (file ↔ symlink) or anything else git reports.
    Other,
}

/// One file of a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangedFile {
    pub path: String,
    /// The path before a rename or copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub kind: FileKind,
    /// Lines added and deleted; both `None` for a binary file.
    pub added: Option<u64>,
    pub deleted: Option<u64>,
}

impl ChangedFile {
    pub fn binary(&self) -> bool {
        self.added.is_none()
    }
}

/// Reads `git diff --raw --numstat -z` (one run: each file's raw record with its status, then
/// its line counts).
pub fn parse_raw_numstat(out: &str) -> Vec<ChangedFile> {
    let toks: Vec<&str> = out.split('\0').map(|t| t.trim_start_matches('\n')).collect();
    let mut kinds = std::collections::HashMap::new();
    let mut files = vec![];
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        i += 1;
        if t.is_empty() {
            continue;
        }
        if t.starts_with(':') {
            // ":<modes> <shas> <status>", then one path, or two for a rename or copy.
            let kind = match t.rsplit(' ').next().and_then(|s| s.chars().next()) {
                Some('A') => FileKind::Added,
                Some('M') => FileKind::Modified,
                Some('D') => FileKind::Deleted,
                Some('R') => FileKind::Renamed,
                Some('C') => FileKind::Copied,
                _ => FileKind::Other,
            };
            let mut path = toks.get(i).copied().unwrap_or_default();
            i += 1;
            if matches!(kind, FileKind::Renamed | FileKind::Copied) {
                path = toks.get(i).copied().unwrap_or_default();
                i += 1;
            }
            kinds.insert(path.to_string(), kind);
            continue;
        }
        let mut f = t.splitn(3, '\t');
        let (a, d, p) = (f.next().unwrap_or("-"), f.next().unwrap_or("-"), f.next().unwrap_or(""));
        // A rename or copy: the path field is empty and the two paths follow.
        let (from, path) = if p.is_empty() {
            i += 2;
            (toks.get(i - 2).map(|x| x.to_string()), toks.get(i - 1).copied().unwrap_or_default().to_string())
        } else {
            (None, p.to_string())
        };
        let kind = kinds.get(&path).copied().unwrap_or(if from.is_some() { FileKind::Renamed } else { FileKind::Modified });
        files.push(ChangedFile { path, from, kind, added: a.parse().ok(), deleted: d.parse().ok() });
    }
    files
}

/// What a change touched that its checks cannot vouch for.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Flag {
    /// A test file deleted (or renamed away from a test's name).
    TestsDeleted { path: String },
    /// A test file changed or added.
    TestsEdited { path: String },
    /// A file that defines how the checks run (a build file, CI, the product's protected paths).
    ChecksEdited { path: String },
    /// A binary file: its contents are not shown to the reviewer or the person deciding.
    Binary { path: String },
    /// More lines than a reviewer is shown whole (`path` says how many).
    Large { path: String },
}

impl Flag {
    pub fn path(&self) -> &str {
        match self {
            Flag::TestsDeleted { path }
            | Flag::TestsEdited { path }
            | Flag::ChecksEdited { path }
            | Flag::Binary { path }
            | Flag::Large { path } => path,
        }
    }
    pub fn describe(&self) -> String {
        match self {
            Flag::TestsDeleted { path } => format!("deletes test {path}"),
            Flag::TestsEdited { path } => format!("edits test {path}"),
            Flag::ChecksEdited { path } => format!("edits check definition {path}"),
            Flag::Binary { path } => format!("changes binary file {path} (not shown)"),
            Flag::Large { path } => format!("is too large to review whole ({path})"),
        }
    }
}

/// Files that define how checks run (or what runs during them), whatever the product adds with
/// `protected`; matched without regard to case.
pub const DEFAULT_PROTECTED: [&str; 40] = [
    "makefile",
    "**/makefile",
    "gnumakefile",
    "**/gnumakefile",
    "**/*.mk",
    "package.json",
    "**/package.json",
    "package-lock.json",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "tox.ini",
    "pytest.ini",
    ".pytest.ini",
    "noxfile.py",
    "**/conftest.py",
    "**/sitecustomize.py",
    "**/usercustomize.py",
    "**/*.pth",
    "cargo.toml",
    "**/cargo.toml",
    "**/build.rs",
    ".cargo/**",
    "rust-toolchain*",
    ".github/**",
    ".gitlab-ci.yml",
    ".reef/**",
    "**/jest.config.*",
    "**/vitest.config.*",
    "**/vite.config.*",
    "**/babel.config.*",
    "**/tsconfig*.json",
    "**/.eslintrc*",
    "**/eslint.config.*",
    ".gitattributes",
    "**/.gitattributes",
    ".gitmodules",
    ".npmrc",
    "go.mod",
    "**/*.sh",
];

/// Lines of change past which a reviewer is not shown the whole of it.
pub const REVIEW_LINES: u64 = 2000;

fn is_test(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let mut parts = lower.split('/').collect::<Vec<_>>();
    let name = parts.pop().unwrap_or_default();
    let in_test_dir = parts.iter().any(|d| matches!(*d, "test" | "tests" | "__tests__" | "spec" | "specs" | "testdata"));
    let stem = name.split('.').next().unwrap_or(name);
    in_test_dir
        || stem.starts_with("test_")
        || stem.ends_with("_test")
        || stem.ends_with("_spec")
        || stem == "test"
        || name.contains(".test.")
        || name.contains(".spec.")
        || name.ends_with("test.go")
        || (stem.ends_with("test") && name.ends_with(".java"))
}

/// The flags a change earns: test files deleted or edited, check definitions edited (the
/// defaults and `protected`, glob patterns matched against the whole path).
pub fn flags_of(files: &[ChangedFile], protected: &[String]) -> Vec<Flag> {
    let opts = glob::MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: false };
    let patterns: Vec<glob::Pattern> = DEFAULT_PROTECTED
        .iter()
        .map(|s| s.to_string())
        .chain(protected.iter().map(|p| p.to_lowercase()))
        .filter_map(|p| glob::Pattern::new(&p).ok())
        .collect();
    let mut out = vec![];
    let lines: u64 = files.iter().map(|f| f.added.unwrap_or(0) + f.deleted.unwrap_or(0)).sum();
    if lines > REVIEW_LINES {
        out.push(Flag::Large { path: format!("{lines} lines in {} files", files.len()) });
    }
    for f in files {
        let touched: Vec<String> = std::iter::once(f.path.as_str()).chain(f.from.as_deref()).map(str::to_lowercase).collect();
        if f.binary() {
            out.push(Flag::Binary { path: f.path.clone() });
        }
        if touched.iter().any(|p| patterns.iter().any(|g| g.matches_with(p, opts))) {
            out.push(Flag::ChecksEdited { path: f.path.clone() });
        }
        let gone = matches!(f.kind, FileKind::Deleted) || (f.kind == FileKind::Renamed && !is_test(&f.path));
        if gone && touched.iter().any(|p| is_test(p)) {
            out.push(Flag::TestsDeleted { path: f.from.clone().unwrap_or_else(|| f.path.clone()) });
        } else if is_test(&f.path) {
            out.push(Flag::TestsEdited { path: f.path.clone() });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_raw_and_numstat_run_becomes_files_with_renames_and_binaries() {
        // As `git diff --raw --numstat -z -M` prints it.
        let raw = ":100644 100644 1111111 2222222 M\x00src/a.rs\x00:000000 100644 0000000 3333333 A\x00logo.png\x00\
                   :100644 100644 4444444 4444444 R100\x00old/b.rs\x00new/b.rs\x00:100644 000000 5555555 0000000 D\x00gone.txt\x00";
        let numstat = "3\t1\tsrc/a.rs\x00-\t-\tlogo.png\x000\t0\t\x00old/b.rs\x00new/b.rs\x000\t4\tgone.txt\x00";
        let f = parse_raw_numstat(&format!("{raw}{numstat}"));
        assert_eq!(f.len(), 4);
        assert_eq!((f[0].path.as_str(), f[0].kind, f[0].added, f[0].deleted), ("src/a.rs", FileKind::Modified, Some(3), Some(1)));
        assert!(f[1].binary() && f[1].kind == FileKind::Added);
        assert_eq!((f[2].path.as_str(), f[2].from.as_deref(), f[2].kind), ("new/b.rs", Some("old/b.rs"), FileKind::Renamed));
        assert_eq!(f[3].kind, FileKind::Deleted);
    }

    #[test]
    fn touching_tests_or_check_definitions_is_flagged_and_plain_code_is_not() {
        let file = |path: &str, kind| ChangedFile { path: path.into(), from: None, kind, added: Some(1), deleted: Some(1) };
        let files = vec![
            file("calc.py", FileKind::Modified),
            file("test_calc.py", FileKind::Deleted),
            file("tests/unit/helpers.py", FileKind::Modified),
            file("web/src/app.test.ts", FileKind::Added),
            file("Makefile", FileKind::Modified),
            file(".github/workflows/ci.yml", FileKind::Modified),
            file("ci/run-checks.sh", FileKind::Modified),
            ChangedFile {
                path: "calc_helpers.py".into(),
                from: Some("calc_test.go".into()),
                kind: FileKind::Renamed,
                added: Some(0),
                deleted: Some(0),
            },
            file("GNUmakefile", FileKind::Added),
            file("sub/.Cargo/../build.rs", FileKind::Added),
            ChangedFile { path: "logo.png".into(), from: None, kind: FileKind::Added, added: None, deleted: None },
        ];
        let flags = flags_of(&files, &["ci/*.sh".to_string()]);
        let said: Vec<String> = flags.iter().map(Flag::describe).collect();
        assert_eq!(
            said,
            [
                "deletes test test_calc.py",
                "edits test tests/unit/helpers.py",
                "edits test web/src/app.test.ts",
                "edits check definition Makefile",
                "edits check definition .github/workflows/ci.yml",
                "edits check definition ci/run-checks.sh",
                "deletes test calc_test.go",
                "edits check definition GNUmakefile",
                "edits check definition sub/.Cargo/../build.rs",
                "changes binary file logo.png (not shown)",
            ]
        );
        let big =
            vec![ChangedFile { path: "gen.rs".into(), from: None, kind: FileKind::Added, added: Some(REVIEW_LINES + 1), deleted: Some(0) }];
        assert_eq!(flags_of(&big, &[]), vec![Flag::Large { path: format!("{} lines in 1 files", REVIEW_LINES + 1) }]);
        assert!(flags_of(&files[..1], &[]).is_empty(), "plain code earns no flag");
    }
}
