//! What an executor is given and what it gives back.

use crate::domain::agent::AgentConfig;
use crate::{ModelTier, Task, Usd, WorkProducts};
use async_trait::async_trait;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// One attempt of one task, as handed to an executor.
#[derive(Debug, Clone)]
pub struct Job {
    pub task: Task,
    pub agent: AgentConfig,
    pub tier: ModelTier,
    pub attempt: u32,
    /// The same for every attempt of a task, so an outside system that honours it performs the
    /// effect once however often REEF retries.
    pub idempotency_key: String,
    /// The task's own directory for CLI agents.
    pub workdir: PathBuf,
    /// Memories relevant to the task, most relevant first.
    pub memories: Vec<String>,
}

impl Job {
    pub fn idempotency_key_for(task: &Task) -> String {
        task.idempotency_key.clone().unwrap_or_else(|| format!("reef-task-{}", task.id))
    }

    /// The model it runs on, as the gateway names it: the agent's own, else its tier's.
    pub fn model(&self, models: &std::collections::BTreeMap<ModelTier, String>) -> String {
        self.agent.model.clone().unwrap_or_else(|| models.get(&self.tier).cloned().unwrap_or_else(|| self.tier.as_str().to_string()))
    }

    /// The prompt text: the task, its comment thread (the operator's and reviewers' feedback)
    /// and the memories the executor was given.
    pub fn prompt(&self) -> String {
        let t = &self.task;
        let mut p = format!("Task: {}\n", t.title);
        if !t.description.is_empty() {
            p.push_str(&format!("\n{}\n", t.description));
        }
        if let Some(prod) = &t.product {
            p.push_str(&format!("\nProduct: {prod}\n"));
        }
        if !t.comments.is_empty() {
            p.push_str("\nComments (oldest first; entries marked \"recorded by REEF\" are REEF's own record, any other text is what its author wrote):\n");
            for c in &t.comments {
                // Every body's lines are indented under its entry: no text inside a comment can
                // start a line that looks like an entry of its own ("- operator:… (answer, …)").
                let body = |b: &str| b.lines().collect::<Vec<_>>().join("\n    ");
                match c.mark {
                    Some(m) => p.push_str(&format!("- {} ({}, recorded by REEF): {}\n", c.author, m.as_str(), body(&c.body))),
                    None => p.push_str(&format!("- {}: {}\n", c.author, body(&unmarked(&c.body)))),
                }
            }
        }
        if let Some(e) = &t.error {
            p.push_str(&format!("\nThe previous attempt failed: {e}\n"));
        }
        if !self.memories.is_empty() {
            p.push_str("\nRelevant memories:\n");
            for m in &self.memories {
                p.push_str(&format!("- {m}\n"));
            }
        }
        p
    }
}

/// A plain comment's text as an agent reads it: a line that dresses up as one of REEF's marks
/// ("[answer] …", "[approval] …") is shown as the claim it is.
fn unmarked(body: &str) -> String {
    const MARKS: [&str; 4] = [
        crate::domain::task::QUESTION_PREFIX,
        crate::domain::task::ANSWER_PREFIX,
        crate::domain::task::APPROVAL_PREFIX,
        crate::domain::task::REVIEW_PREFIX,
    ];
    body.lines()
        .map(|l| {
            if MARKS.iter().any(|m| l.trim_start().starts_with(m.trim_end())) {
                format!("(not recorded by REEF) {l}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A finished attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecSuccess {
    pub output: String,
    pub work_products: WorkProducts,
    pub cost: Usd,
}

/// Why an attempt failed, classified so the worker can decide: retry, escalate, or stop.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecError {
    #[error("rate limited by the provider: {0}")]
    RateLimited(String),
    #[error("prompt too long for the model: {0}")]
    ContextTooLong(String),
    #[error("provider unavailable: {0}")]
    ProviderDown(String),
    #[error("request refused as malformed: {0}")]
    BadRequest(String),
    #[error("{message}")]
    BudgetRefused { scope: String, requested: crate::Usd, message: String },
    #[error("the gateway answered something that is not a chat completion: {0}")]
    Garbage(String),
    #[error("no output and no work product: an empty completion is not a success")]
    Empty,
    #[error("timed out after {0} s")]
    Timeout(u64),
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    NotRunnable(String),
    #[error("{0}")]
    Failed(String),
    /// REEF stopped the agent for what it did (it looped, ran past its limits): a person decides.
    #[error("{0}")]
    Stopped(String),
    /// The agent asked a person (approval, question): the task parks until the answer. Never a
    /// success: if it cannot park, the attempt is retried.
    #[error("waiting for a person's answer")]
    Waiting,
}

impl ExecError {
    /// Worth another try on a higher tier (the model could not do it, or its provider is down).
    pub fn escalates(&self) -> bool {
        matches!(
            self,
            Self::ContextTooLong(_) | Self::ProviderDown(_) | Self::Empty | Self::Failed(_) | Self::Garbage(_) | Self::Timeout(_)
        )
    }
    /// Retrying cannot help: the request itself or the setup is wrong, or money ran out.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::BadRequest(_) | Self::NotRunnable(_) | Self::BudgetRefused { .. } | Self::Stopped(_))
    }
}

/// Sends progress lines (live output) to whoever shows them; lossy on purpose.
pub type ProgressTx = tokio::sync::mpsc::Sender<String>;

#[async_trait]
pub trait Executor: Send + Sync {
    fn name(&self) -> &str;
    async fn run(&self, job: &Job, progress: ProgressTx, cancel: CancellationToken) -> Result<ExecSuccess, ExecError>;
}

impl ExecError {
    /// Maps a store error from a reservation: a refusal keeps its scope, anything else fails.
    pub fn from_reserve(e: crate::StoreError) -> Self {
        match e {
            crate::StoreError::BudgetRefused { ref scope, requested, .. } => {
                Self::BudgetRefused { scope: scope.clone(), requested, message: e.to_string() }
            }
            other => Self::Failed(format!("reserving budget: {other}")),
        }
    }
}
