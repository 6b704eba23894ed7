//! git as REEF runs it on the host for the delivery loop. Every change is read, checked, merged
//! and shipped from a **mirror**: a bare repository of REEF's own in its data dir, which no agent
//! reaches. Objects enter it only by `git fetch` (which hashes what it receives) from the
//! product's remote, and by REEF's own snapshot of a worktree's files.
//!
//! Invariants: nothing of an agent's `.git` is ever read (its worktree is a directory of files:
//! its refs, index, object store and `commondir` may all be forged); no hook, fsmonitor, filter,
//! external diff or pager any repository names runs here (the mirror's config is REEF's, and no
//! repository's is read); every git command has a time limit and bounded output, so a hostile
//! tree cannot hang or swamp REEF; a change is always named by commit ids, never by a ref.

mod diff;

pub use diff::{flags_of, parse_raw_numstat, ChangedFile, FileKind, Flag, DEFAULT_PROTECTED};

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git is not installed here (REEF needs it for repositories): {0}")]
    Missing(String),
    #[error("git {args} failed: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("git {0} ran past its time limit and was stopped")]
    TimedOut(String),
    #[error("{0}")]
    Invalid(String),
    /// A merge stopped on conflicts in these files; nothing was merged.
    #[error("the merge conflicts in {}", .0.join(", "))]
    Conflict(Vec<String>),
}

/// The identity REEF's own commits carry.
const IDENTITY: [(&str, &str); 4] = [
    ("GIT_AUTHOR_NAME", "REEF"),
    ("GIT_AUTHOR_EMAIL", "reef@localhost"),
    ("GIT_COMMITTER_NAME", "REEF"),
    ("GIT_COMMITTER_EMAIL", "reef@localhost"),
];
/// How long one git command may run (a snapshot hashes the worktree; a fetch may cross a network).
pub const GIT_TIME: Duration = Duration::from_secs(300);
/// Output kept of one command unless asked for more.
const OUTPUT_MAX: usize = 64 * 1024 * 1024;

/// A git command with nothing from any repository's configuration or the user's that runs code.
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
        "-c",
        "core.attributesFile=/dev/null",
        "-c",
        "core.excludesFile=/dev/null",
        "-c",
        "uploadpack.packObjectsHook=",
    ])
    .env("GIT_TERMINAL_PROMPT", "0")
    // Not the operator's ~/.gitconfig nor /etc/gitconfig: filters or aliases named there would run.
    .env("GIT_CONFIG_GLOBAL", "/dev/null")
    .env("GIT_CONFIG_NOSYSTEM", "1")
    .env("LC_ALL", "C")
    .stdin(Stdio::null());
    for v in ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES"] {
        c.env_remove(v);
    }
    c
}

/// Runs `c` with `args` within `limit`, keeping at most `max` bytes of its output (and whether
/// there was more).
fn run_limited(mut c: Command, args: &[&str], limit: Duration, max: usize) -> Result<(String, bool), GitError> {
    let what = args.iter().take(3).copied().collect::<Vec<_>>().join(" ");
    let mut child = c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().map_err(|e| GitError::Missing(e.to_string()))?;
    let (mut out, mut err) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    // Both pipes drain on threads of their own, so a chatty stderr cannot stall stdout.
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let kept = (&mut out).take(max as u64 + 1).read_to_end(&mut buf).ok();
        std::io::copy(&mut out, &mut std::io::sink()).ok();
        (buf, kept)
    });
    let errs = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut err).take(64 * 1024).read_to_end(&mut buf);
        std::io::copy(&mut err, &mut std::io::sink()).ok();
        buf
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() >= limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(GitError::TimedOut(what));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(GitError::Missing(e.to_string())),
        }
    };
    let (mut buf, _) = reader.join().unwrap_or_default();
    let stderr = errs.join().unwrap_or_default();
    if !status.success() {
        return Err(GitError::Failed { args: what, stderr: String::from_utf8_lossy(&stderr).trim().chars().take(2000).collect() });
    }
    let cut = buf.len() > max;
    buf.truncate(max);
    let mut s = String::from_utf8_lossy(&buf).into_owned();
    if cut {
        // A multi-byte character cut in half shows as one replacement character at most.
        s.truncate(s.trim_end_matches('\u{fffd}').len());
    }
    Ok((s, cut))
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

