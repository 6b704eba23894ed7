//! Which schedules exist: the config file's, and those made, edited or deleted in the window or
//! with `reef schedule save | rm`, kept in the store (`schedules.defs`) so every REEF process —
//! the server's dispatcher, a laptop's window — runs and shows the same ones.
//!
//! Invariant: what is stored wins over the file for the same name (an edit made in the window is
//! not undone by a restart); a schedule of the file deleted in the window stays deleted until it
//! is saved again. Every change is validated as the file is, audited and evented.

use super::Factory;
use crate::rules::schedule::{Schedule, ScheduleSection};
use crate::settings::Key;
use crate::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Runs of a schedule shown at most.
pub const RUNS_SHOWN: usize = 20;

/// Where a schedule in force comes from.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleSource {
    /// The config file, unchanged.
    File,
    /// Made or edited in the window or with `reef schedule save`.
    Store,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Def {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    section: Option<ScheduleSection>,
    #[serde(default)]
    deleted: bool,
    by: String,
    at: String,
}

/// One run of a schedule (or a slot it skipped), with its task's state now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleRun {
    pub at: Timestamp,
    /// `schedule.ran` or `schedule.skipped`.
    pub kind: String,
    pub task_id: Option<String>,
    pub status: Option<TaskStatus>,
}

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::Invalid(msg.into())
}

impl Factory {
    /// The stored definitions, each parsed on its own: one entry another program wrote in
    /// another shape is skipped (and kept as it is), never the reason the others vanish.
    async fn schedule_defs(&self) -> StoreResult<BTreeMap<String, Def>> {
        let mut out = BTreeMap::new();
        for (name, v) in self.raw_schedule_defs().await? {
            match serde_json::from_value::<Def>(v) {
                Ok(d) => {
                    out.insert(name, d);
                }
                Err(e) => tracing::warn!(schedule = %name, error = %e, "a stored schedule is malformed; it does not run"),
            }
        }
        Ok(out)
    }

    async fn raw_schedule_defs(&self) -> StoreResult<serde_json::Map<String, serde_json::Value>> {
        self.settings_map(Key::ScheduleDefs, "schedule names to definitions").await
    }

    /// Changes one entry, holding a lease so two processes saving at once do not undo each other.
    async fn put_schedule_def(&self, name: &str, def: &Def) -> StoreResult<()> {
        self.under_lock("schedules.defs", || async {
            let mut all = self.raw_schedule_defs().await?;
            all.insert(name.to_string(), serde_json::to_value(def).map_err(|e| StoreError::Backend(e.to_string()))?);
            self.ports.settings.put(&Key::ScheduleDefs.id(), serde_json::Value::Object(all)).await
        })
        .await
    }

    /// Every schedule in force, by name, with where it comes from.
    pub async fn schedules_with_source(&self) -> StoreResult<Vec<(Schedule, ScheduleSource)>> {
        let defs = self.schedule_defs().await?;
        let mut out: Vec<(Schedule, ScheduleSource)> = vec![];
        for s in &self.config.schedules {
            if !defs.contains_key(&s.section.name) {
                out.push((s.clone(), ScheduleSource::File));
            }
        }
        for (name, d) in defs {
            let Some(section) = d.section.filter(|_| !d.deleted) else { continue };
            match Schedule::parse(&section) {
                Ok(s) => out.push((s, ScheduleSource::Store)),
                // Saved by an older REEF or another program and no longer valid: said, skipped.
                Err(e) => tracing::warn!(schedule = %name, error = %e, "a stored schedule is not valid; it does not run"),
            }
        }
        out.sort_by(|a, b| a.0.section.name.cmp(&b.0.section.name));
        Ok(out)
    }

    /// Every schedule in force.
    pub async fn schedules(&self) -> StoreResult<Vec<Schedule>> {
        Ok(self.schedules_with_source().await?.into_iter().map(|(s, _)| s).collect())
    }

