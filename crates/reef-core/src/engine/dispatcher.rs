//! The dispatcher: one active per factory, elected by a lease; the others wait and take over
//! within the lease when it dies.
//!
//! It wakes on the store's watch: routes new tasks to agents and tiers, unblocks tasks whose
//! dependencies are done, and keeps time-driven promises no write announces — approvals that
//! expire, reservations whose holder died, tasks that stopped making progress, budget alerts.
//! It never calls an LLM.

use super::runtime::Engine;
use super::EngineError;
use crate::rules::policy::OnExpiry;
use crate::rules::routing::route;
use crate::*;
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub const LEASE_NAME: &str = "dispatcher";
const CURSOR: &str = "dispatcher";

/// Runs until `shutdown`, standing by while another process holds the dispatcher lease.
#[tracing::instrument(skip_all, fields(engine = %e.id))]
pub async fn run(e: Arc<Engine>, shutdown: CancellationToken) -> Result<(), EngineError> {
    let f = &e.factory;
    let me = format!("{}:dispatcher", e.id);
    let ttl = f.config.engine.lease;
    loop {
        // Standby until the lease is ours.
        loop {
            if f.ports.leases.acquire(LEASE_NAME, &me, ttl, f.now()).await.unwrap_or(false) {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(ttl / 3) => {}
                _ = shutdown.cancelled() => return Ok(()),
            }
        }
        tracing::info!("dispatcher active");
        let _ = f.event("dispatcher.active", &format!("reef:{}", e.id), None, serde_json::json!({})).await;
        let outcome = active(&e, &me, &shutdown).await;
        match outcome {
            Ok(true) => {
                let _ = f.ports.leases.release(LEASE_NAME, &me).await;
                return Ok(());
            }
            Ok(false) => tracing::warn!("dispatcher lease lost; standing by"),
            Err(err) => {
                tracing::error!(error = %err, "dispatcher error; standing by and retrying");
                tokio::time::sleep(ttl / 3).await;
            }
        }
    }
}

/// The active dispatcher's loop; `Ok(true)` on shutdown, `Ok(false)` when the lease was lost.
async fn active(e: &Engine, me: &str, shutdown: &CancellationToken) -> Result<bool, EngineError> {
    let f = &e.factory;
    let ttl = f.config.engine.lease;
    let from = f.ports.changes.load_cursor(CURSOR).await?;
    let mut changes = match f.ports.changes.watch(from).await {
        Ok(s) => s,
        // Too far behind (or a token from another store): start from now after a full sweep.
        Err(StoreError::HistoryLost(_)) | Err(StoreError::Invalid(_)) => f.ports.changes.watch(None).await?,
        Err(err) => return Err(err.into()),
    };
    sweep(e).await?;
    let mut renew = tokio::time::interval(ttl / 3);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_slow = Instant::now() - Duration::from_secs(3600);
    let mut since_save = 0u32;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(true),
            _ = renew.tick() => {
                if !f.ports.leases.acquire(LEASE_NAME, me, ttl, f.now()).await.unwrap_or(false) {
                    return Ok(false);
                }
            }
            _ = tick.tick() => {
                housekeeping(e).await?;
                crate::factory::schedules::tick(f, &f.schedules().await?).await?;
                if last_slow.elapsed() >= Duration::from_secs(10) {
                    last_slow = Instant::now();
                    sweep(e).await?;
                    budget_alerts(e).await?;
                    stuck(e).await?;
                }
            }
            ch = changes.next() => {
                let Some(ch) = ch else { return Err(EngineError::Stopped("change stream ended".into())) };
                let ch = ch?;
                if ch.collection == "tasks" {
                    on_task(e, &ch.id).await?;
                }
                since_save += 1;
                if since_save >= 20 {
                    since_save = 0;
                    f.ports.changes.save_cursor(CURSOR, &ch.token).await?;
                }
            }
        }
    }
}

