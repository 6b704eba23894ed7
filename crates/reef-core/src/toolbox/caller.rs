//! Who a call speaks for, REEF's refusals as error codes, and task tokens: issued per attempt,
//! kept in the store only as SHA-256 hashes, revoked when the attempt ends.

use crate::factory::Factory;
use crate::settings::Key;
use crate::time::{fmt_ts, parse_ts};
use crate::*;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::time::Duration;

pub use crate::secret::TASK_TOKEN_PREFIX as TOKEN_PREFIX;

/// Who a call speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An agent working on one task (a token REEF issued for that attempt).
    Task { task_id: String, agent: String },
    /// A client acting for the operator (e.g. OpenClaw), named in `[mcp] operators`.
    Operator { name: String },
}

impl Caller {
    /// The name the audit log and the events carry.
    pub fn actor(&self) -> String {
        match self {
            Caller::Task { agent, .. } => format!("agent:{agent}"),
            Caller::Operator { name } => format!("operator:{name}"),
        }
    }
    pub fn task_id(&self) -> Option<&str> {
        match self {
            Caller::Task { task_id, .. } => Some(task_id),
            Caller::Operator { .. } => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    OutOfScope(String),
    #[error("{0}")]
    Policy(String),
    #[error("{0}")]
    OverBudget(String),
    #[error("{0}")]
    Invalid(String),
    #[error("unknown tool {0:?} (tools/list names the ones this token may use)")]
    UnknownTool(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ToolError {
    /// A stable code a client can branch on.
    pub fn code(&self) -> &'static str {
        match self {
            ToolError::Unauthorized(_) => "unauthorized",
            ToolError::OutOfScope(_) => "out_of_scope",
            ToolError::Policy(_) => "policy",
            ToolError::OverBudget(_) => "over_budget",
            ToolError::Invalid(_) | ToolError::Store(StoreError::Invalid(_)) => "invalid",
            ToolError::UnknownTool(_) => "unknown_tool",
            ToolError::Unavailable(_) => "unavailable",
            ToolError::Store(StoreError::NotFound { .. }) => "not_found",
            ToolError::Store(StoreError::Conflict(_)) => "conflict",
            ToolError::Store(_) => "store",
        }
    }
    /// A refusal REEF's rules made (as opposed to bad input or a store failure).
    pub fn is_refusal(&self) -> bool {
        matches!(self, ToolError::Unauthorized(_) | ToolError::OutOfScope(_) | ToolError::Policy(_) | ToolError::OverBudget(_))
    }
}

pub type ToolResult<T> = Result<T, ToolError>;

pub(super) fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Issues a token for an agent REEF did not start (`reef mcp token`), at an operator's request:
/// the task must still be live, the agent (default: the task's) configured, the lifetime 1 h to
/// 30 days. Audited as `mcp.token.issue`. Returns (token, agent).
pub async fn issue_token_on_request(
    f: &Factory,
    task: &Task,
    agent: Option<String>,
    hours: u64,
    who: &str,
) -> StoreResult<(String, String)> {
    if task.status.is_terminal() {
        return Err(StoreError::Invalid(format!("task {} is {}: there is nothing left to act on", task.id, task.status)));
    }
    let agent = match agent.or(task.assigned_to.clone()) {
        Some(a) if f.live().await?.agent(&a).is_some() => a,
        Some(a) => return Err(StoreError::Invalid(format!("there is no agent {a:?}"))),
        None => return Err(StoreError::Invalid(format!("task {} has no agent yet: name one with --agent", task.id))),
    };
    if !(1..=24 * 30).contains(&hours) {
        return Err(StoreError::Invalid(format!("--hours {hours} is outside 1..720")));
    }
    let token = issue_token(f, &task.id, &agent, Duration::from_secs(hours * 3600)).await?;
    f.audit(who, "mcp.token.issue", &task.id, serde_json::Value::Null, json!({"agent": agent, "hours": hours}), None).await?;
    Ok((token, agent))
}

/// Issues a token that speaks for `agent` on `task_id` until `ttl` has passed (or it is revoked).
pub async fn issue_token(f: &Factory, task_id: &str, agent: &str, ttl: Duration) -> StoreResult<String> {
    let token = format!("{TOKEN_PREFIX}{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let expires = f.now() + chrono::Duration::from_std(ttl).unwrap_or_else(|_| chrono::Duration::hours(1));
    f.ports.settings.put(&Key::Token(&sha(&token)).id(), json!({"task": task_id, "agent": agent, "expires_at": fmt_ts(&expires)})).await?;
    Ok(token)
}

pub async fn revoke_token(f: &Factory, token: &str) -> StoreResult<()> {
    f.ports.settings.delete(&Key::Token(&sha(token)).id()).await
}

/// Who `token` speaks for: an operator client's secret, or a live task token.
pub async fn resolve(f: &Factory, token: &str) -> ToolResult<Caller> {
    let token = token.trim();
    if token.is_empty() {
        return Err(ToolError::Unauthorized("no token: send `Authorization: Bearer <token>` (reef mcp reads REEF_MCP_TOKEN)".into()));
    }
    let h = sha(token);
    // Compared as hashes: equal-length strings, no early exit on the secret's own bytes.
    if let Some((name, _)) = f.config.mcp.operators.iter().find(|(_, s)| sha(s.expose()) == h) {
        return Ok(Caller::Operator { name: name.clone() });
    }
    if !token.starts_with(TOKEN_PREFIX) {
        return Err(ToolError::Unauthorized("not a REEF token".into()));
    }
    let key = Key::Token(&h).id();
    let Some(v) = f.ports.settings.get(&key).await? else {
        return Err(ToolError::Unauthorized("unknown or revoked token (a task token lives as long as its attempt)".into()));
    };
    let expired = v["expires_at"].as_str().and_then(|s| parse_ts(s).ok()).is_none_or(|t| t <= f.now());
    if expired {
        let _ = f.ports.settings.delete(&key).await;
        return Err(ToolError::Unauthorized("token expired".into()));
    }
    match (v["task"].as_str(), v["agent"].as_str()) {
        (Some(t), Some(a)) => Ok(Caller::Task { task_id: t.into(), agent: a.into() }),
        _ => Err(ToolError::Unauthorized("token record is malformed; ask REEF for a new one".into())),
    }
}
