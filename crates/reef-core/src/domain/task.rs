//! The task: the unit of work the factory moves from backlog to done.
//!
//! Field names follow seed 000's `factory.tasks` documents (`status`, `assigned_to`, `priority`,
//! `created_at`) so other programs can insert and read tasks directly.

use crate::time::{ts, ts_opt, Timestamp};
use crate::Usd;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Backlog,
    Pending,
    Blocked,
    Claimed,
    Running,
    Review,
    AwaitingApproval,
    NeedsHuman,
    Paused,
    Done,
    Failed,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 12] = [
        Self::Backlog,
        Self::Pending,
        Self::Blocked,
        Self::Claimed,
        Self::Running,
        Self::Review,
        Self::AwaitingApproval,
        Self::NeedsHuman,
        Self::Paused,
        Self::Done,
        Self::Failed,
        Self::Cancelled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backlog => "backlog",
            Self::Pending => "pending",
            Self::Blocked => "blocked",
            Self::Claimed => "claimed",
            Self::Running => "running",
            Self::Review => "review",
            Self::AwaitingApproval => "awaiting_approval",
            Self::NeedsHuman => "needs_human",
            Self::Paused => "paused",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
    /// No further work happens on a task in a terminal state.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Cancelled)
    }
    /// States in which a worker holds the task under a lease.
    pub fn is_leased(self) -> bool {
        matches!(self, Self::Claimed | Self::Running)
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown task status {s:?}; expected one of {}", Self::ALL.map(|t| t.as_str()).join(", ")))
    }
}

/// The cost pyramid, cheapest first.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ModelTier {
    Local,
    Cheap,
    Mid,
    Frontier,
}

impl ModelTier {
    pub const ALL: [ModelTier; 4] = [Self::Local, Self::Cheap, Self::Mid, Self::Frontier];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Cheap => "cheap",
            Self::Mid => "mid",
            Self::Frontier => "frontier",
        }
    }
    /// One step up the pyramid, if there is one.
    pub fn escalate(self) -> Option<Self> {
        match self {
            Self::Local => Some(Self::Cheap),
            Self::Cheap => Some(Self::Mid),
            Self::Mid => Some(Self::Frontier),
            Self::Frontier => None,
        }
    }
}

impl FromStr for ModelTier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown model tier {s:?}; expected local, cheap, mid or frontier"))
    }
}

/// Who holds a claimed task, under which fencing token, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub holder: String,
    pub token: String,
    #[serde(with = "ts")]
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comment {
    pub author: String,
    pub body: String,
    #[serde(with = "ts")]
    pub at: Timestamp,
    /// What this comment is to REEF, set only by REEF's own operations (an agent's question, the
    /// operator's answer, a decision, a review): never read from the text, which anyone with a
    /// comment tool can write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<Mark>,
}

/// The structured kinds of thread entry REEF acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    /// An agent's question to the operator (`ask_operator`).
    Question,
    /// The operator's answer to it.
    Answer,
    /// A decision on an approval the agent asked for mid-task.
    Approval,
    /// A reviewer's verdict.
    Review,
    /// The product's checks failing on the builder's change (what failed, and its output).
    Checks,
}

impl Mark {
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::Question => "question",
            Mark::Answer => "answer",
            Mark::Approval => "approval decision",
            Mark::Review => "review",
            Mark::Checks => "checks",
        }
    }
}

impl Comment {
    /// A plain comment: text for people and agents, nothing REEF acts on.
    pub fn new(author: impl Into<String>, body: impl Into<String>, at: Timestamp) -> Self {
        Self { author: author.into(), body: body.into(), at, mark: None }
    }

    /// A comment REEF acts on; only REEF's operations make these.
    pub fn marked(mark: Mark, author: impl Into<String>, body: impl Into<String>, at: Timestamp) -> Self {
        Self { author: author.into(), body: body.into(), at, mark: Some(mark) }
    }
}

/// What the work left behind outside REEF.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkProducts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
}

impl WorkProducts {
    pub fn is_empty(&self) -> bool {
        self == &WorkProducts::default()
    }
}