async fn on_task(e: &Engine, id: &str) -> Result<(), EngineError> {
    let f = &e.factory;
    let t = match f.ports.tasks.get(id).await {
        Ok(t) => t,
        Err(StoreError::NotFound { .. }) => return Ok(()),
        Err(StoreError::Malformed { collection, id, reason }) => {
            // Reported once per change; never rewritten.
            tracing::warn!(%collection, %id, %reason, "task REEF cannot read");
            let _ = f.event("task.malformed", "reef", Some(&id), serde_json::json!({"reason": reason})).await;
            return Ok(());
        }
        Err(err) => return Err(err.into()),
    };
    match t.status {
        TaskStatus::Pending if t.assigned_to.is_none() => route_one(e, &t).await,
        // A task that became blocked after what it waits for was done is unblocked at once.
        s if s.is_terminal() || s == TaskStatus::Blocked => unblock(e).await,
        _ => Ok(()),
    }
}

async fn route_one(e: &Engine, t: &Task) -> Result<(), EngineError> {
    let f = &e.factory;
    let live = f.live().await?;
    if let Some(mut r) = route(t, &live.agents, &f.config.routing) {
        let mut note = None;
        // Hardware-aware: work that would start on the local tier skips it while the GPUs the local
        // models run on are busy (unless the task itself asked for local).
        if r.tier == ModelTier::Local && t.model_tier.is_none() {
            let now = f.now();
            let mut samples = vec![];
            for m in ["gpu0.util_percent", "gpu1.util_percent"] {
                samples
                    .extend(f.ports.metrics.query(None, m, now - chrono::Duration::minutes(5), now + chrono::Duration::minutes(1)).await?);
            }
            if crate::rules::routing::local_gpu_busy(&samples, now, chrono::Duration::minutes(5), f.config.engine.busy_gpu_percent) {
                r.tier = ModelTier::Cheap;
                note = Some("local GPU busy");
            }
        }
        if f.config.engine.learn_tiers && t.model_tier.is_none() {
            let rows = learned_rows(f).await?;
            let learned = super::analytics::learned_tier(&rows, &r.agent, t.kind.as_deref().unwrap_or("(none)"), r.tier, 5, 0.5);
            if learned != r.tier {
                r.tier = learned;
                note = Some("the cheaper tier keeps failing this work");
            }
        }
        if f.ports.tasks.route(&t.id, &r.agent, r.tier, f.now()).await? {
            f.event("task.routed", "reef:dispatcher", Some(&t.id), serde_json::json!({"agent": r.agent, "tier": r.tier, "note": note}))
                .await?;
        }
    }
    Ok(())
}

/// Routes what is unrouted and unblocks what can run; also run on takeover, so nothing that
/// happened while no dispatcher was active is missed.
async fn sweep(e: &Engine) -> Result<(), EngineError> {
    let f = &e.factory;
    let pending = f.ports.tasks.list(&TaskQuery { status: Some(vec![TaskStatus::Pending]), ..Default::default() }).await?;
    for t in pending.items.iter().filter(|t| t.assigned_to.is_none()) {
        route_one(e, t).await?;
    }
    unblock(e).await
}

async fn unblock(e: &Engine) -> Result<(), EngineError> {
    let f = &e.factory;
    let blocked = f.ports.tasks.list(&TaskQuery { status: Some(vec![TaskStatus::Blocked]), ..Default::default() }).await?;
    for t in blocked.items {
        let mut all_done = true;
        let mut broken = None;
        for d in &t.depends_on {
            match f.ports.tasks.get(d).await {
                Ok(dep) if dep.status == TaskStatus::Done => {}
                // A task waiting for its own subtasks goes on once each has ended, however it
                // ended: its agent reads how (task_status) and decides.
                Ok(dep) if dep.parent_id.as_deref() == Some(t.id.as_str()) && dep.status.is_terminal() => {}
                Ok(dep) if matches!(dep.status, TaskStatus::Failed | TaskStatus::Cancelled) => {
                    broken = Some(format!("dependency {d} is {}", dep.status));
                    all_done = false;
                }
                Ok(_) => all_done = false,
                Err(StoreError::NotFound { .. }) => {
                    broken = Some(format!("dependency {d} does not exist"));
                    all_done = false;
                }
                Err(err) => return Err(err.into()),
            }
        }
        if all_done {
            if f.ports.tasks.transition(&t.id, &[TaskStatus::Blocked], TaskStatus::Pending, None, f.now()).await.is_ok() {
                f.event("task.unblocked", "reef:dispatcher", Some(&t.id), serde_json::json!({})).await?;
            }
        } else if let Some(why) = broken {
            if f.ports.tasks.transition(&t.id, &[TaskStatus::Blocked], TaskStatus::NeedsHuman, Some(&why), f.now()).await.is_ok() {
                f.event("task.needs_human", "reef:dispatcher", Some(&t.id), serde_json::json!({"reason": why})).await?;
            }
        }
    }
    Ok(())
}

