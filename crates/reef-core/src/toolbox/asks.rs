//! Asks: request_approval and ask_operator — the request is written, the task is parked when no
//! worker holds it, or a wait marker tells the worker to park it when the attempt ends.

use super::args::*;
use super::*;

/// What an agent is told after asking: stop, REEF resumes it with the answer.
const STOP_NOTE: &str =
    "Stop here and end your turn. REEF parks this task until the operator answers, then runs it again with the answer in its comments.";

impl Toolbox {
    /// Parks the caller's task for an answer: at once when no worker holds it, else through the
    /// wait marker the worker reads when the attempt ends.
    pub(super) async fn park(&self, t: &Task, wait: TaskStatus, marker: Value, note: Option<&str>) -> ToolResult<()> {
        let f = &self.factory;
        if t.status.is_leased() {
            f.ports.settings.put(&crate::settings::Key::Wait(&t.id).id(), marker).await?;
            return Ok(());
        }
        let from = [TaskStatus::Pending, TaskStatus::Backlog, TaskStatus::Blocked];
        if !from.contains(&t.status) {
            return Err(ToolError::Store(StoreError::Conflict(format!("task {} is {}; it cannot wait for an answer now", t.id, t.status))));
        }
        f.ports.tasks.transition(&t.id, &from, wait, note, f.now()).await?;
        Ok(())
    }

    pub(super) async fn request_approval(&self, c: &Caller, a: ApprovalArgs) -> ToolResult<Value> {
        let f = &self.factory;
        crate::rules::policy::check_class(&a.action_class).map_err(|e| ToolError::Invalid(format!("action_class: {e}")))?;
        check_text("summary", &a.summary, MAX_SUMMARY, true)?;
        let t = self.own(c).await?;
        let live = f.live_fresh().await?;
        if live.gate(Some(&a.action_class)) == Gate::NeverAuto {
            return Err(ToolError::Policy(format!(
                "action class {:?} is never automatic: no approval lets an agent do it; a person must (use ask_operator to hand it over)",
                a.action_class
            )));
        }
        let existing = f.ports.approvals.for_task(&t.id).await?;
        if let Some(p) = existing.iter().find(|x| x.in_task && x.status == ApprovalStatus::Pending) {
            if p.action_class == a.action_class {
                return Ok(json!({"ticket": p.id, "status": "pending", "created": false, "next": STOP_NOTE}));
            }
            return Err(ToolError::Policy(format!(
                "task {} already waits for approval {} ({}); one request at a time",
                t.id, p.id, p.action_class
            )));
        }
        let now = f.now();
        let req = NewApproval {
            task_id: t.id.clone(),
            action_class: a.action_class.clone(),
            summary: a.summary.clone(),
            work_products: t.work_products.clone(),
            requested_by: c.actor(),
            expires_at: Some(now + chrono::Duration::from_std(f.config.policy.expiry).unwrap_or_default()),
            attempt: t.attempts + 1,
            in_task: true,
        };
        let ap = f.ports.approvals.request(req, now).await?;
        self.park(
            &t,
            TaskStatus::AwaitingApproval,
            json!({"kind": "approval", "ticket": ap.id, "at": fmt_ts(&now), "attempt": t.attempts}),
            None,
        )
        .await?;
        f.event(
            "approval.requested",
            &c.actor(),
            Some(&t.id),
            json!({"approval": ap.id, "action_class": ap.action_class, "summary": ap.summary, "in_task": true}),
        )
        .await?;
        Ok(json!({"ticket": ap.id, "status": "pending", "created": true, "next": STOP_NOTE}))
    }

    pub(super) async fn ask_operator(&self, c: &Caller, a: QuestionArgs) -> ToolResult<Value> {
        let f = &self.factory;
        check_text("question", &a.question, MAX_QUESTION, true)?;
        let t = self.own(c).await?;
        let ticket = new_id();
        let now = f.now();
        f.comment_marked(&t.id, Mark::Question, &c.actor(), &format!("{QUESTION_PREFIX}{}", a.question)).await?;
        let reason = format!("asked the operator: {}", a.question);
        self.park(
            &t,
            TaskStatus::NeedsHuman,
            json!({"kind": "question", "ticket": ticket, "question": a.question, "at": fmt_ts(&now), "attempt": t.attempts}),
            Some(&reason),
        )
        .await?;
        f.event("task.question", &c.actor(), Some(&t.id), json!({"ticket": ticket, "question": a.question, "alert": true})).await?;
        Ok(json!({"ticket": ticket, "status": "needs_human", "next": STOP_NOTE}))
    }

    /// Waits for the caller's open subtasks: the task blocks on them (their ids added to its
    /// `depends_on`) and runs again once every one has ended; with none open, their results now.
    pub(super) async fn wait_for_subtasks(&self, c: &Caller) -> ToolResult<Value> {
        let f = &self.factory;
        let t = self.own(c).await?;
        // Every subtask (at most mcp.max_subtasks exist), so none open is missed.
        let q = TaskQuery { parent_id: Some(t.id.clone()), limit: Some(f.config.mcp.max_subtasks as usize + 1), ..Default::default() };
        let children = f.ports.tasks.list(&q).await?.items;
        let summary: Vec<Value> = children
            .iter()
            .map(|k| json!({"id": k.id, "title": k.title, "status": k.status, "result": k.result, "error": k.error}))
            .collect();
        let open: Vec<String> = children.iter().filter(|k| !k.status.is_terminal()).map(|k| k.id.clone()).collect();
        if open.is_empty() {
            return Ok(json!({"waiting": false, "subtasks": summary}));
        }
        let now = f.now();
        let marker = json!({"kind": "subtasks", "on": open, "at": fmt_ts(&now), "attempt": t.attempts});
        if t.status.is_leased() {
            f.ports.settings.put(&crate::settings::Key::Wait(&t.id).id(), marker).await?;
        } else {
            return Err(ToolError::Store(StoreError::Conflict(format!(
                "task {} is {}; only a running task waits for its subtasks",
                t.id, t.status
            ))));
        }
        f.event("task.waiting", &c.actor(), Some(&t.id), json!({"on": open})).await?;
        Ok(json!({
            "waiting": true,
            "on": open,
            "next": "Stop here and end your turn. REEF runs this task again when they have all ended; then read how with task_status."
        }))
    }
}
