//! The agent loop's workspace tools: read, write, edit, list and search files in the task's own
//! directory, and run the programs its action class allows — inside the same containment as a
//! CLI agent.
//!
//! Invariants: a path an agent names resolves beneath the task's directory or is refused (no
//! absolute path, no `..` past the root, no symlink out — resolved by `cap-std`, with the kernel's
//! `RESOLVE_BENEATH` where it has it), and nothing under `.git` is written by a file tool (the
//! host's git obeys what is there); a command runs under bubblewrap with the task's directory as
//! its only writable tree (unless the operator turned the sandbox off, as for CLI agents), with
//! no secret in its environment, a time limit and output kept within a cap; every write yields
//! the diff the trace shows.

mod command;
mod files;

pub use files::diff;

use super::sandbox::{Binds, Containment};
use crate::domain::task::Task;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::domain::agent::WORKSPACE_TOOLS;

/// Why a workspace call was refused or failed; `code` is what the model (and the trace) sees.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} is outside the task's directory: use a path relative to it, without .. past its top")]
    Outside(String),
    #[error("{0} is under .git: the file tools do not write there (use run_command with git)")]
    GitInternals(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{what} is {size} bytes; the limit is {limit}")]
    TooLarge { what: String, size: u64, limit: u64 },
    #[error("{program} is not a program this task may run (action class {class}); it may run: {allowed}")]
    NotAllowed { program: String, class: String, allowed: String },
    #[error("cannot run commands here: {0}")]
    NotRunnable(String),
    #[error("{0}")]
    Io(String),
}

impl WorkspaceError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid",
            Self::Outside(_) => "outside_workspace",
            Self::GitInternals(_) => "git_internals",
            Self::NotFound(_) => "not_found",
            Self::TooLarge { .. } => "too_large",
            Self::NotAllowed { .. } => "not_allowed",
            Self::NotRunnable(_) => "not_runnable",
            Self::Io(_) => "io",
        }
    }
}

/// What a call answered, and for a write the diff of what it changed.
#[derive(Debug)]
pub struct Done {
    pub answer: Value,
    pub diff: Option<String>,
}

/// Where the loop's agents act: the factory's containment and where REEF notes the commands it starts.
#[derive(Clone)]
pub struct Reach {
    pub containment: Arc<Containment>,
    /// Pidfiles of running commands, so a REEF killed mid-command reaps them at its next start.
    pub children_dir: PathBuf,
}

/// One task's workspace.
pub struct Workspace<'a> {
    pub reach: &'a Reach,
    pub task: &'a Task,
    pub root: PathBuf,
    /// Programs `run_command` may start (the task's action class's list).
    pub programs: Vec<String>,
    pub command_time: std::time::Duration,
    /// Folders a contained command also sees, read-only (their `bin` on its `PATH`).
    pub read_only: Vec<PathBuf>,
}

impl Workspace<'_> {
    /// Runs one workspace tool.
    pub async fn call(&self, tool: &str, args: &Value, cancel: &tokio_util::sync::CancellationToken) -> Result<Done, WorkspaceError> {
        if tool == "run_command" {
            return command::run(self, args, cancel).await.map(plain);
        }
        // File work blocks: off the async workers, so a slow disk stalls no other task.
        let (root, tool, args) = (self.root.clone(), tool.to_string(), args.clone());
        tokio::task::spawn_blocking(move || {
            let dir = files::open_root(&root)?;
            match tool.as_str() {
                "list_files" => files::list(&dir, &args).map(plain),
                "read_file" => files::read(&dir, &args).map(plain),
                "write_file" => files::write(&dir, &args),
                "edit_file" => files::edit(&dir, &args),
                "search_files" => files::search(&dir, &args).map(plain),
                other => Err(WorkspaceError::Invalid(format!("{other} is not a workspace tool"))),
            }
        })
        .await
        .map_err(|e| WorkspaceError::Io(format!("the file tool stopped: {e}")))?
    }
}

fn plain(answer: Value) -> Done {
    Done { answer, diff: None }
}

/// Whether `name` is a workspace tool.
pub fn is_workspace_tool(name: &str) -> bool {
    WORKSPACE_TOOLS.contains(&name)
}

