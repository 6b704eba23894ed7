//! Work in flight as the operator sees it: each running task with its agent, when it started,
//! the last line its agent printed and what it has cost so far; and any tasks' costs, for lists.
//!
//! Invariant: bounded reads — running tasks are at most `engine.max_running` in a healthy
//! factory, and each costs one event read and one ledger read.

use super::Factory;
use crate::*;
use serde::Serialize;

/// Running tasks shown at most.
pub const RUNNING_SHOWN: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunningWork {
    pub task_id: String,
    pub title: String,
    pub agent: Option<String>,
    pub product: Option<String>,
    /// When this attempt was claimed.
    pub since: Timestamp,
    pub attempt: u32,
    /// The last line the agent printed, if any (already redacted when it was written).
    pub last_line: Option<String>,
    pub last_line_at: Option<Timestamp>,
    /// Settled plus reserved in the task's scope.
    pub cost: Usd,
}

/// Tasks whose cost one read may ask for (a screenful of the task list).
pub const COSTS_AT_ONCE: usize = 500;

impl Factory {
    /// What each task has cost (settled plus still reserved), for the rows a list shows.
    pub async fn task_costs(&self, ids: &[String]) -> StoreResult<Vec<(String, Usd)>> {
        if ids.len() > COSTS_AT_ONCE {
            return Err(StoreError::Invalid(format!("{} tasks asked for at once; at most {COSTS_AT_ONCE}", ids.len())));
        }
        let scopes: Vec<ScopeKey> = ids.iter().map(|id| ScopeKey::task(id)).collect();
        let totals = self.ports.ledger.totals(&scopes).await?;
        Ok(ids
            .iter()
            .zip(&scopes)
            .map(|(id, k)| (id.clone(), totals.iter().find(|t| &t.scope == k).map(|t| Usd(t.spent.0 + t.reserved.0)).unwrap_or_default()))
            .collect())
    }

    /// Running and claimed work, oldest first.
    pub async fn running_work(&self) -> StoreResult<Vec<RunningWork>> {
        let q =
            TaskQuery { status: Some(vec![TaskStatus::Running, TaskStatus::Claimed]), limit: Some(RUNNING_SHOWN), ..Default::default() };
        let tasks = self.ports.tasks.list(&q).await?.items;
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            let q = EventQuery { kind_prefix: Some("task.output".into()), subject: Some(t.id.clone()), limit: 1, ..Default::default() };
            let last = self.ports.events.recent(&q).await?.items.into_iter().next();
            let spent = self.ports.ledger.totals(&[ScopeKey::task(&t.id)]).await?;
            let cost = spent.first().map(|s| Usd(s.spent.0 + s.reserved.0)).unwrap_or_default();
            out.push(RunningWork {
                since: t.claimed_at.unwrap_or(t.created_at),
                task_id: t.id,
                title: t.title,
                agent: t.assigned_to,
                product: t.product,
                attempt: t.attempts,
                last_line: last.as_ref().and_then(|e| e.data["line"].as_str().map(str::to_string)),
                last_line_at: last.map(|e| e.at),
                cost,
            });
        }
        out.sort_by_key(|r| r.since);
        Ok(out)
    }
}
