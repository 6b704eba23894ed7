//! Waits an agent asked for during its attempt (an approval, a person's answer, its subtasks): the marker the
//! toolbox writes, and the worker's parking of the task when the attempt ends.
//!
//! Invariant: a wait applies to the attempt that asked for it only; parking moves a task out of
//! its lease into awaiting_approval / needs_human, and straight back to pending when the answer
//! or decision arrived while the agent was still finishing.

use super::Factory;
use crate::settings::Key;
use crate::time::parse_ts;
use crate::*;
use serde_json::{json, Value};

impl Factory {
    /// The wait an agent asked for during this attempt, if any (for the worker). One left by an
    /// earlier attempt (REEF was killed before it parked the task) is dropped: this attempt's agent
    /// has seen the request in its task and asks again if it still needs to.
    pub async fn waiting(&self, task_id: &str, attempt: u32) -> StoreResult<Option<(Value, Timestamp)>> {
        let key = Key::Wait(task_id).id();
        let Some(v) = self.ports.settings.get(&key).await? else { return Ok(None) };
        if v["attempt"].as_u64() != Some(attempt as u64) {
            self.ports.settings.delete(&key).await?;
            return Ok(None);
        }
        let at = v["at"].as_str().and_then(|s| parse_ts(s).ok()).unwrap_or_else(|| self.now());
        Ok(Some((v, at)))
    }

    /// Parks a task whose agent asked for an approval or a person during its attempt: releases the
    /// lease into awaiting_approval / needs_human. Returns whether there was anything to park.
    pub async fn park_after_attempt(&self, task: &Task, lease_token: &str) -> StoreResult<bool> {
        let Some((marker, _)) = self.waiting(&task.id, task.attempts).await? else { return Ok(false) };
        let now = self.now();
        let ticket = marker["ticket"].as_str().unwrap_or_default().to_string();
        match marker["kind"].as_str() {
            Some("subtasks") => {
                let on: Vec<String> =
                    marker["on"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect()).unwrap_or_default();
                self.ports.tasks.finish(&task.id, lease_token, Outcome::Blocked { on }, now).await?;
                // The dispatcher unblocks it when the last of them has ended (also when that
                // happened while the agent was still finishing: it looks at every blocked task).
            }
            Some("question") => {
                let q = marker["question"].as_str().unwrap_or_default();
                self.ports
                    .tasks
                    .finish(&task.id, lease_token, self.redacted(Outcome::NeedsHuman { reason: format!("asked the operator: {q}") }), now)
                    .await?;
                // Answered while the agent was still finishing: straight back to it.
                let t = self.ports.tasks.get(&task.id).await?;
                if t.open_question().is_none() {
                    self.ports.tasks.transition(&task.id, &[TaskStatus::NeedsHuman], TaskStatus::Pending, None, now).await?;
                }
            }
            _ => {
                // Fenced by the attempt's lease: a worker that lost the task parks nothing.
                self.ports.tasks.finish(&task.id, lease_token, Outcome::AwaitingApproval, now).await?;
                // Decided while the agent was still finishing: the decision's move did not happen
                // (the task was running), so make it now.
                if let Ok(a) = self.ports.approvals.get(&ticket).await {
                    if a.status != ApprovalStatus::Pending {
                        self.ports.tasks.transition(&task.id, &[TaskStatus::AwaitingApproval], TaskStatus::Pending, None, now).await?;
                    }
                }
            }
        }
        self.ports.settings.delete(&Key::Wait(&task.id).id()).await?;
        self.event("task.parked", "reef", Some(&task.id), json!({"kind": marker["kind"], "ticket": ticket})).await?;
        Ok(true)
    }
}
