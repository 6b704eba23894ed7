//! The evidence behind one approval request, so a decision is made on more than a title: the
//! task with its description and thread, what the agent printed (its output's tail), the result
//! of its last attempt, what it has cost, its work products, and the request as stored.
//!
//! Invariant: read-only, and bounded — the output is the last [`OUTPUT_LINES`] lines.

use super::Factory;
use crate::*;
use serde::Serialize;

/// Lines of the agent's output shown with a request.
pub const OUTPUT_LINES: usize = 200;

#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub approval: Approval,
    /// `None` when the task is gone or unreadable (`task_error` says why).
    pub task: Option<Task>,
    pub task_error: Option<String>,
    /// The agent's output, oldest line first, with when each was printed.
    pub output: Vec<(Timestamp, String)>,
    /// Steps of REEF's own agent loop recorded for the task (its trace).
    pub trace_steps: usize,
    /// Settled plus reserved in the task's scope.
    pub cost: Usd,
    /// The request's document as the store holds it.
    pub raw: serde_json::Value,
}

impl Factory {
    pub async fn evidence(&self, approval_id: &str) -> StoreResult<Evidence> {
        let approval = self.ports.approvals.get(approval_id).await?;
        let raw = serde_json::to_value(&approval).unwrap_or_default();
        let (task, task_error) = match self.ports.tasks.get(&approval.task_id).await {
            Ok(t) => (Some(t), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let q = EventQuery {
            kind_prefix: Some("task.output".into()),
            subject: Some(approval.task_id.clone()),
            limit: OUTPUT_LINES,
            ..Default::default()
        };
        let mut output: Vec<(Timestamp, String)> = self
            .ports
            .events
            .recent(&q)
            .await?
            .items
            .into_iter()
            .filter_map(|e| e.data["line"].as_str().map(|l| (e.at, l.to_string())))
            .collect();
        output.reverse();
        let q = EventQuery {
            kind_prefix: Some("trace.step".into()),
            subject: Some(approval.task_id.clone()),
            limit: 1000,
            ..Default::default()
        };
        let trace_steps = self.ports.events.recent(&q).await?.items.len();
        let totals = self.ports.ledger.totals(&[ScopeKey::task(&approval.task_id)]).await?;
        let cost = totals.first().map(|t| Usd(t.spent.0 + t.reserved.0)).unwrap_or_default();
        Ok(Evidence { approval, task, task_error, output, trace_steps, cost, raw })
    }
}
