//! Task tools: an agent's own task and the subtasks below it — create_task (budget, policy and
//! product inherited from the parent), task_status, add_comment, report_progress.
//! Invariant: a task token reads and writes its own task and those below it, nothing else.

use super::args::*;
use super::*;

/// How long a subtask's creation waits for the one before it, and the longest it holds the
/// parent (a creator that dies lets go when this runs out).
const CARVE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
const CARVE_HOLD: std::time::Duration = std::time::Duration::from_secs(30);

impl Toolbox {
    /// The caller's own task, which must still be live.
    pub(super) async fn own(&self, c: &Caller) -> ToolResult<Task> {
        let Some(id) = c.task_id() else { return Err(ToolError::OutOfScope("this needs a task token".into())) };
        let t = self.factory.ports.tasks.get(id).await?;
        if t.status.is_terminal() {
            return Err(ToolError::OutOfScope(format!("task {id} is {}: its token no longer acts", t.status)));
        }
        Ok(t)
    }

    /// A task the caller may read or comment on: any for an operator; for a task token its own
    /// task or one below it.
    pub(super) async fn readable(&self, c: &Caller, id: Option<&str>) -> ToolResult<Task> {
        let f = &self.factory;
        match (c, id) {
            (Caller::Operator { .. }, None) => Err(ToolError::Invalid("task_id is required with an operator token".into())),
            (Caller::Operator { .. }, Some(id)) => {
                check_name("task_id", id, 64)?;
                Ok(f.ports.tasks.get(id).await?)
            }
            (Caller::Task { task_id, .. }, None) => Ok(f.ports.tasks.get(task_id).await?),
            (Caller::Task { task_id, .. }, Some(id)) => {
                check_name("task_id", id, 64)?;
                if id == task_id {
                    return Ok(f.ports.tasks.get(id).await?);
                }
                let refuse =
                    || ToolError::OutOfScope(format!("task {id} is not yours: this token acts on task {task_id} and its subtasks only"));
                let t =
                    f.ports.tasks.get(id).await.map_err(|e| if matches!(e, StoreError::NotFound { .. }) { refuse() } else { e.into() })?;
                if self.ancestors(&t, f.config.mcp.max_depth + 1).await.contains(task_id) {
                    Ok(t)
                } else {
                    Err(refuse())
                }
            }
        }
    }

    /// The tasks directly below `t`.
    pub(super) async fn children(&self, t: &Task) -> ToolResult<Vec<Task>> {
        let q = TaskQuery { parent_id: Some(t.id.clone()), limit: Some(10_000), ..Default::default() };
        Ok(self.factory.ports.tasks.list(&q).await?.items)
    }

    /// The ids above `t`, nearest first, at most `max` of them.
    pub(super) async fn ancestors(&self, t: &Task, max: u32) -> Vec<String> {
        let mut v = vec![];
        let mut cur = t.parent_id.clone();
        while let Some(p) = cur.filter(|_| v.len() < max as usize) {
            cur = self.factory.ports.tasks.get(&p).await.ok().and_then(|x| x.parent_id);
            v.push(p);
        }
        v
    }

    /// The task's budget: (cap, what is left after its spend, reservations and its subtasks' budgets).
    pub(super) async fn budget_left(&self, t: &Task, children: &[Task]) -> ToolResult<(Usd, Usd)> {
        let f = &self.factory;
        let cap = t.budget_usd.unwrap_or(f.config.task_default_cap);
        let totals = f.ports.ledger.totals(&[ScopeKey::task(&t.id)]).await?;
        let used = totals.first().map(|x| x.spent + x.reserved).unwrap_or_default();
        let allotted: Usd = children.iter().map(|c| c.budget_usd.unwrap_or(f.config.task_default_cap)).sum();
        Ok((cap, cap - used - allotted))
    }

