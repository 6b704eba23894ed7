//! `Factory`: the operations hosts call (CLI, desktop app, later the MCP server), each one a
//! store change plus the event and audit entry that go with it.
//!
//! Invariant: every operator or agent action that changes state leaves an audit entry naming who
//! did it; every change a watcher cares about leaves an event.

use crate::config::Config;
use crate::ports::Ports;
use crate::*;
use serde::Serialize;
use std::sync::Arc;

#[derive(Clone)]
pub struct Factory {
    pub ports: Ports,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<Config>,
    /// This process's copy of the live config (agents, cap, gates as last edited).
    pub(crate) live_cache: Arc<crate::live::LiveCache>,
}

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

/// One cap and how much of it is used, for `reef status` and the overview.
#[derive(Debug, Clone, Serialize)]
pub struct CapUse {
    pub scope: String,
    pub cap: Usd,
    pub spent: Usd,
    pub reserved: Usd,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub store: StoreKind,
    pub timezone: String,
    pub tasks: Vec<(TaskStatus, u64)>,
    pub caps_today: Vec<CapUse>,
    pub pending_approvals: usize,
    /// The engine process holding the dispatcher lease, if one is active.
    pub dispatcher: Option<String>,
    pub malformed: Vec<Malformed>,
}

impl Factory {
    pub fn new(ports: Ports, clock: Arc<dyn Clock>, config: Arc<Config>) -> Self {
        Self { ports, clock, config, live_cache: Default::default() }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub async fn event(&self, kind: &str, actor: &str, subject: Option<&str>, data: serde_json::Value) -> StoreResult<()> {
        self.ports
            .events
            .append(Event { id: new_id(), kind: kind.into(), at: self.now(), actor: actor.into(), subject: subject.map(Into::into), data })
            .await
    }

    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        old: serde_json::Value,
        new: serde_json::Value,
        reason: Option<&str>,
    ) -> StoreResult<()> {
        self.ports
            .audit
            .record(AuditEntry {
                id: new_id(),
                at: self.now(),
                actor: actor.into(),
                action: action.into(),
                subject: subject.into(),
                old,
                new,
                host: self.config.operator.split('@').nth(1).map(Into::into),
                reason: reason.map(Into::into),
            })
            .await
    }

