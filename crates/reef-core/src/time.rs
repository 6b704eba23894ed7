//! Time in REEF: one timestamp format everywhere and the periods that budgets roll over on.
//!
//! Invariant: every timestamp REEF writes is RFC 3339 UTC with exactly millisecond precision
//! (`2026-11-21T08:17:50.123Z`), so that stores which compare strings (SQLite JSON) order them
//! exactly as they order the instants.

use chrono::{DateTime, Datelike, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

pub type Timestamp = DateTime<Utc>;

/// Formats a timestamp the one way REEF stores it.
pub fn fmt_ts(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses any RFC 3339 timestamp and truncates it to milliseconds.
pub fn parse_ts(s: &str) -> Result<Timestamp, chrono::ParseError> {
    let t = DateTime::parse_from_rfc3339(s)?.with_timezone(&Utc);
    Ok(from_millis(t.timestamp_millis()))
}

/// A day (`YYYY-MM-DD`, midnight UTC) or an RFC 3339 time, as people type them in filters.
pub fn parse_when(s: &str) -> Result<Timestamp, String> {
    let s = s.trim();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    parse_ts(s).map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD) or an RFC 3339 time"))
}

pub fn from_millis(ms: i64) -> Timestamp {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// Serde adapter: `#[serde(with = "crate::time::ts")]`.
pub mod ts {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&fmt_ts(t))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        parse_ts(&s).map_err(|e| serde::de::Error::custom(format!("bad timestamp {s:?}: {e}")))
    }
}

/// Serde adapter for optional timestamps: `#[serde(default, with = "crate::time::ts_opt")]`.
pub mod ts_opt {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&fmt_ts(t)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => parse_ts(&s).map(Some).map_err(|e| serde::de::Error::custom(format!("bad timestamp {s:?}: {e}"))),
        }
    }
}

/// The host's clock, passed in so tests can move time by hand.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        from_millis(Utc::now().timestamp_millis())
    }
}

/// A clock that only moves when told to; shared between clones.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(start.timestamp_millis())))
    }
    pub fn advance(&self, d: std::time::Duration) {
        self.0.fetch_add(d.as_millis() as i64, Ordering::SeqCst);
    }
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.timestamp_millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        from_millis(self.0.load(Ordering::SeqCst))
    }
}

/// The factory's timezone: daily caps roll over at its midnight.
pub fn local_day(tz: Tz, now: Timestamp) -> String {
    let l = tz.from_utc_datetime(&now.naive_utc());
    format!("{:04}-{:02}-{:02}", l.year(), l.month(), l.day())
}

pub fn local_month(tz: Tz, now: Timestamp) -> String {
    let l = tz.from_utc_datetime(&now.naive_utc());
    format!("{:04}-{:02}", l.year(), l.month())
}

/// The instant the local day containing `now` began (its local midnight), in UTC.
pub fn start_of_local_day(tz: Tz, now: Timestamp) -> Timestamp {
    let day = tz.from_utc_datetime(&now.naive_utc()).date_naive();
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    match tz.from_local_datetime(&midnight) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        // A DST gap at midnight: the day began at the first valid instant after it.
        chrono::LocalResult::None => {
            tz.from_local_datetime(&(midnight + chrono::Duration::hours(1))).earliest().map(|t| t.with_timezone(&Utc)).unwrap_or(now)
        }
    }
}

/// The instant the local day containing `now` ends (the next local midnight), in UTC.
pub fn end_of_local_day(tz: Tz, now: Timestamp) -> Timestamp {
    let l = tz.from_utc_datetime(&now.naive_utc()).date_naive();
    let next = l.succ_opt().unwrap_or(l).and_hms_opt(0, 0, 0).unwrap_or_default();
    // A DST gap at midnight has no local 00:00; take the earliest valid instant after it.
    match tz.from_local_datetime(&next) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        chrono::LocalResult::None => {
            tz.from_local_datetime(&(next + chrono::Duration::hours(1))).earliest().map(|t| t.with_timezone(&Utc)).unwrap_or(now)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_timestamps_sort_as_strings_in_instant_order() {
        let a = parse_ts("2026-11-21T08:00:00.5Z").unwrap();
        let b = parse_ts("2026-11-21T08:00:00.123456Z").unwrap();
        assert!(a > b);
        assert!(fmt_ts(&a) > fmt_ts(&b), "{} vs {}", fmt_ts(&a), fmt_ts(&b));
        assert_eq!(fmt_ts(&a).len(), fmt_ts(&b).len());
    }

    #[test]
    fn day_rolls_over_at_local_midnight_not_utc() {
        let tz: Tz = "America/New_York".parse().unwrap();
        // 03:00 UTC on the 21st is still the 20th in New York.
        let t = parse_ts("2026-11-21T03:00:00Z").unwrap();
        assert_eq!(local_day(tz, t), "2026-11-20");
        assert_eq!(fmt_ts(&end_of_local_day(tz, t)), "2026-11-21T05:00:00.000Z");
        assert_eq!(local_month(tz, parse_ts("2026-12-01T02:00:00Z").unwrap()), "2026-11");
    }
}