    /// `create_task`. An agent's subtasks are carved one at a time per parent (a lease in the
    /// store, so across processes too): two calls at once cannot both be given what is left of
    /// the parent's budget, or its last subtask slot.
    pub(super) async fn create_task(&self, c: &Caller, a: CreateArgs) -> ToolResult<Value> {
        let Caller::Task { task_id, .. } = c else { return self.create_task_carved(c, a).await };
        let f = &self.factory;
        let (lock, me) = (format!("subtasks:{task_id}"), new_id());
        let give_up = std::time::Instant::now() + CARVE_WAIT;
        while !f.ports.leases.acquire(&lock, &me, CARVE_HOLD, f.now()).await? {
            if std::time::Instant::now() >= give_up {
                return Err(ToolError::Unavailable(format!("another subtask of {task_id} is being created; try again")));
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let r = self.create_task_carved(c, a).await;
        let _ = f.ports.leases.release(&lock, &me).await;
        r
    }

    async fn create_task_carved(&self, c: &Caller, a: CreateArgs) -> ToolResult<Value> {
        let f = &self.factory;
        check_text("title", &a.title, crate::MAX_TITLE_BYTES, true)?;
        check_text("description", &a.description, MAX_MCP_DESCRIPTION, false)?;
        for (field, v) in [
            ("kind", &a.kind),
            ("role", &a.role),
            ("assigned_to", &a.assigned_to),
            ("action_class", &a.action_class),
            ("product", &a.product),
        ] {
            if let Some(v) = v {
                check_name(field, v, 64)?;
            }
        }
        if let Some(c) = &a.action_class {
            // A class is lowercase `[a-z0-9_]`: a near-miss (`Data_Deletion`, `legal.`) would only
            // look like the real one to the person deciding.
            crate::rules::policy::check_class(c).map_err(|e| ToolError::Invalid(format!("action_class: {e}")))?;
        }
        if !(-100..=100).contains(&a.priority) {
            return Err(ToolError::Invalid(format!("priority {} is outside -100..100", a.priority)));
        }
        if let Some(b) = a.budget_usd {
            if !b.is_finite() || b < 0.0 {
                return Err(ToolError::Invalid(format!("budget_usd {b} is not a non-negative amount")));
            }
        }
        if a.depends_on.len() > 20 {
            return Err(ToolError::Invalid(format!("depends_on names {} tasks; the limit is 20", a.depends_on.len())));
        }
        // A subtask that waits for its own parent (or an ancestor) would wait for ever: the parent
        // waits for it.
        let above: Vec<String> = match c {
            Caller::Task { task_id, .. } => match f.ports.tasks.get(task_id).await {
                Ok(own) => std::iter::once(own.id.clone()).chain(self.ancestors(&own, f.config.mcp.max_depth + 1).await).collect(),
                Err(_) => vec![task_id.clone()],
            },
            Caller::Operator { .. } => vec![],
        };
        for d in &a.depends_on {
            check_name("depends_on", d, 64)?;
            if above.contains(d) {
                return Err(ToolError::Invalid(format!(
                    "depends_on: {d} is your own task or one above it, which waits for its subtasks: they would wait for each other for ever"
                )));
            }
            f.ports.tasks.get(d).await.map_err(|e| match e {
                StoreError::NotFound { .. } => ToolError::Invalid(format!("depends_on: there is no task {d}")),
                e => e.into(),
            })?;
        }
        if let Some(k) = &a.idempotency_key {
            check_text("idempotency_key", k, 128, true)?;
        }
        let live = f.live().await?;
        if let Some(agent) = &a.assigned_to {
            if live.agent(agent).is_none() {
                return Err(ToolError::Invalid(format!(
                    "assigned_to: there is no agent {agent:?} (agents: {})",
                    live.agents.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
        }
        let mut new = NewTask {
            title: a.title.clone(),
            description: a.description.clone(),
            priority: a.priority,
            assigned_to: a.assigned_to.clone(),
            role: a.role.clone(),
            kind: a.kind.clone(),
            action_class: a.action_class.clone(),
            depends_on: a.depends_on.clone(),
            ..Default::default()
        };
        match c {
            Caller::Operator { .. } => {
                new.product = a.product.clone();
                new.budget_usd = a.budget_usd.map(Usd::from_dollars);
                new.idempotency_key = a.idempotency_key.clone();
            }
            Caller::Task { .. } => {
                let parent = self.own(c).await?;
                if a.product.is_some() && a.product != parent.product {
                    return Err(ToolError::Policy(format!(
                        "a subtask inherits its parent's product ({}); product {:?} refused",
                        parent.product.as_deref().unwrap_or("none"),
                        a.product.as_deref().unwrap_or_default()
                    )));
                }
                // The parent's gate binds its subtasks: none may run less guarded than it, counted
                // as each will run (its class or its executor's, the stricter).
                let (parent_class, parent_gate) = f.governing(&live, parent.action_class.as_deref(), parent.kind.as_deref());
                let class = a.action_class.clone().or(parent.action_class.clone());
                let (class, gate) = f.governing(&live, class.as_deref(), a.kind.as_deref());
                if gate.strictness() < parent_gate.strictness() {
                    return Err(ToolError::Policy(format!(
                        "action class {:?} ({}) is less guarded than the parent's {:?} ({}): a subtask inherits its parent's approval policy",
                        class.as_deref().unwrap_or(""),
                        gate.as_str(),
                        parent_class.as_deref().unwrap_or(""),
                        parent_gate.as_str()
                    )));
                }
                // Nor may it run where its agent reaches further (an executor with more network).
                if let Some(why) = f.config.wider_reach(a.kind.as_deref(), parent.kind.as_deref()) {
                    return Err(ToolError::Policy(why));
                }
                // The new task sits one below the parent, which sits below its ancestors.
                let depth = 1 + self.ancestors(&parent, f.config.mcp.max_depth).await.len() as u32;
                if depth > f.config.mcp.max_depth {
                    return Err(ToolError::Policy(format!(
                        "subtasks may go {} levels below their root task; this one would be deeper (mcp.max_depth)",
                        f.config.mcp.max_depth
                    )));
                }
                let key = format!(
                    "mcp:{}:{}",
                    parent.id,
                    a.idempotency_key.clone().unwrap_or_else(|| sha(&format!("{}\n{}", a.title, a.description))[..24].to_string())
                );
                // The same subtask asked for twice (a retried attempt) is the one already made.
                let siblings = self.children(&parent).await?;
                if let Some(t) = siblings.iter().find(|t| t.idempotency_key.as_deref() == Some(key.as_str())) {
                    return Ok(
                        json!({"task_id": t.id, "status": t.status, "created": false, "budget_usd": t.budget_usd.map(|b| b.dollars())}),
                    );
                }
                if siblings.len() as u32 >= f.config.mcp.max_subtasks {
                    return Err(ToolError::Policy(format!(
                        "task {} already has {} subtasks, the most one task may create (mcp.max_subtasks)",
                        parent.id,
                        siblings.len()
                    )));
                }
                let (cap, left) = self.budget_left(&parent, &siblings).await?;
                // Without a budget named, a subtask gets half of what is left (at most the default
                // task cap): the parent keeps room for its own next steps and for more subtasks —
                // the first of several would otherwise take everything.
                let want = a.budget_usd.map(Usd::from_dollars).unwrap_or_else(|| Usd(left.micros() / 2).min(f.config.task_default_cap));
                if left.micros() <= 0 || want > left || (a.budget_usd.is_none() && want.micros() <= 0) {
                    return Err(ToolError::OverBudget(format!(
                        "subtask budget {want} is more than task {}'s budget has left: {} of {cap} (spent, reserved and given to other subtasks)",
                        parent.id,
                        if left.micros() < 0 { Usd(0) } else { left },
                    )));
                }
                new.product = parent.product.clone();
                new.parent_id = Some(parent.id.clone());
                new.action_class = class;
                new.budget_usd = Some(want);
                new.idempotency_key = Some(key);
                new.repository = parent.work_products.repository.clone();
            }
        }
        f.fill_repository(&mut new).await?;
        new.validate_outside().map_err(ToolError::Invalid)?;
        let (task, created) = f.ports.tasks.create(new, f.now()).await?;
        if created {
            f.announce_created(&task, &c.actor()).await?;
        }
        Ok(json!({
            "task_id": task.id, "status": task.status, "created": created, "product": task.product,
            "parent_id": task.parent_id, "action_class": task.action_class, "budget_usd": task.budget_usd.map(|b| b.dollars()),
        }))
    }

    pub(super) async fn status_of(&self, t: &Task) -> ToolResult<Value> {
        let f = &self.factory;
        let children = self.children(t).await?;
        let approvals = f.ports.approvals.for_task(&t.id).await?;
        let (cap, left) = self.budget_left(t, &children).await?;
        let comments: Vec<Value> =
            t.comments.iter().rev().take(20).rev().map(|c| json!({"author": c.author, "body": c.body, "at": fmt_ts(&c.at)})).collect();
        Ok(json!({
            "id": t.id, "title": t.title, "description": t.description, "status": t.status, "product": t.product,
            "assigned_to": t.assigned_to, "action_class": t.action_class, "parent_id": t.parent_id, "attempts": t.attempts,
            "result": t.result, "error": t.error, "comments": comments,
            "subtasks": children.iter().take(200).map(|c| json!({"id": c.id, "title": c.title, "status": c.status, "result": c.result})).collect::<Vec<_>>(),
            "approvals": approvals.iter().map(approval_json).collect::<Vec<_>>(),
            "budget": {"cap_usd": cap.dollars(), "left_usd": left.dollars()},
        }))
    }

    pub(super) async fn add_comment(&self, c: &Caller, a: CommentArgs) -> ToolResult<Value> {
        check_text("body", &a.body, MAX_COMMENT, true)?;
        let t = self.readable(c, a.task_id.as_deref()).await?;
        if t.status.is_terminal() {
            return Err(ToolError::Store(StoreError::Conflict(format!("task {} is {}; its thread is closed", t.id, t.status))));
        }
        let t = self.factory.comment(&t.id, &c.actor(), &a.body).await?;
        Ok(json!({"task_id": t.id, "comments": t.comments.len()}))
    }

    pub(super) async fn progress(&self, c: &Caller, a: ProgressArgs) -> ToolResult<Value> {
        check_text("message", &a.message, MAX_SUMMARY, true)?;
        if a.percent.is_some_and(|p| p > 100) {
            return Err(ToolError::Invalid("percent is above 100".into()));
        }
        let t = self.own(c).await?;
        self.factory.event("task.progress", &c.actor(), Some(&t.id), json!({"message": a.message, "percent": a.percent})).await?;
        Ok(json!({"ok": true}))
    }
}
