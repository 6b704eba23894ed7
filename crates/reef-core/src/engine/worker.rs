//! Workers: claim tasks for the agents they serve, run them under a renewed lease, and finish
//! them — fenced by the lease token, so a task reclaimed after a crash is never completed twice.
//!
//! Invariants: concurrency limits are held as leases in the store (they hold across processes
//! and machines); a running child is stopped when its lease is lost, the operator stops it, or
//! the worker shuts down, and its task goes back to pending.

use super::exec::{ExecError, Job};
use super::review::{finish_reviewed, review, Review};
use super::runtime::Engine;
use super::slots::{acquire_slot, cap_has_room, cap_hold_key, Slot};
use super::EngineError;
use crate::domain::change::{ChangeRecord, Step};
use crate::factory::Hold;
use crate::rules::policy::Gate;
use crate::*;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Claims the next task some eligible agent can run, with its slot.
async fn try_claim(e: &Engine, rotate: usize) -> StoreResult<Option<(Task, Slot)>> {
    let f = &e.factory;
    // The factory's hold is read once per pass; each agent adds only its own.
    if f.hold_of(None).await?.is_some() {
        return Ok(None);
    }
    let live = f.live().await?;
    let n = live.agents.len();
    for i in 0..n {
        let agent = &live.agents[(i + rotate) % n];
        if f.hold_of(Some(&agent.name)).await?.is_some() {
            continue;
        }
        if !cap_has_room(e, &agent.name).await? {
            continue;
        }
        let Some(slot) = acquire_slot(e, agent).await? else { continue };
        let filter = ClaimFilter { agents: Some(vec![agent.name.clone()]), include_unassigned: false };
        match f.ports.tasks.claim(&e.id, &filter, f.config.engine.lease, f.now()).await {
            Ok(Some(t)) => return Ok(Some((t, slot))),
            Ok(None) => slot.release(e).await,
            Err(err) => {
                slot.release(e).await;
                return Err(err);
            }
        }
    }
    Ok(None)
}

