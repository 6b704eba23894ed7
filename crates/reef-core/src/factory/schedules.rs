//! Schedules' runs: what every process remembers of a schedule (its last slot, pause, last task),
//! pausing, running one now, and the pass that runs each due slot. The schedules themselves —
//! the file's and those made in the window — are `factory::schedule_defs`.
//!
//! Invariants: each slot creates at most one task, whichever dispatcher sees it (the task's
//! idempotency key names the slot); slots missed while REEF was down run once, not once each;
//! with `overlap = "skip"` a slot is skipped while the previous run is unfinished.

use super::Factory;
use crate::rules::schedule::{due, Schedule, ScheduleState};
use crate::*;

fn key(name: &str) -> String {
    crate::settings::Key::Schedule(name).id()
}

pub async fn state(f: &Factory, name: &str) -> StoreResult<ScheduleState> {
    let mut st: ScheduleState = f.ports.settings.get(&key(name)).await?.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
    // The operator's pause has its own key (the scheduler's saves never touch it); a store from
    // before it keeps the pause in the progress document.
    if let Some(p) = f.ports.settings.get(&crate::settings::Key::SchedulePaused(name).id()).await?.and_then(|v| v.as_bool()) {
        st.paused = p;
    }
    Ok(st)
}

async fn save(f: &Factory, name: &str, s: &ScheduleState) -> StoreResult<()> {
    f.ports.settings.put(&key(name), serde_json::to_value(s).map_err(|e| StoreError::Backend(e.to_string()))?).await
}

/// Creates a run of `sch` for `slot_key`, unless the overlap policy says no. Returns the task.
pub async fn start_run(f: &Factory, sch: &Schedule, slot_key: &str, actor: &str) -> StoreResult<Option<Task>> {
    let s = &sch.section;
    let mut st = state(f, &s.name).await?;
    if sch.overlap == crate::rules::schedule::Overlap::Skip {
        if let Some(prev) = &st.last_task {
            if let Ok(t) = f.ports.tasks.get(prev).await {
                if !t.status.is_terminal() {
                    f.event(
                        "schedule.skipped",
                        actor,
                        Some(&format!("schedule:{}", s.name)),
                        serde_json::json!({"slot": slot_key, "running": prev}),
                    )
                    .await?;
                    return Ok(None);
                }
            }
        }
    }
    let new = NewTask {
        title: s.title.clone(),
        description: s.description.clone(),
        priority: s.priority,
        assigned_to: s.agent.clone(),
        kind: s.kind.clone(),
        model_tier: s.tier,
        product: s.product.clone(),
        action_class: s.action_class.clone(),
        idempotency_key: Some(format!("schedule:{}:{slot_key}", s.name)),
        ..Default::default()
    };
    let t = f.create_task(new, actor).await?;
    st.last_task = Some(t.id.clone());
    save(f, &s.name, &st).await?;
    f.event("schedule.ran", actor, Some(&format!("schedule:{}", s.name)), serde_json::json!({"slot": slot_key, "task": t.id})).await?;
    Ok(Some(t))
}

/// Forgets a schedule's last slot: the next pass counts from then (after an edit of its cron).
pub(super) async fn restart_count(f: &Factory, name: &str) -> StoreResult<()> {
    let mut st = state(f, name).await?;
    st.last_slot = None;
    save(f, name, &st).await
}

/// One pass over every schedule: runs each that has a new slot, once.
pub async fn tick(f: &Factory, schedules: &[Schedule]) -> StoreResult<()> {
    let now = f.now();
    let tz = f.config.timezone;
    for sch in schedules {
        let name = &sch.section.name;
        let mut st = state(f, name).await?;
        let latest = sch.latest_slot(tz, now);
        if st.last_slot.is_none() {
            // First sight of this schedule: start counting from now, do not fire for the past.
            st.last_slot = latest.or(Some(now));
            save(f, name, &st).await?;
            continue;
        }
        let Some(slot) = due(st.last_slot, latest) else { continue };
        st.last_slot = Some(slot);
        save(f, name, &st).await?;
        if st.paused {
            continue;
        }
        // One schedule whose run cannot be created (its agent since removed from the file, a
        // product renamed) is said and skipped; the others still run.
        if let Err(e) = start_run(f, sch, &time::fmt_ts(&slot), "reef:scheduler").await {
            tracing::error!(schedule = %name, error = %e, "a due slot could not create its run");
            f.event(
                "schedule.failed",
                "reef:scheduler",
                Some(&format!("schedule:{name}")),
                serde_json::json!({"slot": time::fmt_ts(&slot), "error": e.to_string(), "alert": true}),
            )
            .await?;
        }
    }
    Ok(())
}

async fn set_paused(f: &Factory, name: &str, paused: bool, who: &str) -> StoreResult<()> {
    let old = state(f, name).await?.paused;
    f.ports.settings.put(&crate::settings::Key::SchedulePaused(name).id(), serde_json::json!(paused)).await?;
    f.audit(
        who,
        if paused { "schedule.pause" } else { "schedule.resume" },
        &format!("schedule:{name}"),
        serde_json::json!(old),
        serde_json::json!(paused),
        None,
    )
    .await
}

impl Factory {
    /// The schedule named `name`, as in force (the file's, or as made or edited since).
    pub async fn schedule(&self, name: &str) -> StoreResult<Schedule> {
        let all = self.schedules().await?;
        let known: Vec<String> = all.iter().map(|s| s.section.name.clone()).collect();
        all.into_iter().find(|s| s.section.name == name).ok_or_else(|| {
            StoreError::not_found(format!(
                "schedule {name:?} (there are {})",
                if known.is_empty() { "none".into() } else { known.join(", ") }
            ))
        })
    }

    /// Pauses or resumes a schedule (slots passing while it is paused do not run later).
    pub async fn pause_schedule(&self, name: &str, paused: bool, who: &str) -> StoreResult<()> {
        self.schedule(name).await?;
        set_paused(self, name, paused, who).await
    }

    /// Runs a schedule now, outside its slots (its overlap rule still applies).
    pub async fn run_schedule_now(&self, name: &str, who: &str) -> StoreResult<Option<Task>> {
        let s = self.schedule(name).await?;
        start_run(self, &s, &format!("manual:{}", new_id()), who).await
    }
}