/// Time-driven work: expired approvals and abandoned reservations.
async fn housekeeping(e: &Engine) -> Result<(), EngineError> {
    let f = &e.factory;
    let now = f.now();
    for a in f.ports.approvals.expire_due(now).await? {
        let why = format!("approval request {} expired unanswered", a.id);
        let to = match f.config.policy.on_expiry {
            OnExpiry::Cancel => TaskStatus::Cancelled,
            OnExpiry::Escalate => TaskStatus::NeedsHuman,
        };
        let _ = f.ports.tasks.transition(&a.task_id, &[TaskStatus::AwaitingApproval], to, Some(&why), now).await;
        f.event(
            "approval.expired",
            "reef:dispatcher",
            Some(&a.task_id),
            serde_json::json!({"approval": a.id, "task_status": to, "alert": true}),
        )
        .await?;
    }
    let n = f.ports.ledger.expire(now).await?;
    if n > 0 {
        f.event("budget.reservations_expired", "reef:dispatcher", None, serde_json::json!({"count": n})).await?;
    }
    Ok(())
}

/// Alerts at 50 / 80 / 100 % of each cap in force today, once per threshold and period.
async fn budget_alerts(e: &Engine) -> Result<(), EngineError> {
    let f = &e.factory;
    for c in f.caps_today().await? {
        if c.cap.0 <= 0 {
            continue;
        }
        let pct = 100 * (c.spent.0 + c.reserved.0) / c.cap.0;
        for threshold in [50, 80, 100] {
            if pct >= threshold
                && f.ports
                    .settings
                    .put_if_absent(&crate::settings::Key::BudgetAlert(&c.scope, threshold).id(), serde_json::json!(time::fmt_ts(&f.now())))
                    .await?
            {
                f.event(
                    "budget.alert",
                    "reef:dispatcher",
                    Some(&c.scope),
                    serde_json::json!({"threshold": threshold, "spent": c.spent, "reserved": c.reserved, "cap": c.cap}),
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// Running work whose task has not changed for the stuck timeout goes to a person.
async fn stuck(e: &Engine) -> Result<(), EngineError> {
    let f = &e.factory;
    let now = f.now();
    let limit = chrono::Duration::from_std(f.config.engine.stuck).unwrap_or_default();
    let running = f.ports.tasks.list(&TaskQuery { status: Some(vec![TaskStatus::Running]), ..Default::default() }).await?;
    for t in running.items {
        let last = t.updated_at.or(t.claimed_at).unwrap_or(t.created_at);
        if now - last > limit {
            let why = format!("no progress for {} minutes", limit.num_minutes());
            if f.ports.tasks.transition(&t.id, &[TaskStatus::Running], TaskStatus::NeedsHuman, Some(&why), now).await.is_ok() {
                f.event(
                    "task.stuck",
                    "reef:dispatcher",
                    Some(&t.id),
                    serde_json::json!({"reason": why, "agent": t.assigned_to, "alert": true}),
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// Outcome rows for learned routing, recomputed at most once a minute.
async fn learned_rows(f: &crate::factory::Factory) -> Result<Vec<super::analytics::OutcomeRow>, EngineError> {
    type Cached = Option<(Instant, Vec<super::analytics::OutcomeRow>)>;
    static CACHE: std::sync::Mutex<Cached> = std::sync::Mutex::new(None);
    if let Ok(c) = CACHE.lock() {
        if let Some((at, rows)) = c.as_ref() {
            if at.elapsed() < Duration::from_secs(60) {
                return Ok(rows.clone());
            }
        }
    }
    let rows = super::analytics::outcomes(f, 30).await?;
    if let Ok(mut c) = CACHE.lock() {
        *c = Some((Instant::now(), rows.clone()));
    }
    Ok(rows)
}