/// Runs workers until `shutdown`: claims while there is capacity, waits on the store's watch
/// (not a timer that calls anything) when there is no work.
#[tracing::instrument(skip_all, fields(engine = %e.id))]
pub async fn run(e: Arc<Engine>, shutdown: CancellationToken) -> Result<(), EngineError> {
    let reaped = super::children::reap_orphans(&e.children_dir());
    if !reaped.is_empty() {
        tracing::warn!(count = reaped.len(), "reaped agent processes left by a previous REEF");
    }
    for x in &e.cli {
        if let Some(m) = &x.mcp {
            m.sweep(x.cfg.timeout + Duration::from_secs(600));
        }
    }
    let f = e.factory.clone();
    f.sync_live(&format!("reef:{}", e.id)).await?;
    let sem = Arc::new(tokio::sync::Semaphore::new(f.config.engine.workers));
    let mut changes = f.ports.changes.watch(None).await?;
    let mut jobs = JoinSet::new();
    let mut rotate = 0usize;
    loop {
        while let Some(r) = jobs.try_join_next() {
            if let Err(err) = r {
                tracing::error!(error = %err, "a job panicked");
            }
        }
        let permit = tokio::select! {
            p = sem.clone().acquire_owned() => p.map_err(|_| EngineError::Stopped("worker semaphore closed".into()))?,
            _ = shutdown.cancelled() => break,
        };
        rotate = rotate.wrapping_add(1);
        let claimed = match try_claim(&e, rotate).await {
            Ok(c) => c,
            Err(err) => {
                tracing::warn!(error = %err, "claim failed; retrying");
                None
            }
        };
        match claimed {
            Some((task, slot)) => {
                let (e2, cancel) = (e.clone(), shutdown.child_token());
                jobs.spawn(async move {
                    run_job(&e2, task, slot, cancel).await;
                    drop(permit);
                });
            }
            None => {
                drop(permit);
                // Woken by any change (a new task, a decision, a resume); the timeout covers
                // what produces no change: leases expiring, a new day lifting a cap.
                tokio::select! {
                    c = changes.next() => {
                        if let Some(Ok(c)) = c {
                            if c.collection == collections::AGENT_STATE || c.collection == collections::SETTINGS {
                                f.forget_live();
                            }
                        }
                    }
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
        }
    }
    // Children are stopped through the jobs' cancellation; their tasks go back to pending.
    while jobs.join_next().await.is_some() {}
    Ok(())
}

/// Why a running job was told to stop.
#[derive(Debug, Clone, Copy, PartialEq)]
enum StopReason {
    LeaseLost,
    Operator,
    Shutdown,
    /// The agent asked for an answer and did not end its turn within the grace.
    Parked,
}

#[tracing::instrument(skip_all, fields(task = %task.id))]
async fn run_job(e: &Engine, task: Task, slot: Slot, shutdown: CancellationToken) {
    // The lease was taken (or last renewed) just before this: the renewal deadline counts from here.
    let leased_at = tokio::time::Instant::now();
    let f = &e.factory;
    let token = task.lease.as_ref().map(|l| l.token.clone()).unwrap_or_default();
    let agent_name = task.assigned_to.clone().unwrap_or_default();
    let live = match f.live_fresh().await {
        Ok(l) => l,
        Err(err) => {
            // The store is away: let the lease lapse and another pass take the task.
            tracing::warn!(%err, "could not read the agents' settings; the task goes back when its lease lapses");
            return;
        }
    };
    let Some(agent) = live.agent(&agent_name).cloned() else {
        let _ = f
            .ports
            .tasks
            .finish(&task.id, &token, Outcome::NeedsHuman { reason: format!("agent {agent_name:?} is not configured") }, f.now())
            .await;
        slot.release(e).await;
        return;
    };
    // Claims count attempts; one past the limit means the earlier ones ended with no outcome (a
    // worker that died, perhaps killed by what it ran): give up rather than run it forever.
    let max = task.max_attempts.unwrap_or(f.config.engine.max_attempts);
    if task.attempts > max {
        let error = format!(
            "gave up: this would be attempt {} of at most {max}; the earlier ones ended without an outcome (their worker stopped or crashed)",
            task.attempts
        );
        let ev = Event {
            id: new_id(),
            kind: "task.failed".into(),
            at: f.now(),
            actor: format!("agent:{}", agent.name),
            subject: Some(task.id.clone()),
            data: serde_json::json!({"error": error, "attempts": task.attempts, "alert": true}),
        };
        let _ = f.ports.tasks.finish_with(&task.id, &token, Outcome::Failed { error }, Some(f.redacted_event(ev)), f.now()).await;
        slot.release(e).await;
        return;
    }
    let cancel = CancellationToken::new();
    let stop = Arc::new(std::sync::Mutex::new(None::<StopReason>));

    // Heartbeat: renew the lease and the slot; watch for operator stops and lost leases.
    let slot = &slot;
    let hb = {
        let (cancel, stop, shutdown) = (cancel.clone(), stop.clone(), shutdown.clone());
        let (id, token, agent, attempt) = (task.id.clone(), token.clone(), agent.name.clone(), task.attempts);
        let lease = f.config.engine.lease;
        let period = lease / 3;
        // The lease runs out `lease` after the last renewal that reached the store. Before then —
        // two periods without one — the agent is stopped: by the time another worker may claim
        // the task, nothing of this attempt still acts (a store that cannot be reached is no
        // licence to go on).
        let mut renewed_at = leased_at;
        async move {
            loop {
                // Every store call below is cut off at the deadline, so a hanging store cannot
                // hold the check back.
                let deadline = renewed_at + 2 * period;
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + period)) => {}
                    _ = shutdown.cancelled() => { *stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(StopReason::Shutdown); cancel.cancel(); return; }
                    _ = cancel.cancelled() => return,
                }
                let asked = tokio::time::Instant::now();
                match tokio::time::timeout_at(deadline, f.ports.tasks.renew(&id, &token, lease, f.now())).await {
                    Ok(Ok(_)) => renewed_at = asked,
                    Ok(Err(StoreError::LeaseLost { .. } | StoreError::NotFound { .. })) => {
                        *stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(StopReason::LeaseLost);
                        cancel.cancel();
                        return;
                    }
                    Ok(Err(err)) => tracing::warn!(task = %id, %err, "could not renew the lease"),
                    Err(_) => tracing::warn!(task = %id, "renewing the lease did not finish before the deadline"),
                }
                if renewed_at.elapsed() >= 2 * period {
                    tracing::warn!(task = %id, "no lease renewal reached the store for {:?}: stopping the agent before the lease runs out", renewed_at.elapsed());
                    *stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(StopReason::LeaseLost);
                    cancel.cancel();
                    return;
                }
                let deadline = renewed_at + 2 * period;
                let _ = tokio::time::timeout_at(deadline, slot.renew(e)).await;
                let _ = tokio::time::timeout_at(deadline, f.ports.agents.heartbeat(&agent, AgentStatus::Working, Some(&id), f.now())).await;
                // Asked for an approval or a person and still going after the grace: stop it.
                if let Ok(Ok(Some((_, at)))) = tokio::time::timeout_at(deadline, f.waiting(&id, attempt)).await {
                    if (f.now() - at).to_std().unwrap_or_default() >= f.config.mcp.park_grace {
                        *stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(StopReason::Parked);
                        cancel.cancel();
                        return;
                    }
                }
                if tokio::time::timeout_at(deadline, f.effective_hold(&agent)).await.ok().and_then(Result::ok).flatten() == Some(Hold::Stop)
                {
                    *stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(StopReason::Operator);
                    cancel.cancel();
                    return;
                }
            }
        }
    };
    let work = async {
        let gate = f.governing(&live, task.action_class.as_deref(), task.kind.as_deref());
        let r = execute(e, &task, &token, &agent, gate, cancel.clone()).await;
        cancel.cancel();
        r
    };
    let (result, ()) = tokio::join!(work, hb);
    let reason = *stop.lock().unwrap_or_else(|p| p.into_inner());
    // The agent asked for an approval or a person through MCP: the task waits for the answer
    // (its lease released) instead of finishing. Never for a lease already lost to another worker.
    let parked = match reason {
        Some(StopReason::LeaseLost) => false,
        _ => f.park_after_attempt(&task, &token).await.unwrap_or_else(|err| {
            tracing::warn!(%err, "could not park the task for its agent's question; finishing it instead");
            false
        }),
    };
    if !parked {
        finish(e, &task, &token, &agent, result, reason).await;
    }
    let held = f.ports.settings.get(&cap_hold_key(&agent.name)).await.ok().flatten().is_some();
    let status = if held { AgentStatus::CapReached } else { AgentStatus::Idle };
    let _ = f.ports.agents.heartbeat(&agent.name, status, None, f.now()).await;
    slot.release(e).await;
}

