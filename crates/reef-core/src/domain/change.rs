//! A builder's change as REEF records it — the commit it made of the worktree, the checks run
//! on it, the reviewer's verdict and line comments — and the delivery steps (merge, deploy,
//! rollback) that follow it, with each product's deploy history.
//!
//! Invariant: every record names the commit it is about; a step runs the commit its record
//! names, never what a branch points at by then.

use crate::git::Flag;
use serde::{Deserialize, Serialize};

/// The result of one check on one commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRun {
    pub name: String,
    pub command: String,
    pub passed: bool,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub timed_out: bool,
    #[serde(default)]
    pub seconds: f64,
    /// The output's head and tail (bounded).
    #[serde(default)]
    pub output: String,
}

/// A comment on one line of a change (a reviewer's or a person's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineComment {
    pub file: String,
    pub line: u64,
    pub body: String,
    #[serde(default)]
    pub author: String,
}

/// A reviewer's structured verdict on a commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewRecord {
    pub reviewer: String,
    pub approved: bool,
    pub summary: String,
    #[serde(default)]
    pub comments: Vec<LineComment>,
}

/// The latest state of a task's change (settings `change:<task>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub task: String,
    #[serde(default)]
    pub product: Option<String>,
    pub repository: String,
    #[serde(default)]
    pub branch: Option<String>,
    /// The main branch's commit it was measured against (their merge base).
    pub base: String,
    /// The commit REEF made of the worktree after the attempt.
    pub head: String,
    pub attempt: u32,
    #[serde(default)]
    pub files: u64,
    #[serde(default)]
    pub added: u64,
    #[serde(default)]
    pub deleted: u64,
    #[serde(default)]
    pub flags: Vec<Flag>,
    #[serde(default)]
    pub checks: Vec<CheckRun>,
    #[serde(default)]
    pub review: Option<ReviewRecord>,
    /// People's comments on its lines (they also reach the builder through the thread).
    #[serde(default)]
    pub comments: Vec<LineComment>,
    /// Where it is: checked, reviewed, merging, merged, deployed, …
    #[serde(default)]
    pub stage: String,
    /// The step tasks made from it, by step name.
    #[serde(default)]
    pub steps: std::collections::BTreeMap<String, String>,
}

/// A change's pull request on the product's forge, and what REEF has already passed on from it
/// (settings `change.pull:<task>`, apart from the change's record: the pull-request watcher writes
/// it while the builder's next attempt writes the record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    pub url: String,
    /// `owner/name` and the API it was opened on: a pipeline edited to another forge does not
    /// make REEF read another repository's pull request #n as this one.
    pub repository: String,
    pub api_url: String,
    /// REEF's branch on the remote (`reef/<task>`), which each approved attempt replaces.
    pub branch: String,
    /// The commit REEF pushed last (the reviewed one).
    pub head: String,
    /// open, merged or closed.
    pub state: String,
    #[serde(default)]
    pub merge_commit: Option<String>,
    /// What was already read from it, by kind and forge id (`comment:…`, `review:…`,
    /// `conversation:…`: each kind has its own ids).
    #[serde(default)]
    pub seen: Vec<String>,
    /// CI runs already reported, as `name@sha:conclusion`.
    #[serde(default)]
    pub ci: Vec<String>,
    /// Line comments people with write access left on it (shown in the diff view).
    #[serde(default)]
    pub comments: Vec<LineComment>,
}

impl PullRequest {
    /// Ids and marks kept (the oldest go first).
    pub const KEPT: usize = 1000;
    /// Line comments kept.
    pub const COMMENTS_KEPT: usize = 200;
}

impl ChangeRecord {
    pub fn checks_passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

/// What a delivery step task does (settings `delivery.step:<idempotency key>`): written by REEF
/// before the task, so only REEF makes tasks that merge, deploy or roll back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "step")]
pub enum Step {
    /// Merge `sha` (the change's reviewed commit) into the product's main.
    Merge { change: String, product: String, sha: String, flags: Vec<Flag> },
    /// Ship `version` (a commit of main).
    Deploy { product: String, version: String, change: Option<String> },
    /// Restore `version`, the one before `from`.
    Rollback { product: String, version: String, from: String, reason: String },
}

impl Step {
    pub fn name(&self) -> &'static str {
        match self {
            Step::Merge { .. } => "merge",
            Step::Deploy { .. } => "deploy",
            Step::Rollback { .. } => "rollback",
        }
    }
    pub fn product(&self) -> &str {
        match self {
            Step::Merge { product, .. } | Step::Deploy { product, .. } | Step::Rollback { product, .. } => product,
        }
    }
}

/// How a deployed version fared.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Unchecked,
    Healthy,
    Unhealthy,
    RolledBack,
}

/// One version a product shipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deploy {
    pub version: String,
    /// RFC 3339.
    pub at: String,
    pub task: String,
    pub health: Health,
    #[serde(default)]
    pub note: String,
}

/// An approval request's summary with REEF's own flags (never read from a title, which is partly an
/// agent's words).
pub fn flagged_summary(title: &str, flags: &[Flag]) -> String {
    if flags.is_empty() {
        title.to_string()
    } else {
        format!("{title} — FLAGGED: {}", flags.iter().map(Flag::describe).collect::<Vec<_>>().join("; "))
    }
}

/// Most deploys a product's history keeps.
pub const DEPLOY_HISTORY: usize = 50;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flagged_request_says_reefs_flags_and_step_keys_are_refused_from_outside() {
        let f = [Flag::TestsDeleted { path: "t.py".into() }];
        assert_eq!(flagged_summary("Merge: x", &f), "Merge: x — FLAGGED: deletes test t.py");
        assert_eq!(flagged_summary("Merge: x — FLAGGED: nothing", &[]), "Merge: x — FLAGGED: nothing", "a title proves nothing");
        let mut t = crate::NewTask::titled("forged merge");
        t.idempotency_key = Some("delivery:merge:abc".into());
        assert!(t.validate_outside().unwrap_err().contains("delivery:"), "no task from outside carries a step key");
        assert!(t.validate().is_ok(), "REEF's own steps use the store's check alone");
    }
}