    /// Creates a task (once per idempotency key), with its event and audit entry.
    pub async fn create_task(&self, new: NewTask, actor: &str) -> StoreResult<Task> {
        new.validate().map_err(StoreError::Invalid)?;
        let (task, created) = self.ports.tasks.create(new, self.now()).await?;
        if created {
            self.announce_created(&task, actor).await?;
        }
        Ok(task)
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
        let t = self.ports.tasks.comment(task_id, Comment { author: author.into(), body: body.into(), at: self.now() }).await?;
        self.event("task.commented", author, Some(task_id), serde_json::json!({"author": author})).await?;
        Ok(t)
    }

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
            self.ports.tasks.comment(&a.task_id, Comment { author: who.into(), body, at: now }).await?;
            self.ports.tasks.transition(&a.task_id, &waiting, TaskStatus::Pending, None, now).await
        } else {
            match decision {
                Decision::Approve => self.ports.tasks.transition(&a.task_id, &waiting, TaskStatus::Pending, None, now).await,
                Decision::Reject => self.ports.tasks.transition(&a.task_id, &waiting, TaskStatus::Cancelled, reason, now).await,
                Decision::Revise => {
                    if let Some(r) = reason {
                        self.ports
                            .tasks
                            .comment(&a.task_id, Comment { author: who.into(), body: format!("Revision requested: {r}"), at: now })
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
        let asked_now =
            t.status.is_leased() && crate::toolbox::waiting(self, task_id, t.attempts).await?.is_some_and(|(m, _)| m["kind"] == "question");
        if t.status != TaskStatus::NeedsHuman && !asked_now {
            return Err(StoreError::Conflict(format!("task {task_id} is {}, not waiting for a person (needs_human)", t.status)));
        }
        let before = t.status;
        let mut t = self.comment(task_id, who, &format!("{ANSWER_PREFIX}{answer}")).await?;
        if before == TaskStatus::NeedsHuman {
            t = self.ports.tasks.transition(task_id, &[TaskStatus::NeedsHuman], TaskStatus::Pending, None, self.now()).await?;
        }
        self.audit(who, "task.answer", task_id, serde_json::json!({"status": before}), serde_json::json!({"status": t.status}), None)
            .await?;
        self.event("task.answered", who, Some(task_id), serde_json::json!({"by": who})).await?;
        Ok(t)
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
                    question: c.body[QUESTION_PREFIX.len()..].to_string(),
                    asked_by: c.author.clone(),
                    asked_at: c.at,
                })
            })
            .collect();
        v.sort_by_key(|q| q.asked_at);
        Ok(v)
    }

    /// The scopes (with caps in force) that one LLM call by `agent` for `task` must fit in.
    pub async fn scopes_for(&self, agent: &str, provider: Option<&str>, task: Option<&Task>) -> StoreResult<Vec<ScopeCap>> {
        let now = self.now();
        let tz = self.config.timezone;
        let live = self.live().await?;
        let mut v = vec![ScopeCap { scope: ScopeKey::global_day(tz, now), cap: live.global_daily_cap }];
        if let Some(a) = live.agent(agent) {
            v.push(ScopeCap { scope: ScopeKey::agent_day(agent, tz, now), cap: a.daily_cap_usd });
        }
        if let Some(p) = provider {
            if let Some(cap) = self.config.provider_monthly_caps.get(p) {
                v.push(ScopeCap { scope: ScopeKey::provider_month(p, tz, now), cap: *cap });
            }
        }
        if let Some(t) = task {
            v.push(ScopeCap { scope: ScopeKey::task(&t.id), cap: t.budget_usd.unwrap_or(self.config.task_default_cap) });
        }
        Ok(v)
    }

    /// Records one LLM call with its monthly roll-ups (in the factory's timezone).
    pub async fn record_call(&self, call: LlmCall) -> StoreResult<()> {
        let rollups = rollups_for(&call, self.config.timezone);
        self.ports.ledger.record_call(call, &rollups).await
    }

    /// Today's use of the global and per-agent caps (zero where nothing was spent yet).
    pub async fn caps_today(&self) -> StoreResult<Vec<CapUse>> {
        let now = self.now();
        let tz = self.config.timezone;
        let live = self.live().await?;
        let mut wanted = vec![(ScopeKey::global_day(tz, now), live.global_daily_cap)];
        for a in &live.agents {
            wanted.push((ScopeKey::agent_day(&a.name, tz, now), a.daily_cap_usd));
        }
        let keys: Vec<ScopeKey> = wanted.iter().map(|(k, _)| k.clone()).collect();
        let totals = self.ports.ledger.totals(&keys).await?;
        // The cap in force: today's settings with any one-day override (the ledger only keeps the
        // cap of its last reservation, which an edit since may have changed).
        let in_force =
            crate::engine::control::apply_overrides(self, wanted.iter().map(|(k, cap)| ScopeCap { scope: k.clone(), cap: *cap }).collect())
                .await?;
        Ok(in_force
            .into_iter()
            .map(|ScopeCap { scope: k, cap }| {
                let t = totals.iter().find(|t| t.scope == k);
                CapUse {
                    scope: k.0,
                    cap,
                    spent: t.map(|t| t.spent).unwrap_or_default(),
                    reserved: t.map(|t| t.reserved).unwrap_or_default(),
                }
            })
            .collect())
    }

    pub async fn status(&self) -> StoreResult<StatusReport> {
        let tasks = self.ports.tasks.counts().await?;
        let approvals = self.ports.approvals.list(Some(ApprovalStatus::Pending), 10_000).await?;
        Ok(StatusReport {
            store: self.ports.kind.clone(),
            timezone: self.config.timezone.name().into(),
            tasks,
            caps_today: self.caps_today().await?,
            pending_approvals: approvals.items.len(),
            dispatcher: self.ports.leases.holder("dispatcher", self.now()).await?,
            malformed: approvals.malformed,
        })
    }
}