enum Ran {
    /// The gate sent the task elsewhere (awaiting approval, needs human); nothing more to do.
    Gated,
    Done(Result<super::exec::ExecSuccess, ExecError>, Gate),
    /// The work succeeded and a reviewer gave a verdict on it (and on its change, if it made one).
    Reviewed(super::exec::ExecSuccess, Review, Option<Box<ChangeRecord>>),
    /// The agent finished, but the product's checks fail on its change.
    ChecksFailed(Box<ChangeRecord>),
}

/// `gate`: the class that governs the task (its own or its executor's, the stricter) and its gate.
async fn execute(
    e: &Engine,
    task: &Task,
    token: &str,
    agent: &AgentConfig,
    gate: (Option<String>, Gate),
    cancel: CancellationToken,
) -> Ran {
    let f = &e.factory;
    let now = f.now();
    let (class, mut gate) = gate;
    let class = class.unwrap_or_default();
    let step = match f.step_of(task).await {
        Ok(s) => s,
        Err(err) => return Ran::Done(Err(ExecError::Failed(format!("could not read the task's delivery step: {err}"))), gate),
    };
    // A change that touches tests or check definitions never merges without a person, whatever
    // the policy says of merges.
    let flags = match &step {
        Some(Step::Merge { flags, .. }) => flags.clone(),
        _ => vec![],
    };
    // Nor does one that becomes a pull request: pushed to the forge, the repository's CI runs it
    // with whatever that CI can reach, before anyone there has looked.
    let forge = match &step {
        Some(Step::Merge { product, .. }) => f.pipeline(Some(product)).await.ok().flatten().and_then(|p| p.forge),
        _ => None,
    };
    gate = crate::rules::policy::flagged_gate(gate, !flags.is_empty() || forge.is_some());

    match gate {
        Gate::NeverAuto => {
            let reason = format!("action class {class:?} is never automatic: a person must do it");
            let _ = f.ports.tasks.finish(&task.id, token, Outcome::NeedsHuman { reason: reason.clone() }, now).await;
            let _ =
                f.event("task.needs_human", &format!("agent:{}", agent.name), Some(&task.id), serde_json::json!({"reason": reason})).await;
            return Ran::Gated;
        }
        Gate::ApproveBefore => {
            // An approval the agent asked for mid-task (another action) never opens this gate, nor
            // one given for another class than governs the task now.
            let approved = f.ports.approvals.for_task(&task.id).await.ok().and_then(|l| {
                l.into_iter()
                    .find(|a| a.status == ApprovalStatus::Approved && a.attempt == task.attempts && !a.in_task && a.action_class == class)
            });
            // And it opens the gate once: a task whose attempt count went back (blocked on its
            // subtasks, then claimed again) must not run its gated work a second time on it.
            let covered = match approved {
                Some(a) => f.use_approval(&a.id, &task.id).await.unwrap_or(false),
                None => false,
            };
            if !covered {
                let req = NewApproval {
                    task_id: task.id.clone(),
                    action_class: class.clone(),
                    summary: crate::domain::change::flagged_summary(&task.title, &flags)
                        + &forge.as_ref().map(super::delivery::pulls::forge_warning).unwrap_or_default(),
                    work_products: task.work_products.clone(),
                    requested_by: format!("agent:{}", agent.name),
                    expires_at: Some(now + chrono::Duration::from_std(f.config.policy.expiry).unwrap_or_default()),
                    // It covers the run that follows the decision: this claim's attempt + 1.
                    attempt: task.attempts + 1,
                    in_task: false,
                };
                match f.ports.approvals.request(req, now).await {
                    Ok(a) => {
                        let _ = f.ports.tasks.transition(&task.id, &[TaskStatus::Claimed], TaskStatus::AwaitingApproval, None, now).await;
                        let _ = f
                            .event(
                                "approval.requested",
                                &format!("agent:{}", agent.name),
                                Some(&task.id),
                                serde_json::json!({"approval": a.id, "action_class": a.action_class, "summary": a.summary}),
                            )
                            .await;
                    }
                    Err(err) => tracing::error!(error = %err, "could not request approval; the lease will expire and the task comes back"),
                }
                return Ran::Gated;
            }
        }
        Gate::Auto | Gate::NotifyAfter => {}
    }
    if let Err(err) = f.ports.tasks.start(&task.id, token, now).await {
        return Ran::Done(Err(ExecError::Failed(format!("could not start: {err}"))), gate);
    }
    let _ = f.event("task.running", &format!("agent:{}", agent.name), Some(&task.id), serde_json::json!({"attempt": task.attempts})).await;
    let job = Job {
        task: task.clone(),
        agent: agent.clone(),
        tier: task.model_tier.or(agent.model_tier).unwrap_or(ModelTier::Cheap),
        attempt: task.attempts,
        idempotency_key: Job::idempotency_key_for(task),
        workdir: e.workdir(task),
        memories: e.memories_for(task, e.factory.config.memory.recall).await,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(64);
    let fwd = async {
        while let Some(line) = rx.recv().await {
            let _ = f.event("task.output", &format!("agent:{}", agent.name), Some(&task.id), serde_json::json!({"line": line})).await;
        }
    };
    let exec = e.executor_for(task);
    let work = async {
        // A delivery step is REEF's own work; anything else is the agent's.
        let r = match &step {
            Some(s) => super::delivery::steps::run(e, task, s.clone(), tx.clone(), cancel.clone()).await,
            None => exec.run(&job, tx.clone(), cancel.clone()).await,
        };
        match r {
            Ok(s) if step.is_none() => {
                // Work in a worktree: committed, measured and checked before anyone calls it done.
                let change = match super::delivery::after_attempt(e, &job, &cancel).await {
                    Ok(c) => c,
                    Err(why) => {
                        drop(tx);
                        return Ran::Done(Err(ExecError::Failed(why)), gate);
                    }
                };
                if let Some(rec) = change.as_ref().filter(|r| !r.checks_passed()) {
                    drop(tx);
                    return Ran::ChecksFailed(Box::new(rec.clone()));
                }
                let piped = change.is_some() && f.pipeline(task.product.as_deref()).await.ok().flatten().is_some();
                if task.wants_review() || piped {
                    let verdict = review(e, &job, &s.output, change.as_ref(), tx, cancel).await;
                    Ran::Reviewed(s, verdict, change.map(Box::new))
                } else {
                    drop(tx);
                    Ran::Done(Ok(s), gate)
                }
            }
            other => {
                drop(tx);
                Ran::Done(other, gate)
            }
        }
    };
    let (ran, ()) = tokio::join!(work, fwd);
    ran
}

async fn finish(e: &Engine, task: &Task, token: &str, agent: &AgentConfig, ran: Ran, stop: Option<StopReason>) {
    let f = &e.factory;
    let now = f.now();
    let actor = format!("agent:{}", agent.name);
    let (result, gate) = match ran {
        Ran::Gated => return,
        Ran::Done(r, g) => (r, g),
        Ran::Reviewed(s, verdict, change) => return finish_reviewed(e, task, token, &actor, s, verdict, change.map(|c| *c)).await,
        Ran::ChecksFailed(rec) => return checks_failed(e, task, token, &actor, *rec).await,
    };
    let max = task.max_attempts.unwrap_or(f.config.engine.max_attempts);
    let (outcome, kind, detail) = match result {
        Ok(s) => ("task.done", s).into_outcome(),
        Err(ExecError::Cancelled) => match stop {
            // Someone else holds the task now: nothing of ours may be written to it.
            Some(StopReason::LeaseLost) | None => {
                tracing::warn!(task = %task.id, "lease lost while running; the result is dropped");
                return;
            }
            Some(StopReason::Operator) => {
                (Outcome::Requeue { error: "stopped by the operator".into() }, "task.stopped", serde_json::json!({}))
            }
            Some(StopReason::Shutdown) => (Outcome::Requeue { error: "worker shut down".into() }, "task.requeued", serde_json::json!({})),
            Some(StopReason::Parked) => {
                (Outcome::Requeue { error: "stopped while waiting for an answer".into() }, "task.requeued", serde_json::json!({}))
            }
        },
        Err(ExecError::BudgetRefused { scope, message, .. }) if scope.starts_with("task:") => {
            let reason = format!("{message} (fix: raise the task's budget with `reef task add --budget`, or caps.task_default_usd)");
            (Outcome::NeedsHuman { reason }, "task.needs_human", serde_json::json!({"scope": scope}))
        }
        Err(ExecError::BudgetRefused { scope, requested, message }) => {
            // Held, not cancelled: the agent takes no work until the period ends or the cap is
            // raised; its tasks stay queued.
            let hold = serde_json::json!({"scope": scope, "requested": requested, "at": time::fmt_ts(&now)});
            let _ = f.ports.settings.put(&cap_hold_key(&agent.name), hold).await;
            let _ = f.ports.agents.heartbeat(&agent.name, AgentStatus::CapReached, None, now).await;
            let data = serde_json::json!({"task": task.id, "scope": scope, "reason": message, "alert": true});
            let _ = f.event("budget.cap_reached", &actor, Some(&format!("agent:{}", agent.name)), data).await;
            (Outcome::Retry { error: format!("held: {message}") }, "task.held", serde_json::json!({}))
        }
        Err(ExecError::Stopped(reason)) => (Outcome::NeedsHuman { reason }, "task.needs_human", serde_json::json!({"stopped": true})),
        Err(err) if err.is_final() => (Outcome::Failed { error: err.to_string() }, "task.failed", serde_json::json!({})),
        Err(err) if task.attempts >= max => {
            (Outcome::Failed { error: format!("{err} (after {} attempts)", task.attempts) }, "task.failed", serde_json::json!({}))
        }
        Err(err) => {
            let cur = task.model_tier.or(agent.model_tier).unwrap_or(ModelTier::Cheap);
            if err.escalates() {
                if let Some(next) = cur.escalate() {
                    let _ = f.ports.tasks.set_tier(&task.id, next, now).await;
                }
            }
            (Outcome::Retry { error: err.to_string() }, "task.retry", serde_json::json!({}))
        }
    };
    // What the agent wrote never reaches the store with a known secret in it.
    let outcome = f.redacted(outcome);
    let (status, error) = summary(&outcome);
    let tier = task.model_tier.or(agent.model_tier).unwrap_or(ModelTier::Cheap);
    let cost = detail.get("cost").and_then(|c| c.as_i64()).unwrap_or(0);
    // Outcome analytics read these: who, on which tier, what type, at what cost, how long.
    let data = serde_json::json!({
        "status": status, "detail": detail, "error": error,
        "agent": agent.name, "tier": tier.as_str(), "task_type": task.kind.as_deref().unwrap_or("(none)"),
        "cost": cost, "latency_ms": (now - task.claimed_at.unwrap_or(now)).num_milliseconds().max(0),
    });
    let ev = Event { id: new_id(), kind: kind.into(), at: now, actor: actor.clone(), subject: Some(task.id.clone()), data };
    let remembered = match &outcome {
        Outcome::Succeeded { result, review: false, .. } => Some(result.clone()),
        _ => None,
    };
    match f.ports.tasks.finish_with(&task.id, token, outcome, Some(f.redacted_event(ev)), now).await {
        Ok(t) => {
            if let Some(r) = remembered {
                if let Err(err) = e.remember(&t, &agent.name, &r).await {
                    tracing::warn!(task = %t.id, error = %err, "could not record the result in memory and the graph");
                }
            }
            if gate == Gate::NotifyAfter && t.status == TaskStatus::Done {
                let _ =
                    f.event("approval.notify_after", &actor, Some(&task.id), serde_json::json!({"action_class": task.action_class})).await;
            }
        }
        Err(StoreError::LeaseLost { .. }) => {
            tracing::warn!(task = %task.id, "finished after losing the lease; another worker owns the task, result dropped")
        }
        Err(err) => {
            tracing::error!(task = %task.id, error = %err, "could not record the outcome; the lease will expire and the task comes back")
        }
    }
}

/// Failing checks go back to the builder with what failed, up to the product's rounds, then to a person.
async fn checks_failed(e: &Engine, task: &Task, token: &str, actor: &str, rec: ChangeRecord) {
    let f = &e.factory;
    let max = f.pipeline(task.product.as_deref()).await.ok().flatten().map(|p| p.max_check_rounds).unwrap_or(3);
    let feedback = super::delivery::check_feedback(&rec);
    let _ = f.comment_marked(&task.id, Mark::Checks, "reef:checks", &feedback).await;
    let failed: Vec<&str> = rec.checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect();
    // The rounds end at the product's limit, or where the task's attempts do (review rounds count
    // as attempts too): a person is asked, never a silent give-up at the next claim.
    let attempts = task.max_attempts.unwrap_or(f.config.engine.max_attempts);
    let (outcome, kind) = if task.check_rounds() + 1 >= max || task.attempts >= attempts {
        (
            Outcome::NeedsHuman {
                reason: format!(
                    "the checks ({}) still fail after {} rounds (attempt {} of at most {attempts}; the product allows {max} rounds)",
                    failed.join(", "),
                    task.check_rounds() + 1,
                    task.attempts
                ),
            },
            "task.needs_human",
        )
    } else {
        (Outcome::Retry { error: format!("the checks failed: {}", failed.join(", ")) }, "task.retry")
    };
    let (status, error) = summary(&outcome);
    let data = serde_json::json!({"status": status, "error": error, "head": rec.head, "failed": failed});
    let ev = Event { id: new_id(), kind: kind.into(), at: f.now(), actor: actor.into(), subject: Some(task.id.clone()), data };
    if let Err(err) = f.ports.tasks.finish_with(&task.id, token, f.redacted(outcome), Some(f.redacted_event(ev)), f.now()).await {
        tracing::warn!(task = %task.id, error = %err, "could not record the failed checks");
    }
}

trait IntoOutcome {
    fn into_outcome(self) -> (Outcome, &'static str, serde_json::Value);
}

impl IntoOutcome for (&'static str, super::exec::ExecSuccess) {
    fn into_outcome(self) -> (Outcome, &'static str, serde_json::Value) {
        let (kind, s) = self;
        (Outcome::Succeeded { result: s.output, work_products: s.work_products, review: false }, kind, serde_json::json!({"cost": s.cost}))
    }
}

/// The state an outcome leaves the task in, and its error, for the outcome's event.
pub(super) fn summary(o: &Outcome) -> (TaskStatus, Option<&str>) {
    match o {
        Outcome::Succeeded { review: true, .. } => (TaskStatus::Review, None),
        Outcome::Succeeded { .. } => (TaskStatus::Done, None),
        Outcome::Retry { error } | Outcome::Requeue { error } => (TaskStatus::Pending, Some(error)),
        Outcome::Failed { error } => (TaskStatus::Failed, Some(error)),
        Outcome::NeedsHuman { reason } => (TaskStatus::NeedsHuman, Some(reason)),
        Outcome::AwaitingApproval => (TaskStatus::AwaitingApproval, None),
        Outcome::Blocked { .. } => (TaskStatus::Blocked, None),
    }
}
