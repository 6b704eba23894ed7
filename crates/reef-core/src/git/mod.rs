//! git as REEF runs it on the host, for a product's repository and its tasks' worktrees: record
//! what a builder changed, read a change back (files, commits, patches), and merge it.
//!
//! Invariants: no hook, fsmonitor, external diff or pager a repository (or an agent that wrote
//! into it) names ever runs here; a worktree is committed through the git dir `git worktree add`
//! made for it, never the one its `.git` file names (an agent can rewrite that file); a change is
//! always read between two commit ids, so a branch an agent moved afterwards changes nothing.

mod diff;

pub use diff::{flags_of, parse_numstat, ChangedFile, FileKind, Flag, DEFAULT_PROTECTED};

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git is not installed here (REEF needs it for repositories): {0}")]
    Missing(String),
    #[error("git {args} in {dir} failed: {stderr}")]
    Failed { args: String, dir: String, stderr: String },
    #[error("{0}")]
    Invalid(String),
    /// A merge stopped on conflicts in these files; nothing was merged.
    #[error("the merge conflicts in {}", .0.join(", "))]
    Conflict(Vec<String>),
}

/// The identity REEF's own commits carry.
const IDENTITY: [&str; 4] = ["-c", "user.name=REEF", "-c", "user.email=reef@localhost"];

/// A git command with nothing of the repository's that could run code on the host.
fn git() -> Command {
    let mut c = Command::new("git");
    c.args([
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "core.fsmonitor=false",
        "-c",
        "diff.external=",
        "-c",
        "core.pager=cat",
        "-c",
        "core.quotePath=false",
        "-c",
        "protocol.ext.allow=never",
    ])
    .env("GIT_TERMINAL_PROMPT", "0")
    .env("LC_ALL", "C")
    .env_remove("GIT_DIR")
    .env_remove("GIT_WORK_TREE");
    c
}