fn default_priority() -> i64 {
    0
}
fn default_status() -> TaskStatus {
    TaskStatus::Pending
}

/// A task document. Optional fields default so a task inserted by another program in seed 000's
/// minimal shape (`title`, `status`, `priority`, `created_at`, `assigned_to: null`) reads cleanly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    #[serde(rename = "_id")]
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_status")]
    pub status: TaskStatus,
    #[serde(default = "default_priority")]
    pub priority: i64,
    #[serde(with = "ts")]
    pub created_at: Timestamp,
    #[serde(default, with = "ts_opt", skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
    /// The agent the task is routed or assigned to (seed 000's field).
    #[serde(default)]
    pub assigned_to: Option<String>,
    /// The role the task needs (orchestrator, builder, research, marketing, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Task type, e.g. `build`, `research`, `deploy`; routing and analytics key on it.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The action class the approval policy looks up (e.g. `production_deploy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_tier: Option<ModelTier>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
    #[serde(default, with = "ts_opt", skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<Usd>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<Comment>,
    #[serde(default, skip_serializing_if = "WorkProducts::is_empty")]
    pub work_products: WorkProducts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Free-form data the creator attached. Fields REEF does not know are never lost: stores
    /// change tasks with partial updates, never by rewriting the whole document.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// What a creator supplies; the store fills in id, status and timestamps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewTask {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub priority: i64,
    #[serde(default)]
    pub assigned_to: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub action_class: Option<String>,
    #[serde(default)]
    pub model_tier: Option<ModelTier>,
    #[serde(default)]
    pub product: Option<String>,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub budget_usd: Option<Usd>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Start in `backlog` instead of `pending` (or `blocked` when it has dependencies).
    #[serde(default)]
    pub backlog: bool,
    /// Have a different agent, on a different model, review the result before it counts as done.
    #[serde(default)]
    pub review: bool,
    /// A local git repository the work happens in (CLI agents get their own worktree of it).
    #[serde(default)]
    pub repository: Option<String>,
}

/// Largest title and description REEF accepts, so one bad caller cannot bloat every listing.
pub const MAX_TITLE_BYTES: usize = 1_000;
pub const MAX_DESCRIPTION_BYTES: usize = 256 * 1024;

impl NewTask {
    pub fn titled(title: impl Into<String>) -> Self {
        Self { title: title.into(), ..Default::default() }
    }

    /// For a task made outside REEF's delivery loop: its step keys are REEF's own.
    pub fn validate_outside(&self) -> Result<(), String> {
        if self.idempotency_key.as_deref().is_some_and(|k| k.starts_with("delivery:")) {
            return Err("idempotency_key: keys starting with \"delivery:\" are REEF's own (its merge, deploy and rollback steps)".into());
        }
        self.validate()
    }

    /// Checks what a store cannot: sizes and the obvious mistakes, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.title.trim().is_empty() {
            return Err("task title is empty".into());
        }
        if self.title.len() > MAX_TITLE_BYTES {
            return Err(format!("task title is {} bytes; the limit is {MAX_TITLE_BYTES}", self.title.len()));
        }
        if self.description.len() > MAX_DESCRIPTION_BYTES {
            return Err(format!("task description is {} bytes; the limit is {MAX_DESCRIPTION_BYTES}", self.description.len()));
        }
        if let Some(b) = self.budget_usd {
            if b.0 < 0 {
                return Err("task budget_usd is negative".into());
            }
        }
        Ok(())
    }

    /// The task as first stored.
    pub fn into_task(self, id: String, now: Timestamp) -> Task {
        let status = if self.backlog {
            TaskStatus::Backlog
        } else if !self.depends_on.is_empty() {
            TaskStatus::Blocked
        } else {
            TaskStatus::Pending
        };
        Task {
            id,
            title: self.title,
            description: self.description,
            status,
            priority: self.priority,
            created_at: now,
            updated_at: Some(now),
            assigned_to: self.assigned_to,
            role: self.role,
            kind: self.kind,
            action_class: self.action_class,
            model_tier: self.model_tier,
            attempts: 0,
            max_attempts: self.max_attempts,
            lease: None,
            claimed_at: None,
            product: self.product,
            parent_id: self.parent_id,
            depends_on: self.depends_on,
            budget_usd: self.budget_usd,
            idempotency_key: self.idempotency_key,
            comments: vec![],
            work_products: WorkProducts { repository: self.repository, ..Default::default() },
            result: None,
            error: None,
            metadata: if self.review {
                [("review".to_string(), serde_json::Value::Bool(true))].into_iter().collect()
            } else {
                Default::default()
            },
        }
    }
}

