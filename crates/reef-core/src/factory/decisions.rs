//! Decisions a person makes for an agent: approving, rejecting or revising a request, and
//! answering a question. Invariant: a decision is recorded once, with who and why, and moves its
//! task exactly as the request's kind says (an in-task request always resumes the agent).

use super::Factory;
use crate::*;
use serde::Serialize;

/// An agent's question to the operator, waiting for an answer.
#[derive(Debug, Clone, Serialize)]
pub struct Question {
    pub task_id: String,
    pub title: String,
    pub product: Option<String>,
    pub question: String,
    pub asked_by: String,
    pub asked_at: Timestamp,
}

impl Factory {
    /// Records a decision on an approval request and moves its task accordingly.
    pub async fn decide(&self, approval_id: &str, decision: Decision, who: &str, reason: Option<&str>) -> StoreResult<Approval> {
        if matches!(decision, Decision::Reject | Decision::Revise) && reason.map(str::trim).unwrap_or("").is_empty() {
            return Err(StoreError::Invalid("a rejection or revision needs a reason (--reason)".into()));
        }
        let now = self.now();
        let a = self.ports.approvals.decide(approval_id, decision, who, reason, now).await?;
        let waiting = [TaskStatus::AwaitingApproval];
        let moved = if a.in_task {
            // The agent asked in the middle of its work: it resumes whatever the answer, and
            // reads the decision in its thread (a rejection means "not that", not "stop").
            let body = format!(
                "{APPROVAL_PREFIX}{} {} by {who}{}",
                a.action_class,
                a.status.as_str().replace('_', " "),
                reason.map(|r| format!(": {r}")).unwrap_or_default()
            );
            self.ports.tasks.comment(&a.task_id, Comment::marked(Mark::Approval, who, body, now)).await?;
            self.ports.tasks.transition(&a.task_id, &waiting, TaskStatus::Pending, None, now).await
        } else {
            match decision {
                Decision::Approve => self.ports.tasks.transition(&a.task_id, &waiting, TaskStatus::Pending, None, now).await,
                Decision::Reject => self.ports.tasks.transition(&a.task_id, &waiting, TaskStatus::Cancelled, reason, now).await,
                Decision::Revise => {
                    if let Some(r) = reason {
                        self.ports
                            .tasks
                            .comment(&a.task_id, Comment::marked(Mark::Approval, who, format!("Revision requested: {r}"), now))
                            .await?;
                    }
                    self.ports.tasks.transition(&a.task_id, &waiting, TaskStatus::Pending, None, now).await
                }
            }
        };
        // The task may have moved on by other hands (cancelled by the operator); the decision stands.
        if let Err(e) = moved {
            tracing::warn!(approval = approval_id, task = a.task_id, error = %e, "approval decided but its task was not awaiting approval");
        }
        // A merge turned down sends its change back to the builder, with the reason to act on.
        if decision != Decision::Approve && !a.in_task {
            if let Ok(t) = self.ports.tasks.get(&a.task_id).await {
                if let Some(crate::domain::change::Step::Merge { change, .. }) = self.step_of(&t).await? {
                    let body = format!("The merge was {} by {who}: {}", a.status.as_str().replace('_', " "), reason.unwrap_or(""));
                    self.comment(&change, who, &body).await?;
                    if decision == Decision::Revise {
                        // A revision of the merge is a revision of the change: the merge task ends here.
                        let _ =
                            self.ports.tasks.transition(&a.task_id, &[TaskStatus::Pending], TaskStatus::Cancelled, Some(&body), now).await;
                    }
                    self.ports.tasks.transition(&change, &[TaskStatus::Done], TaskStatus::Pending, Some(&body), now).await?;
                    self.event("change.returned", who, Some(&change), serde_json::json!({"merge": a.task_id, "reason": reason})).await?;
                }
            }
        }
        self.audit(
            who,
            "approval.decide",
            &a.id,
            serde_json::json!({"status": "pending"}),
            serde_json::json!({"status": a.status, "task": a.task_id}),
            reason,
        )
        .await?;
        self.event("approval.decided", who, Some(&a.task_id), serde_json::json!({"approval": a.id, "status": a.status, "reason": reason}))
            .await?;
        Ok(a)
    }

    /// Answers a task's question to the operator (MCP `ask_operator`): the answer joins the
    /// thread and the task goes back to the queue, where its agent picks it up with the answer.
    pub async fn answer(&self, task_id: &str, who: &str, answer: &str) -> StoreResult<Task> {
        if answer.trim().is_empty() {
            return Err(StoreError::Invalid("the answer is empty".into()));
        }
        let t = self.ports.tasks.get(task_id).await?;
        // Asked during an attempt still running: the answer waits in the thread and the worker
        // sends the task straight back to its agent when the attempt ends.
        let asked_now = t.status.is_leased() && self.waiting(task_id, t.attempts).await?.is_some_and(|(m, _)| m["kind"] == "question");
        if t.status != TaskStatus::NeedsHuman && !asked_now {
            return Err(StoreError::Conflict(format!("task {task_id} is {}, not waiting for a person (needs_human)", t.status)));
        }
        let before = t.status;
        if answer.len() > 64 * 1024 {
            return Err(StoreError::Invalid(format!("the answer is {} bytes; the limit is 65536", answer.len())));
        }
        let mut t = self.comment_marked(task_id, Mark::Answer, who, &format!("{ANSWER_PREFIX}{answer}")).await?;
        if before == TaskStatus::NeedsHuman {
            t = self.ports.tasks.transition(task_id, &[TaskStatus::NeedsHuman], TaskStatus::Pending, None, self.now()).await?;
        }
        self.audit(who, "task.answer", task_id, serde_json::json!({"status": before}), serde_json::json!({"status": t.status}), None)
            .await?;
        self.event("task.answered", who, Some(task_id), serde_json::json!({"by": who})).await?;
        Ok(t)
    }

    /// Spends an approval on the run it opens: `true` the first time only (atomic in the store,
    /// so two workers cannot both run on it).
    pub async fn use_approval(&self, approval_id: &str, task_id: &str) -> StoreResult<bool> {
        let key = crate::settings::Key::ApprovalUsed(approval_id).id();
        let fresh = self.ports.settings.put_if_absent(&key, serde_json::json!({"task": task_id, "at": time::fmt_ts(&self.now())})).await?;
        if !fresh {
            tracing::warn!(approval = approval_id, task = task_id, "an approval was already used; its task asks again");
        }
        Ok(fresh)
    }

    /// Agents' questions waiting for the operator (MCP `ask_operator`): tasks in needs_human whose
    /// latest question has no answer yet, oldest first.
    pub async fn open_questions(&self, limit: usize) -> StoreResult<Vec<Question>> {
        let l = self
            .ports
            .tasks
            .list(&TaskQuery { status: Some(vec![TaskStatus::NeedsHuman]), limit: Some(limit), ..Default::default() })
            .await?;
        let mut v: Vec<Question> = l
            .items
            .into_iter()
            .filter_map(|t| {
                let c = t.open_question()?;
                Some(Question {
                    task_id: t.id.clone(),
                    title: t.title.clone(),
                    product: t.product.clone(),
                    question: c.body.strip_prefix(QUESTION_PREFIX).unwrap_or(&c.body).to_string(),
                    asked_by: c.author.clone(),
                    asked_at: c.at,
                })
            })
            .collect();
        v.sort_by_key(|q| q.asked_at);
        Ok(v)
    }
}