    /// Creates or replaces a schedule (checked as the config file's are); audited.
    pub async fn save_schedule(&self, section: ScheduleSection, who: &str) -> StoreResult<Schedule> {
        let name = &section.name;
        if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(invalid(format!("{name:?} is not a schedule name (letters, digits, - and _, at most 64)")));
        }
        if section.title.trim().is_empty() || section.title.len() > 300 {
            return Err(invalid("a schedule needs a task title (at most 300 bytes)"));
        }
        if section.description.len() > 16 * 1024 {
            return Err(invalid("the description is over 16 KiB"));
        }
        let parsed = Schedule::parse(&section).map_err(invalid)?;
        if let Some(a) = &section.agent {
            if self.config.agent(a).is_none() {
                return Err(invalid(format!("{a:?} is not a configured agent")));
            }
        }
        if let Some(c) = &section.action_class {
            crate::rules::policy::check_class(c).map_err(invalid)?;
        }
        // What each run will create is checked now, not at 3 a.m. in the dispatcher.
        let probe = NewTask {
            title: section.title.clone(),
            description: section.description.clone(),
            assigned_to: section.agent.clone(),
            kind: section.kind.clone(),
            product: section.product.clone(),
            action_class: section.action_class.clone(),
            ..Default::default()
        };
        probe.validate().map_err(|e| invalid(format!("the task it would create: {e}")))?;
        let old = self.schedules().await?.into_iter().find(|s| &s.section.name == name).map(|s| s.section);
        let def = Def { section: Some(section.clone()), deleted: false, by: who.into(), at: time::fmt_ts(&self.now()) };
        self.put_schedule_def(name, &def).await?;
        // An edited cron counts from now: a slot of the new expression already past does not run.
        super::schedules::restart_count(self, name).await?;
        let subject = format!("schedule:{name}");
        self.audit(
            who,
            "schedule.save",
            &subject,
            serde_json::to_value(&old).unwrap_or_default(),
            serde_json::to_value(&section).unwrap_or_default(),
            None,
        )
        .await?;
        self.event("schedule.saved", who, Some(&subject), serde_json::json!({"cron": section.cron, "title": section.title})).await?;
        Ok(parsed)
    }

    /// Deletes a schedule, the file's too (until saved again); audited.
    pub async fn delete_schedule(&self, name: &str, who: &str) -> StoreResult<()> {
        let old = self.schedule(name).await?.section;
        self.put_schedule_def(name, &Def { section: None, deleted: true, by: who.into(), at: time::fmt_ts(&self.now()) }).await?;
        let subject = format!("schedule:{name}");
        self.audit(who, "schedule.delete", &subject, serde_json::to_value(&old).unwrap_or_default(), serde_json::Value::Null, None).await?;
        self.event("schedule.deleted", who, Some(&subject), serde_json::json!({})).await
    }

    /// A schedule's last runs and skipped slots, newest first, each with its task's state now.
    pub async fn schedule_runs(&self, name: &str, limit: usize) -> StoreResult<Vec<ScheduleRun>> {
        let q = EventQuery {
            kind_prefix: Some("schedule.".into()),
            subject: Some(format!("schedule:{name}")),
            limit: limit.min(RUNS_SHOWN) * 3,
            ..Default::default()
        };
        let mut out = vec![];
        for e in
            self.ports.events.recent(&q).await?.items.into_iter().filter(|e| matches!(e.kind.as_str(), "schedule.ran" | "schedule.skipped"))
        {
            let task_id = e.data["task"].as_str().or(e.data["running"].as_str()).map(str::to_string);
            let status = match (&task_id, e.kind.as_str()) {
                (Some(id), "schedule.ran") => self.ports.tasks.get(id).await.ok().map(|t| t.status),
                _ => None,
            };
            out.push(ScheduleRun { at: e.at, kind: e.kind, task_id, status });
            if out.len() >= limit.min(RUNS_SHOWN) {
                break;
            }
        }
        Ok(out)
    }
}
