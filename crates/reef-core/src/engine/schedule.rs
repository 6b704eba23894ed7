//! Schedules: recurring tasks from config (cron expressions in the factory's timezone).
//!
//! Invariants: each slot creates at most one task, whichever dispatcher sees it (the task's
//! idempotency key names the slot); slots missed while REEF was down run once, not once each;
//! with `overlap = "skip"` a slot is skipped while the previous run is unfinished.

use crate::factory::Factory;
use crate::*;
use chrono::TimeZone;
use croner::Cron;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSection {
    pub name: String,
    /// Five-field cron, e.g. `0 7 * * *` (07:00 every day) or `*/30 * * * *`.
    pub cron: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub agent: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub tier: Option<ModelTier>,
    #[serde(default)]
    pub priority: i64,
    pub product: Option<String>,
    pub action_class: Option<String>,
    /// `skip` (default): no new run while the last is unfinished; `allow`: run anyway.
    pub overlap: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub section: ScheduleSection,
    pub cron: Cron,
    pub skip_overlap: bool,
}

impl Schedule {
    pub fn parse(s: &ScheduleSection) -> Result<Self, String> {
        let cron = Cron::from_str(&s.cron).map_err(|e| format!("{:?} is not a cron expression: {e}", s.cron))?;
        let skip_overlap = match s.overlap.as_deref() {
            None | Some("skip") => true,
            Some("allow") => false,
            Some(o) => return Err(format!("overlap {o:?} is not skip or allow")),
        };
        Ok(Self { section: s.clone(), cron, skip_overlap })
    }

    /// The latest slot at or before `now`, in the factory's timezone.
    pub fn latest_slot(&self, tz: chrono_tz::Tz, now: Timestamp) -> Option<Timestamp> {
        let local = tz.from_utc_datetime(&now.naive_utc());
        self.cron.find_previous_occurrence(&local, true).ok().map(|t| t.with_timezone(&chrono::Utc))
    }

    pub fn next_slot(&self, tz: chrono_tz::Tz, now: Timestamp) -> Option<Timestamp> {
        let local = tz.from_utc_datetime(&now.naive_utc());
        self.cron.find_next_occurrence(&local, false).ok().map(|t| t.with_timezone(&chrono::Utc))
    }
}

/// What REEF remembers of a schedule, shared by every process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// The slot last acted on (run or skipped).
    #[serde(default, with = "crate::time::ts_opt")]
    pub last_slot: Option<Timestamp>,
    #[serde(default)]
    pub paused: bool,
    /// The task the last run created.
    #[serde(default)]
    pub last_task: Option<String>,
}

fn key(name: &str) -> String {
    format!("schedule:{name}")
}

pub async fn state(f: &Factory, name: &str) -> StoreResult<ScheduleState> {
    Ok(f.ports.settings.get(&key(name)).await?.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default())
}

async fn save(f: &Factory, name: &str, s: &ScheduleState) -> StoreResult<()> {
    f.ports.settings.put(&key(name), serde_json::to_value(s).map_err(|e| StoreError::Backend(e.to_string()))?).await
}

/// Whether `slot` should run now: a slot after the last one acted on.
pub fn due(last: Option<Timestamp>, latest: Option<Timestamp>) -> Option<Timestamp> {
    match (last, latest) {
        (Some(l), Some(s)) if s > l => Some(s),
        _ => None,
    }
}

/// Creates a run of `sch` for `slot_key`, unless the overlap policy says no. Returns the task.
pub async fn start_run(f: &Factory, sch: &Schedule, slot_key: &str, actor: &str) -> StoreResult<Option<Task>> {
    let s = &sch.section;
    let mut st = state(f, &s.name).await?;
    if sch.skip_overlap {
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
        start_run(f, sch, &time::fmt_ts(&slot), "reef:scheduler").await?;
    }
    Ok(())
}

pub async fn set_paused(f: &Factory, name: &str, paused: bool, who: &str) -> StoreResult<()> {
    let mut st = state(f, name).await?;
    let old = st.paused;
    st.paused = paused;
    save(f, name, &st).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_ts;

    fn sch(cron: &str) -> Schedule {
        Schedule::parse(&ScheduleSection {
            name: "brief".into(),
            cron: cron.into(),
            title: "Morning brief".into(),
            description: String::new(),
            agent: None,
            kind: None,
            tier: None,
            priority: 0,
            product: None,
            action_class: None,
            overlap: None,
        })
        .unwrap()
    }

    #[test]
    fn slots_are_in_the_factory_timezone() {
        let s = sch("0 7 * * *");
        let tz: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let now = parse_ts("2026-11-21T09:00:00Z").unwrap(); // 10:00 in Berlin
        assert_eq!(crate::time::fmt_ts(&s.latest_slot(tz, now).unwrap()), "2026-11-21T06:00:00.000Z");
        assert_eq!(crate::time::fmt_ts(&s.next_slot(tz, now).unwrap()), "2026-11-22T06:00:00.000Z");
    }

    #[test]
    fn missed_slots_run_once_not_once_each() {
        let s = sch("*/30 * * * *");
        let tz = chrono_tz::UTC;
        let last = parse_ts("2026-11-21T06:00:00Z").unwrap();
        // Down for three hours: six slots passed; only the latest is due.
        let now = parse_ts("2026-11-21T09:10:00Z").unwrap();
        assert_eq!(due(Some(last), s.latest_slot(tz, now)), Some(parse_ts("2026-11-21T09:00:00Z").unwrap()));
        assert_eq!(due(s.latest_slot(tz, now), s.latest_slot(tz, now)), None, "nothing new until the next slot");
    }

    #[test]
    fn bad_expressions_and_policies_are_refused() {
        let mut sec = sch("0 7 * * *").section;
        sec.cron = "every morning".into();
        assert!(Schedule::parse(&sec).unwrap_err().contains("every morning"));
        sec.cron = "0 7 * * *".into();
        sec.overlap = Some("queue".into());
        assert!(Schedule::parse(&sec).is_err());
    }
}
