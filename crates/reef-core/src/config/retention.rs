//! How long REEF keeps what grows without bound (`[retention]`), validated. Invariant: the audit
//! log is never expired, and an event a webhook still owes outlives the feed's retention (up to
//! `owed_days`), so the outbox loses nothing to housekeeping.

use super::{bad, ConfigError, FileConfig};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// Days the events feed is kept (default 30). The audit log is kept for good.
    pub events_days: Option<u64>,
    /// Days agents' output lines (`task.output` events) are kept (default 7).
    pub output_days: Option<u64>,
    /// Days an event a webhook has not been sent yet is kept, however long the receiver is down
    /// (default 90).
    pub owed_days: Option<u64>,
    /// Days hardware samples and per-call LLM rows are kept (default 30; the ledger's totals and
    /// monthly roll-ups are kept for good).
    pub telemetry_days: Option<u64>,
    /// Days a finished task's working directory (and its agent's HOME) is kept (default 7).
    pub work_days: Option<u64>,
}

/// The retention in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionConfig {
    pub events: Duration,
    pub output: Duration,
    pub owed: Duration,
    pub telemetry: Duration,
    pub work: Duration,
}

const DAY: u64 = 24 * 3600;

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            events: Duration::from_secs(30 * DAY),
            output: Duration::from_secs(7 * DAY),
            owed: Duration::from_secs(90 * DAY),
            telemetry: Duration::from_secs(30 * DAY),
            work: Duration::from_secs(7 * DAY),
        }
    }
}

impl RetentionConfig {
    pub fn days(d: Duration) -> u64 {
        d.as_secs() / DAY
    }
}

pub fn retention(file: &FileConfig) -> Result<RetentionConfig, ConfigError> {
    let r = &file.retention;
    let d = RetentionConfig::default();
    let days = |key: &str, v: Option<u64>, default: Duration| -> Result<Duration, ConfigError> {
        match v {
            None => Ok(default),
            Some(n) if (1..=36_500).contains(&n) => Ok(Duration::from_secs(n * DAY)),
            Some(n) => Err(bad(key, format!("{n} is not a number of days REEF keeps things for"), "write a whole number from 1 to 36500")),
        }
    };
    let out = RetentionConfig {
        events: days("retention.events_days", r.events_days, d.events)?,
        output: days("retention.output_days", r.output_days, d.output)?,
        owed: days("retention.owed_days", r.owed_days, d.owed)?,
        telemetry: days("retention.telemetry_days", r.telemetry_days, d.telemetry)?,
        work: days("retention.work_days", r.work_days, d.work)?,
    };
    if out.owed < out.events {
        return Err(bad(
            "retention.owed_days",
            format!("{} days is shorter than events_days ({})", RetentionConfig::days(out.owed), RetentionConfig::days(out.events)),
            "an event a webhook still owes is kept at least as long as any other: raise owed_days or lower events_days",
        ));
    }
    Ok(out)
}