/// Which tasks a claimer will take.
#[derive(Debug, Clone, Default)]
pub struct ClaimFilter {
    /// Only tasks assigned to one of these agents (or unassigned ones when `include_unassigned`).
    pub agents: Option<Vec<String>>,
    pub include_unassigned: bool,
}

/// How a finished attempt ends.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Work is done (or goes to review when `review` is set).
    Succeeded { result: String, work_products: WorkProducts, review: bool },
    /// Try again later (back to pending) with the reason recorded.
    Retry { error: String },
    /// Back to pending without using up an attempt: the attempt was stopped cleanly from
    /// outside (operator stop, shutdown, parked), not ended by the work. Every other way an
    /// attempt ends — including a worker that died — counts.
    Requeue { error: String },
    /// Give up: `failed`.
    Failed { error: String },
    /// Hand to a person: `needs_human`.
    NeedsHuman { reason: String },
    /// The agent asked for an approval mid-task: `awaiting_approval` until it is decided.
    AwaitingApproval,
    /// The agent waits for other tasks (its subtasks): `blocked` on them (added to its
    /// `depends_on`) until they are done, without using up the attempt.
    Blocked { on: Vec<String> },
}

#[derive(Debug, Clone, Default)]
pub struct TaskQuery {
    pub status: Option<Vec<TaskStatus>>,
    pub assigned_to: Option<String>,
    pub product: Option<String>,
    pub parent_id: Option<String>,
    /// Case-insensitive text in the title or the id (the palette's search).
    pub text: Option<String>,
    pub limit: Option<usize>,
}

/// A read that skipped documents it could not parse reports them instead of failing whole.
#[derive(Debug, Clone)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub malformed: Vec<crate::Malformed>,
}

impl<T> Default for Listing<T> {
    fn default() -> Self {
        Self { items: vec![], malformed: vec![] }
    }
}

/// A document someone else wrote that REEF could not read; it is left untouched in the store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Malformed {
    pub collection: String,
    pub id: String,
    pub reason: String,
}

impl Task {
    /// Whether the task asked for a review before it counts as done.
    pub fn wants_review(&self) -> bool {
        self.metadata.get("review").and_then(|v| v.as_bool()).unwrap_or(false)
    }

    /// Rounds of failing checks so far, counted from REEF's check reports.
    pub fn check_rounds(&self) -> u32 {
        self.comments.iter().filter(|c| c.mark == Some(Mark::Checks)).count() as u32
    }

    /// Review rounds so far, counted from the reviewers' verdicts (never from comment text).
    pub fn review_rounds(&self) -> u32 {
        self.comments.iter().filter(|c| c.mark == Some(Mark::Review)).count() as u32
    }
}

/// How marked comments read in the thread (for people; REEF reads `Comment::mark`): a
/// reviewer's verdict, an agent's question to the operator (MCP `ask_operator`), the operator's
/// answer, and the decision on an approval the agent asked for mid-task.
pub const REVIEW_PREFIX: &str = "[review] ";
pub const QUESTION_PREFIX: &str = "[question] ";
pub const ANSWER_PREFIX: &str = "[answer] ";
pub const APPROVAL_PREFIX: &str = "[approval] ";

impl Task {
    /// The agent's latest question, when no answer follows it in the thread. Only REEF's own
    /// marks count: a comment that merely reads "[answer] …" answers nothing.
    pub fn open_question(&self) -> Option<&Comment> {
        let i = self.comments.iter().rposition(|c| c.mark == Some(Mark::Question))?;
        (!self.comments[i + 1..].iter().any(|c| c.mark == Some(Mark::Answer))).then(|| &self.comments[i])
    }
}