/// What a merge made.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    /// The merge commit, now the tip of main.
    pub merge: String,
    /// Main before it.
    pub before: String,
}

fn is_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn sha_of(s: &str) -> Result<String, GitError> {
    let s = s.trim();
    if is_sha(s) {
        Ok(s.to_string())
    } else {
        Err(GitError::Invalid(format!("git answered {s:?} where a commit id was due")))
    }
}

/// Where REEF keeps its mirror of `repository` (a product's checkout), in its data dir.
pub fn mirror_dir(data_dir: &Path, repository: &str) -> PathBuf {
    use sha2::Digest;
    let h = hex::encode(sha2::Sha256::digest(repository.as_bytes()));
    data_dir.join("delivery").join(format!("{}.git", &h[..20]))
}

/// REEF's own bare repository for one product.
#[derive(Debug, Clone)]
pub struct Mirror {
    pub dir: PathBuf,
}

impl Mirror {
    /// The mirror at `dir`, made if it is not there yet.
    pub fn open(dir: &Path) -> Result<Self, GitError> {
        if !dir.join("HEAD").is_file() {
            if let Some(p) = dir.parent() {
                std::fs::create_dir_all(p).map_err(|e| GitError::Invalid(format!("cannot create {}: {e}", p.display())))?;
            }
            let mut c = git();
            c.arg("init").arg("--quiet").arg("--bare").arg(dir);
            run_limited(c, &[], GIT_TIME, OUTPUT_MAX)?;
        }
        Ok(Self { dir: dir.to_path_buf() })
    }

    fn cmd(&self) -> Command {
        let mut c = git();
        c.arg("--git-dir").arg(&self.dir);
        c
    }

    pub fn run(&self, args: &[&str]) -> Result<String, GitError> {
        Ok(run_limited(self.cmd(), args, GIT_TIME, OUTPUT_MAX)?.0)
    }

    /// Fetches `branch` of `source` (a URL or a path; its objects are hashed as they arrive)
    /// into REEF's own ref, and answers the commit it is at.
    pub fn fetch_branch(&self, source: &str, branch: &str) -> Result<String, GitError> {
        if source.starts_with('-') || branch.starts_with('-') || branch.contains("..") {
            return Err(GitError::Invalid(format!("{source:?} / {branch:?} is not a source and branch REEF fetches")));
        }
        let local = format!("refs/reef/sources/{branch}");
        self.run(&[
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-write-fetch-head",
            "--end-of-options",
            source,
            &format!("+refs/heads/{branch}:{local}"),
        ])?;
        sha_of(&self.run(&["rev-parse", "--verify", "--end-of-options", &format!("{local}^{{commit}}")])?)
    }

    /// A commit of the files in `workdir` (a plain directory; whatever `.git` it holds is
    /// ignored) as a child of `parent`, made in a fresh index: what a builder's attempt left.
    pub fn snapshot(&self, workdir: &Path, parent: &str, message: &str, task: &str) -> Result<String, GitError> {
        let parent = sha_of(parent)?;
        let index = std::env::temp_dir().join(format!("reef-index-{}-{}", std::process::id(), nonce()));
        let with = |args: &[&str]| {
            let mut c = self.cmd();
            c.arg("--work-tree").arg(workdir).current_dir(workdir).env("GIT_INDEX_FILE", &index).envs(IDENTITY);
            run_limited(c, args, GIT_TIME, OUTPUT_MAX).map(|o| o.0)
        };
        let done = (|| {
            with(&["read-tree", &parent])?;
            with(&["add", "--all", "--", "."])?;
            let tree = sha_of(&with(&["write-tree"])?)?;
            let commit = sha_of(&with(&["commit-tree", &tree, "-p", &parent, "-m", message])?)?;
            // Kept by a ref of REEF's own, so the mirror never prunes a change it recorded.
            with(&["update-ref", &format!("refs/reef/changes/{}", ref_safe(task)), &commit])?;
            Ok(commit)
        })();
        let _ = std::fs::remove_file(&index);
        done
    }