fn run(mut c: Command, dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let out = c.args(args).output().map_err(|e| GitError::Missing(e.to_string()))?;
    if !out.status.success() {
        return Err(GitError::Failed {
            args: args.iter().take(4).copied().collect::<Vec<_>>().join(" "),
            dir: dir.display().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().chars().take(2000).collect(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One commit of a change.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CommitInfo {
    pub sha: String,
    pub subject: String,
    pub author: String,
    /// RFC 3339.
    pub at: String,
}

/// A product's repository: a non-bare checkout REEF reads and merges in.
#[derive(Debug, Clone)]
pub struct Repo {
    pub path: PathBuf,
}

impl Repo {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn run(&self, args: &[&str]) -> Result<String, GitError> {
        let mut c = git();
        c.arg("-C").arg(&self.path);
        run(c, &self.path, args)
    }

    /// The commit `name` names (a branch, a remote branch, a sha).
    pub fn commit_of(&self, name: &str) -> Result<String, GitError> {
        if name.starts_with('-') || name.is_empty() {
            return Err(GitError::Invalid(format!("{name:?} is not a revision")));
        }
        Ok(self.run(&["rev-parse", "--verify", "--quiet", &format!("{name}^{{commit}}")])?.trim().to_string())
    }

    pub fn merge_base(&self, a: &str, b: &str) -> Result<String, GitError> {
        Ok(self.run(&["merge-base", a, b])?.trim().to_string())
    }

    /// The commits in `head` that `base` lacks, oldest first (at most `limit`).
    pub fn commits(&self, base: &str, head: &str, limit: usize) -> Result<Vec<CommitInfo>, GitError> {
        let range = format!("{base}..{head}");
        let out = self.run(&["log", "--reverse", "-z", "--format=%H%x1f%s%x1f%an%x1f%aI", &format!("--max-count={limit}"), &range])?;
        Ok(out
            .split('\0')
            .filter(|r| !r.trim().is_empty())
            .filter_map(|r| {
                let mut p = r.trim_start_matches('\n').split('\x1f');
                Some(CommitInfo {
                    sha: p.next()?.to_string(),
                    subject: p.next()?.to_string(),
                    author: p.next()?.to_string(),
                    at: p.next()?.to_string(),
                })
            })
            .collect())
    }

    /// The files changed between two commits with their line counts (renames followed).
    pub fn files(&self, base: &str, head: &str) -> Result<Vec<ChangedFile>, GitError> {
        let numstat = self.run(&["diff", "--no-ext-diff", "--no-textconv", "-M", "--numstat", "-z", base, head])?;
        let status = self.run(&["diff", "--no-ext-diff", "--no-textconv", "-M", "--name-status", "-z", base, head])?;
        Ok(parse_numstat(&numstat, &status))
    }

    /// The unified patch between two commits, of one file or all, cut at `max_bytes` (and whether
    /// it was cut).
    pub fn patch(&self, base: &str, head: &str, path: Option<&str>, max_bytes: usize) -> Result<(String, bool), GitError> {
        let mut args = vec!["diff", "--no-ext-diff", "--no-textconv", "--no-color", "-M", base, head];
        if let Some(p) = path {
            args.extend(["--", p]);
        }
        let mut out = self.run(&args)?;
        let cut = out.len() > max_bytes;
        if cut {
            let mut at = max_bytes;
            while !out.is_char_boundary(at) {
                at -= 1;
            }
            out.truncate(at);
        }
        Ok((out, cut))
    }

    /// The git dir `git worktree add` made for the worktree at `workdir` (named after its last
    /// component, directly under this repository's `.git/worktrees`), checked to be that.
    pub fn worktree_gitdir(&self, workdir: &Path) -> Result<PathBuf, GitError> {
        let worktrees = self.path.join(".git").join("worktrees");
        let name = workdir.file_name().ok_or_else(|| GitError::Invalid(format!("{} has no name", workdir.display())))?;
        let own = worktrees.join(name);
        let base = std::fs::canonicalize(&worktrees).map_err(|e| GitError::Invalid(format!("{}: {e}", worktrees.display())))?;
        match std::fs::canonicalize(&own) {
            Ok(c) if c.parent() == Some(base.as_path()) && c.is_dir() => Ok(own),
            _ => Err(GitError::Invalid(format!("{} is not a worktree of {}", workdir.display(), self.path.display()))),
        }
    }

    /// Commits everything in the worktree at `workdir` (new, changed and deleted files) as REEF,
    /// and answers the commit the worktree is at afterwards (its HEAD when there was nothing to commit).
    pub fn commit_worktree(&self, workdir: &Path, message: &str) -> Result<String, GitError> {
        let gitdir = self.worktree_gitdir(workdir)?;
        let wt = |args: &[&str]| {
            let mut c = git();
            c.args(IDENTITY).arg("--git-dir").arg(&gitdir).arg("--work-tree").arg(workdir).current_dir(workdir);
            run(c, workdir, args)
        };
        wt(&["add", "--all", "--", "."])?;
        let dirty = !wt(&["diff", "--cached", "--name-only", "--no-ext-diff"])?.trim().is_empty();
        if dirty {
            wt(&["commit", "--no-verify", "--no-gpg-sign", "--quiet", "-m", message])?;
        }
        Ok(wt(&["rev-parse", "--verify", "HEAD^{commit}"])?.trim().to_string())
    }

    /// Merges commit `sha` into `main` (of `remote` when one is named: fetched, merged in a
    /// scratch worktree, pushed; else the local branch, moved only if nobody moved it meanwhile).
    /// Answers the merge commit. A conflict aborts and names the files.
    pub fn merge(&self, main: &str, remote: Option<&str>, sha: &str, message: &str, scratch: &Path) -> Result<Merged, GitError> {
        let target = match remote {
            Some(r) => {
                self.run(&["fetch", "--quiet", r, &format!("+refs/heads/{main}:refs/remotes/{r}/{main}")])?;
                format!("{r}/{main}")
            }
            None => main.to_string(),
        };
        let before = self.commit_of(&target)?;
        if scratch.exists() {
            let _ = self.run(&["worktree", "remove", "--force", &scratch.display().to_string()]);
            let _ = std::fs::remove_dir_all(scratch);
        }
        self.run(&["worktree", "add", "--quiet", "--detach", &scratch.display().to_string(), &before])?;
        let done = (|| {
            let s = Repo::new(scratch);
            let mut c = git();
            c.args(IDENTITY).arg("-C").arg(scratch);
            let merged = run(c, scratch, &["merge", "--no-ff", "--no-verify", "--no-edit", "-m", message, sha]);
            if let Err(e) = merged {
                let conflicted: Vec<String> =
                    s.run(&["diff", "--name-only", "--diff-filter=U"])?.lines().map(str::to_string).filter(|l| !l.is_empty()).collect();
                let _ = s.run(&["merge", "--abort"]);
                return Err(if conflicted.is_empty() { e } else { GitError::Conflict(conflicted) });
            }
            let merge = s.commit_of("HEAD")?;
            match remote {
                Some(r) => {
                    // Refused if the remote's main moved since the fetch: nothing is overwritten.
                    s.run(&["push", "--quiet", "--no-verify", r, &format!("{merge}:refs/heads/{main}")])?;
                    let _ = self.run(&["fetch", "--quiet", r, &format!("+refs/heads/{main}:refs/remotes/{r}/{main}")]);
                }
                None => {
                    // Compare-and-swap: a main someone moved during the merge is left as it is.
                    self.run(&["update-ref", &format!("refs/heads/{main}"), &merge, &before])?;
                }
            }
            Ok(Merged { merge, before })
        })();
        let _ = self.run(&["worktree", "remove", "--force", &scratch.display().to_string()]);
        done
    }

    /// Checks `version` out, detached, in a worktree of this repository at `dir` (made or moved).
    pub fn checkout_at(&self, dir: &Path, version: &str) -> Result<(), GitError> {
        if dir.join(".git").exists() {
            let mut c = git();
            c.arg("-C").arg(dir);
            run(c, dir, &["checkout", "--quiet", "--force", "--detach", version])?;
            return Ok(());
        }
        let _ = self.run(&["worktree", "prune"]);
        self.run(&["worktree", "add", "--quiet", "--force", "--detach", &dir.display().to_string(), version]).map(|_| ())
    }
}

/// What a merge made.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The merge commit, now the tip of main.
    pub merge: String,
    /// Main before it.
    pub before: String,
}