/// The workspace tools' descriptions and JSON schemas, for the tools offered to a model.
pub fn catalog() -> Vec<(&'static str, &'static str, Value)> {
    let path = |d: &str| json!({"type": "string", "description": d});
    let obj = |props: Value, required: &[&str]| json!({"type": "object", "properties": props, "required": required, "additionalProperties": false});
    vec![
        (
            "list_files",
            "List the files in the task's directory (or a folder of it): names, kinds and sizes. .git is left out.",
            obj(
                json!({"path": path("A folder relative to the task's directory; default: its top"), "recursive": {"type": "boolean"}}),
                &[],
            ),
        ),
        (
            "read_file",
            "Read a text file of the task's directory, a range of its lines (default the first 400).",
            obj(
                json!({"path": path("Relative to the task's directory"), "offset": {"type": "integer", "description": "First line, from 1"}, "limit": {"type": "integer", "description": "Lines to read, at most 2000"}}),
                &["path"],
            ),
        ),
        (
            "write_file",
            "Write a whole file in the task's directory (created with its folders, or replaced).",
            obj(json!({"path": path("Relative to the task's directory"), "content": {"type": "string"}}), &["path", "content"]),
        ),
        (
            "edit_file",
            "Replace one exact piece of text in a file of the task's directory: old_text must occur exactly once.",
            obj(
                json!({"path": path("Relative to the task's directory"), "old_text": {"type": "string"}, "new_text": {"type": "string"}}),
                &["path", "old_text", "new_text"],
            ),
        ),
        (
            "search_files",
            "Search the text files of the task's directory for a regular expression; answers path, line number and line.",
            obj(json!({"pattern": {"type": "string"}, "path": path("A folder to search; default: all")}), &["pattern"]),
        ),
        (
            "run_command",
            "Run one program in the task's directory, contained (no network), e.g. \"cargo test\" or \"python3 main.py\". \
             It is not a shell: no pipes, redirections or &&. Answers its exit code and output.",
            obj(
                json!({"command": {"type": "string", "description": "The program and its arguments, quoted as in a shell"}, "timeout_seconds": {"type": "integer"}}),
                &["command"],
            ),
        ),
    ]
}

/// A task's directory made ready (once): a git worktree of its repository on `reef/<task>`, else
/// an empty directory; the branch when there is one. Shared by CLI agents and the loop.
pub(crate) fn prepare(task: &Task, workdir: &Path) -> Result<Option<String>, String> {
    if let Some(root) = workdir.parent() {
        super::agent_files::private_dir(root).map_err(|e| format!("cannot create the work dir {}: {e}", root.display()))?;
    }
    let Some(repo) = task.work_products.repository.as_deref() else {
        return std::fs::create_dir_all(workdir)
            .map(|_| None)
            .map_err(|e| format!("cannot create the task directory {}: {e}", workdir.display()));
    };
    // The id's last 12 characters (not bytes: a foreign id may hold any), made path-safe.
    let name = super::sandbox::dir_name(&task.id);
    let tail: String = name.chars().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect();
    let branch = format!("reef/{tail}");
    if workdir.join(".git").exists() {
        return Ok(Some(branch));
    }
    if let Some(parent) = workdir.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    // No hooks and no fsmonitor: nothing in the repository runs on the host.
    let out = std::process::Command::new("git")
        .args(["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-C", repo, "worktree", "add", "-B", &branch, "--"])
        .arg(workdir)
        .output()
        .map_err(|e| format!("cannot run git for repository {repo}: {e}"))?;
    if !out.status.success() {
        return Err(format!("git worktree add in {repo} failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(Some(branch))
}

/// What a contained process in a task's worktree needs of its repository: commits go into the
/// repository's objects and refs; the rest of `.git` — its config and hooks, which the host's git
/// obeys — stays read-only.
pub(crate) fn git_binds(task: &Task, workdir: &Path, binds: &mut Binds) {
    let Some(repo) = task.work_products.repository.as_deref() else { return };
    let git = Path::new(repo).join(".git");
    if !git.is_dir() {
        return;
    }
    binds.read_only.push(git.clone());
    for sub in ["objects", "refs", "logs"] {
        let p = git.join(sub);
        let _ = std::fs::create_dir_all(&p);
        binds.writable.push(p);
    }
    // The worktree's own git dir is where `git worktree add` put it, named after the task's
    // directory — never what the workdir's `.git` file says: the agent can rewrite that file to
    // name the whole `.git` (config, hooks) or another task's worktree.
    let worktrees = git.join("worktrees");
    if let (Some(name), Ok(base)) = (workdir.file_name(), std::fs::canonicalize(&worktrees)) {
        let own = worktrees.join(name);
        if std::fs::canonicalize(&own).is_ok_and(|c| c.parent() == Some(base.as_path()) && c.is_dir()) {
            binds.writable.push(own);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_catalog_offers_exactly_the_workspace_tools_an_agent_may_be_given() {
        let names: Vec<&str> = super::catalog().iter().map(|(n, _, _)| *n).collect();
        assert_eq!(names, super::WORKSPACE_TOOLS);
    }
}