    pub fn merge_base(&self, a: &str, b: &str) -> Result<String, GitError> {
        sha_of(&self.run(&["merge-base", "--end-of-options", &sha_of(a)?, &sha_of(b)?])?)
    }

    /// The commits in `head` that `base` lacks, oldest first (at most `limit`).
    pub fn commits(&self, base: &str, head: &str, limit: usize) -> Result<Vec<CommitInfo>, GitError> {
        let range = format!("{}..{}", sha_of(base)?, sha_of(head)?);
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

    /// The files changed between two commits with their line counts (renames followed), in one
    /// git run.
    pub fn files(&self, base: &str, head: &str) -> Result<Vec<ChangedFile>, GitError> {
        let (base, head) = (sha_of(base)?, sha_of(head)?);
        let args = ["diff", "--no-ext-diff", "--no-textconv", "-M", "--raw", "--numstat", "-z", &base, &head];
        let (out, cut) = run_limited(self.cmd(), &args, GIT_TIME, OUTPUT_MAX)?;
        // A list cut short could leave out the very file that should flag the change.
        if cut {
            return Err(GitError::Invalid(format!(
                "the change's file list is longer than {} MiB; REEF does not measure it in part",
                OUTPUT_MAX >> 20
            )));
        }
        Ok(parse_raw_numstat(&out))
    }

    /// The unified patch between two commits, of one file or all, at most `max_bytes` (and whether it was cut).
    pub fn patch(&self, base: &str, head: &str, path: Option<&str>, max_bytes: usize) -> Result<(String, bool), GitError> {
        let (base, head) = (sha_of(base)?, sha_of(head)?);
        let mut args = vec!["diff", "--no-ext-diff", "--no-textconv", "--no-color", "-M", &base, &head];
        if let Some(p) = path {
            args.extend(["--", p]);
        }
        run_limited(self.cmd(), &args, GIT_TIME, max_bytes)
    }

    /// Writes the files of `commit` into `dir` (emptied first): a plain directory, no `.git`.
    pub fn export(&self, commit: &str, dir: &Path) -> Result<(), GitError> {
        let commit = sha_of(commit)?;
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| GitError::Invalid(format!("cannot empty {}: {e}", dir.display())))?;
        }
        std::fs::create_dir_all(dir).map_err(|e| GitError::Invalid(format!("cannot create {}: {e}", dir.display())))?;
        let index = std::env::temp_dir().join(format!("reef-index-{}-{}", std::process::id(), nonce()));
        let with = |args: &[&str]| {
            let mut c = self.cmd();
            c.arg("--work-tree").arg(dir).current_dir(dir).env("GIT_INDEX_FILE", &index);
            run_limited(c, args, GIT_TIME, OUTPUT_MAX).map(|_| ())
        };
        let done = with(&["read-tree", &commit]).and_then(|_| with(&["checkout-index", "--all", "--force"]));
        let _ = std::fs::remove_file(&index);
        done
    }

    /// Merges `sha` into `main_sha` in memory (no checkout); a conflict names the files.
    pub fn merge(&self, main_sha: &str, sha: &str, message: &str) -> Result<Merged, GitError> {
        let (before, sha) = (sha_of(main_sha)?, sha_of(sha)?);
        let mut c = self.cmd();
        c.envs(IDENTITY);
        match run_limited(c, &["merge-tree", "--write-tree", "--name-only", "--no-messages", &before, &sha], GIT_TIME, OUTPUT_MAX) {
            Ok((out, _)) => {
                let tree = sha_of(out.lines().next().unwrap_or_default())?;
                let mut c = self.cmd();
                c.envs(IDENTITY);
                let merge =
                    sha_of(&run_limited(c, &["commit-tree", &tree, "-p", &before, "-p", &sha, "-m", message], GIT_TIME, OUTPUT_MAX)?.0)?;
                Ok(Merged { merge, before })
            }
            Err(GitError::Failed { .. }) => {
                // Exit 1 is a conflict: the tree, then the conflicted files. Run again to read them.
                let mut c = self.cmd();
                c.args(["merge-tree", "--write-tree", "--name-only", "--no-messages", &before, &sha])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null());
                let out = c.output().map_err(|e| GitError::Missing(e.to_string()))?;
                let text = String::from_utf8_lossy(&out.stdout);
                let files: Vec<String> = text.lines().skip(1).take_while(|l| !l.is_empty()).map(str::to_string).collect();
                if out.status.code() == Some(1) && !files.is_empty() {
                    Err(GitError::Conflict(files))
                } else {
                    Err(GitError::Failed { args: "merge-tree".into(), stderr: text.chars().take(2000).collect() })
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Pushes `commit` to `branch` of `remote` — refused by the remote unless it moves `branch`
    /// forward from what it is (nothing is overwritten).
    pub fn push(&self, remote: &str, commit: &str, branch: &str) -> Result<(), GitError> {
        if remote.starts_with('-') {
            return Err(GitError::Invalid(format!("{remote:?} is not a remote REEF pushes to")));
        }
        self.run(&["push", "--quiet", "--no-verify", "--end-of-options", remote, &format!("{}:refs/heads/{branch}", sha_of(commit)?)])
            .map(|_| ())
    }

    /// Points `branch` on `remote` at `commit` whatever it held: for REEF's own pull-request
    /// branches, which a later attempt replaces with a commit that does not descend from the last.
    pub fn replace_branch(&self, remote: &str, commit: &str, branch: &str) -> Result<(), GitError> {
        if remote.starts_with('-') {
            return Err(GitError::Invalid(format!("{remote:?} is not a remote REEF pushes to")));
        }
        self.run(&["push", "--quiet", "--no-verify", "--end-of-options", remote, &format!("+{}:refs/heads/{branch}", sha_of(commit)?)])
            .map(|_| ())
    }

    /// Whether the mirror holds `commit`.
    pub fn has(&self, commit: &str) -> bool {
        sha_of(commit).is_ok_and(|c| self.run(&["cat-file", "-e", &format!("{c}^{{commit}}")]).is_ok())
    }

    /// The commit before `commit` on its first-parent line, if it has one.
    pub fn first_parent(&self, commit: &str) -> Option<String> {
        self.run(&["rev-parse", "--verify", "--quiet", &format!("{}^1", sha_of(commit).ok()?)]).ok().and_then(|s| sha_of(&s).ok())
    }
}

/// The URL of `remote` as the product's checkout names it (its `.git/config`, which agents
/// cannot write), read without running anything from that repository.
pub fn remote_url(repository: &Path, remote: &str) -> Result<String, GitError> {
    let mut c = git();
    c.arg("config").arg("--file").arg(repository.join(".git").join("config")).arg("--get").arg(format!("remote.{remote}.url"));
    let url = run_limited(c, &[], Duration::from_secs(10), 64 * 1024)?.0.trim().to_string();
    if url.is_empty() || url.starts_with('-') || url.starts_with("ext::") {
        return Err(GitError::Invalid(format!("remote {remote} of {} has no URL REEF uses", repository.display())));
    }
    Ok(url)
}

/// A path-safe, ref-safe form of an id.
pub fn ref_safe(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).take(120).collect()
}

fn nonce() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}
