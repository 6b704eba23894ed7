//! Task operations: create, comment, cancel, retry, reassign — each with its audit entry and event.
//! Invariant: an audit entry records the task's state before and after; an event says where the
//! task came from (`from`) so a watcher needs no second read.

use super::Factory;
use crate::*;

impl Factory {
    /// Creates a task (once per idempotency key), with its event and audit entry.
    pub async fn create_task(&self, mut new: NewTask, actor: &str) -> StoreResult<Task> {
        self.fill_repository(&mut new).await?;
        new.validate_outside().map_err(StoreError::Invalid)?;
        let (task, created) = self.ports.tasks.create(new, self.now()).await?;
        if created {
            self.announce_created(&task, actor).await?;
        }
        Ok(task)
    }

    /// Work for a product with a pipeline happens in that product's repository (a worktree of it).
    pub async fn fill_repository(&self, new: &mut NewTask) -> StoreResult<()> {
        if new.repository.is_none() {
            if let Some(p) = self.pipeline(new.product.as_deref()).await? {
                new.repository = Some(p.repository.display().to_string());
            }
        }
        Ok(())
    }

    /// The event and audit entry for a task that was just stored.
    pub async fn announce_created(&self, task: &Task, actor: &str) -> StoreResult<()> {
        self.event("task.created", actor, Some(&task.id), serde_json::json!({"title": task.title, "status": task.status})).await?;
        self.audit(actor, "task.create", &task.id, serde_json::Value::Null, serde_json::json!({"title": task.title}), None).await
    }

    pub async fn comment(&self, task_id: &str, author: &str, body: &str) -> StoreResult<Task> {
        if body.trim().is_empty() {
            return Err(StoreError::Invalid("comment is empty".into()));
        }
        if body.len() > 64 * 1024 {
            return Err(StoreError::Invalid(format!("comment is {} bytes; the limit is 65536", body.len())));
        }
        self.add_comment(task_id, Comment::new(author, body, self.now())).await
    }

    /// A comment REEF acts on (a question, an answer): written only by REEF's own operations —
    /// the toolbox's `ask_operator`, the operator's answer — never by a comment tool.
    pub(crate) async fn comment_marked(&self, task_id: &str, mark: Mark, author: &str, body: &str) -> StoreResult<Task> {
        self.add_comment(task_id, Comment::marked(mark, author, body, self.now())).await
    }

    async fn add_comment(&self, task_id: &str, mut c: Comment) -> StoreResult<Task> {
        c.body = self.redactor.redact(&c.body);
        let author = c.author.clone();
        let mark = c.mark;
        let t = self.ports.tasks.comment(task_id, c).await?;
        self.event("task.commented", &author, Some(task_id), serde_json::json!({"author": author, "mark": mark})).await?;
        Ok(t)
    }

    /// Cancels a task that has not ended, whatever it is doing (a running agent is stopped by its
    /// worker when the lease can no longer be renewed).
    pub async fn cancel_task(&self, task_id: &str, who: &str, reason: Option<&str>) -> StoreResult<Task> {
        let t = self.ports.tasks.get(task_id).await?;
        let from: Vec<TaskStatus> = TaskStatus::ALL.into_iter().filter(|s| !s.is_terminal()).collect();
        let note = format!("cancelled by {who}{}", reason.map(|r| format!(": {r}")).unwrap_or_default());
        let n = self.ports.tasks.transition(&t.id, &from, TaskStatus::Cancelled, Some(&note), self.now()).await?;
        self.audit(who, "task.cancel", &t.id, serde_json::json!(t.status), serde_json::json!(n.status), reason).await?;
        self.event("task.cancelled", who, Some(&t.id), serde_json::json!({"from": t.status, "reason": reason})).await?;
        Ok(n)
    }

    /// Puts a task that failed, was cancelled, waits for a person or was parked back in the queue.
    pub async fn retry_task(&self, task_id: &str, who: &str) -> StoreResult<Task> {
        let t = self.ports.tasks.get(task_id).await?;
        let from = [
            TaskStatus::Failed,
            TaskStatus::Cancelled,
            TaskStatus::NeedsHuman,
            TaskStatus::Paused,
            TaskStatus::Backlog,
            TaskStatus::Review,
        ];
        let n = self.ports.tasks.transition(&t.id, &from, TaskStatus::Pending, None, self.now()).await?;
        self.audit(who, "task.retry", &t.id, serde_json::json!(t.status), serde_json::json!(n.status), None).await?;
        self.event("task.retried", who, Some(&t.id), serde_json::json!({"from": t.status})).await?;
        Ok(n)
    }

    /// Gives a task to another configured agent.
    pub async fn reassign_task(&self, task_id: &str, agent: &str, who: &str) -> StoreResult<Task> {
        if self.config.agent(agent).is_none() {
            return Err(StoreError::Invalid(format!("{agent:?} is not a configured agent")));
        }
        let t = self.ports.tasks.get(task_id).await?;
        let n = self.ports.tasks.assign(&t.id, Some(agent), self.now()).await?;
        self.audit(who, "task.reassign", &t.id, serde_json::json!(t.assigned_to), serde_json::json!(agent), None).await?;
        self.event("task.reassigned", who, Some(&t.id), serde_json::json!({"from": t.assigned_to, "to": agent})).await?;
        Ok(n)
    }
}
