//! Schedule arithmetic: cron expressions in the factory's timezone, their slots, and which slot
//! is due. Invariant: slots missed while REEF was down make one due slot, not one each.
//! Pure: the runs themselves are `factory::schedules`.

use crate::{ModelTier, Timestamp};
use chrono::TimeZone;
use croner::Cron;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

impl ScheduleSection {
    /// A schedule creating a task titled `title` at each slot of `cron`; everything else as the
    /// config file defaults it.
    pub fn new(name: &str, cron: &str, title: &str) -> Self {
        Self {
            name: name.into(),
            cron: cron.into(),
            title: title.into(),
            description: String::new(),
            agent: None,
            kind: None,
            tier: None,
            priority: 0,
            product: None,
            action_class: None,
            overlap: None,
        }
    }
}

/// What a due slot does while the schedule's last run is unfinished.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// No new run (the default).
    Skip,
    /// Run anyway.
    Allow,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub section: ScheduleSection,
    pub cron: Cron,
    pub overlap: Overlap,
}

impl Schedule {
    pub fn parse(s: &ScheduleSection) -> Result<Self, String> {
        let cron = Cron::from_str(&s.cron).map_err(|e| format!("{:?} is not a cron expression: {e}", s.cron))?;
        let overlap = match s.overlap.as_deref() {
            None | Some("skip") => Overlap::Skip,
            Some("allow") => Overlap::Allow,
            Some(o) => return Err(format!("overlap {o:?} is not skip or allow")),
        };
        Ok(Self { section: s.clone(), cron, overlap })
    }

    /// The latest slot at or before `now`, in the factory's timezone.
    /// The newest slot at or before `now`, to the whole second: croner keeps the sub-second part of
    /// the time it is given, and a slot that moved with the clock's milliseconds would look new to
    /// every later tick — the schedule would run again and again.
    pub fn latest_slot(&self, tz: chrono_tz::Tz, now: Timestamp) -> Option<Timestamp> {
        let local = tz.from_utc_datetime(&whole_second(now).naive_utc());
        self.cron.find_previous_occurrence(&local, true).ok().map(|t| t.with_timezone(&chrono::Utc))
    }

    /// The next `n` slots after `now` (the window's preview of a cron expression).
    pub fn upcoming(&self, tz: chrono_tz::Tz, now: Timestamp, n: usize) -> Vec<Timestamp> {
        let local = tz.from_utc_datetime(&whole_second(now).naive_utc());
        self.cron.iter_after(local).take(n).map(|t| t.with_timezone(&chrono::Utc)).collect()
    }

    pub fn next_slot(&self, tz: chrono_tz::Tz, now: Timestamp) -> Option<Timestamp> {
        let local = tz.from_utc_datetime(&whole_second(now).naive_utc());
        self.cron.find_next_occurrence(&local, false).ok().map(|t| t.with_timezone(&chrono::Utc))
    }
}

fn whole_second(t: Timestamp) -> Timestamp {
    use chrono::Timelike;
    t.with_nanosecond(0).unwrap_or(t)
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

/// Whether `slot` should run now: a slot after the last one acted on.
pub fn due(last: Option<Timestamp>, latest: Option<Timestamp>) -> Option<Timestamp> {
    match (last, latest) {
        (Some(l), Some(s)) if s > l => Some(s),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_ts;

    fn sch(cron: &str) -> Schedule {
        Schedule::parse(&ScheduleSection::new("brief", cron, "Morning brief")).unwrap()
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
    fn a_slot_does_not_move_with_the_clocks_milliseconds() {
        let s = sch("0 4 * * *");
        let tz = chrono_tz::UTC;
        let first = s.latest_slot(tz, parse_ts("2026-11-30T23:00:25.285Z").unwrap());
        let later = s.latest_slot(tz, parse_ts("2026-11-30T23:00:26.912Z").unwrap());
        assert_eq!(crate::time::fmt_ts(&first.unwrap()), "2026-11-30T04:00:00.000Z");
        assert_eq!(due(first, later), None, "the same slot, seen a second later, is not due again");
        let next = s.next_slot(tz, parse_ts("2026-11-30T23:00:25.285Z").unwrap()).unwrap();
        assert_eq!(crate::time::fmt_ts(&next), "2026-12-01T04:00:00.000Z");
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
