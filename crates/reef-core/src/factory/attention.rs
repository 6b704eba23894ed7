//! What needs the operator now, for the window's status strip, its sidebar badges and `reef
//! status`: holds with their reasons, approvals and questions waiting, work handed to a person or
//! failed since the operator last acknowledged, and each daily cap with the day's pace projected
//! to the factory's midnight.
//!
//! Invariant: every figure is read from the store, in the factory's timezone, so every window and
//! the CLI say the same thing; counts that could grow with the store are bounded reads.

use super::Factory;
use crate::settings::Key;
use crate::*;
use serde::Serialize;

/// Failed tasks counted past the acknowledgement at most (the strip says "1000+").
pub const FAILED_COUNTED: usize = 1000;
/// The window the pace is measured over: the last hour of the factory's day.
const PACE_WINDOW: chrono::Duration = chrono::Duration::hours(1);
/// Less than this much of the day gone, there is no pace to speak of.
const PACE_MIN: chrono::Duration = chrono::Duration::minutes(5);

/// A hold in force: the factory's or one agent's, by a person or by a cap.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HoldNote {
    /// `None`: the whole factory.
    pub agent: Option<String>,
    /// `pause`, `stop` or `cap`.
    pub hold: String,
    pub by: Option<String>,
    pub at: Option<Timestamp>,
    pub reason: Option<String>,
}

/// One daily cap, what is used of it, and where today's pace takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outlook {
    /// `None`: the factory's cap.
    pub agent: Option<String>,
    pub cap: Usd,
    pub spent: Usd,
    pub reserved: Usd,
    /// Spend per hour over the last hour of today (less when the day is younger).
    pub per_hour: Usd,
    /// What the day ends at if the pace holds.
    pub projected: Usd,
    /// When the cap is reached at this pace, if before the day ends.
    pub cap_at: Option<Timestamp>,
    /// Spent and reserved already reach the cap.
    pub reached: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attention {
    pub timezone: String,
    /// The factory's next midnight, when daily caps roll over.
    pub day_ends: Timestamp,
    /// The engine process holding the dispatcher lease; `None`: no engine runs anywhere.
    pub dispatcher: Option<String>,
    /// The factory's hold, if any.
    pub hold: Option<HoldNote>,
    /// Agents held by a person or at their cap.
    pub held_agents: Vec<HoldNote>,
    pub approvals: usize,
    pub questions: usize,
    /// Tasks handed to a person for another reason (stuck, never automatic, out of budget).
    pub needs_human: usize,
    /// Tasks failed since the operator last acknowledged (at most [`FAILED_COUNTED`]).
    pub failed: usize,
    /// Failures are counted from here: the last acknowledgement, else the start of today.
    pub failed_since: Timestamp,
    pub acknowledged_at: Option<Timestamp>,
    /// The factory's cap first, then each agent's.
    pub spend: Vec<Outlook>,
}

fn hold_note(agent: Option<&str>, v: &serde_json::Value) -> Option<HoldNote> {
    let hold = v["hold"].as_str()?.to_string();
    Some(HoldNote {
        agent: agent.map(str::to_string),
        hold,
        by: v["by"].as_str().map(str::to_string),
        at: v["at"].as_str().and_then(|s| time::parse_ts(s).ok()),
        reason: v["reason"].as_str().map(str::to_string),
    })
}

/// Where the pace takes one cap: `spent` and `reserved` now, `per_hour` from here to `day_ends`.
pub fn outlook(agent: Option<String>, cap: Usd, spent: Usd, reserved: Usd, per_hour: Usd, now: Timestamp, day_ends: Timestamp) -> Outlook {
    let used = Usd(spent.0 + reserved.0);
    let hours_left = (day_ends - now).num_milliseconds().max(0) as f64 / 3_600_000.0;
    let projected = Usd(used.0 + (per_hour.0 as f64 * hours_left) as i64);
    let reached = cap.0 > 0 && used >= cap || cap.0 == 0 && used.0 > 0;
    let cap_at = if reached || per_hour.0 <= 0 {
        None
    } else {
        let hours = (cap.0 - used.0) as f64 / per_hour.0 as f64;
        let at = now + chrono::Duration::milliseconds((hours * 3_600_000.0) as i64);
        (at < day_ends).then_some(at)
    };
    Outlook { agent, cap, spent, reserved, per_hour, projected, cap_at, reached }
}

impl Factory {
    /// What needs the operator now (see the module's note).
    pub async fn attention(&self) -> StoreResult<Attention> {
        let now = self.now();
        let tz = self.config.timezone;
        let day_ends = time::end_of_local_day(tz, now);
        let day_starts = time::start_of_local_day(tz, now);
        let live = self.live().await?;

        let hold = self.ports.settings.get(&Key::FactoryHold.id()).await?.and_then(|v| hold_note(None, &v));
        let mut held_agents = vec![];
        for a in &live.agents {
            if let Some(n) = self.ports.settings.get(&Key::AgentHold(&a.name).id()).await?.and_then(|v| hold_note(Some(&a.name), &v)) {
                held_agents.push(n);
            }
            // A cap hold is for one period: yesterday's does not hold today.
            if let Some(v) = self.ports.settings.get(&Key::CapHold(&a.name).id()).await? {
                // Held while the held scope's period lasts (a day's cap today, a provider's month).
                let scope = v["scope"].as_str().unwrap_or_default();
                if !scope.is_empty() && self.current_period(scope) == scope {
                    held_agents.push(HoldNote {
                        agent: Some(a.name.clone()),
                        hold: "cap".into(),
                        by: None,
                        at: v["at"].as_str().and_then(|s| time::parse_ts(s).ok()),
                        reason: Some(format!("held at its cap ({scope}) until the period ends or the cap is raised")),
                    });
                }
            }
        }

        let approvals = self.ports.approvals.list(Some(ApprovalStatus::Pending), 10_000).await?.items.len();
        let waiting = self
            .ports
            .tasks
            .list(&TaskQuery { status: Some(vec![TaskStatus::NeedsHuman]), limit: Some(10_000), ..Default::default() })
            .await?
            .items;
        let questions = waiting.iter().filter(|t| t.open_question().is_some()).count();
        let acknowledged_at =
            self.ports.settings.get(&Key::AlertsAcknowledged.id()).await?.and_then(|v| v.as_str().and_then(|s| time::parse_ts(s).ok()));
        let failed_since = acknowledged_at.unwrap_or(day_starts);
        let failed = self
            .ports
            .events
            .recent(&EventQuery {
                kind_prefix: Some("task.failed".into()),
                since: Some(failed_since),
                limit: FAILED_COUNTED,
                ..Default::default()
            })
            .await?
            .items
            .len();

        // The pace: what was spent over the last hour of today, per hour.
        let from = (now - PACE_WINDOW).max(day_starts);
        let window_h = (now - from).num_milliseconds() as f64 / 3_600_000.0;
        let recent = if now - from >= PACE_MIN { self.ports.ledger.spend(SpendGroup::Agent, from, now).await? } else { vec![] };
        let rate = |cost: i64| if window_h > 0.0 { Usd((cost as f64 / window_h) as i64) } else { Usd(0) };
        let mut spend = vec![];
        for c in self.caps_today().await? {
            // `agent:<name>:day:<date>`; the factory's is `global:day:<date>`.
            let agent = c.scope.strip_prefix("agent:").and_then(|s| s.rsplit_once(":day:")).map(|(a, _)| a.to_string());
            let cost: i64 = recent.iter().filter(|r| agent.as_deref().is_none_or(|a| r.key == a)).map(|r| r.cost.0).sum();
            spend.push(outlook(agent, c.cap, c.spent, c.reserved, rate(cost), now, day_ends));
        }

        Ok(Attention {
            timezone: tz.name().into(),
            day_ends,
            dispatcher: self.ports.leases.holder("dispatcher", now).await?,
            hold,
            held_agents,
            approvals,
            questions,
            needs_human: waiting.len() - questions,
            failed,
            failed_since,
            acknowledged_at,
            spend,
        })
    }

    /// The operator has seen the alerts so far: failures before now stop counting. Audited.
    pub async fn acknowledge_alerts(&self, who: &str) -> StoreResult<()> {
        let now = self.now();
        let k = Key::AlertsAcknowledged.id();
        let old = self.ports.settings.get(&k).await?.unwrap_or(serde_json::Value::Null);
        self.ports.settings.put(&k, serde_json::json!(time::fmt_ts(&now))).await?;
        self.audit(who, "alerts.acknowledge", "alerts", old, serde_json::json!(time::fmt_ts(&now)), None).await?;
        self.event("alerts.acknowledged", who, Some("alerts"), serde_json::json!({})).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_ts;

    #[test]
    fn the_pace_says_when_the_cap_is_reached_before_midnight() {
        let now = parse_ts("2026-11-30T14:00:00Z").unwrap();
        let ends = parse_ts("2026-12-01T00:00:00Z").unwrap();
        // $6 used of $10, $1 an hour: the cap at 18:00, $16 by midnight.
        let o = outlook(None, Usd::from_dollars(10.0), Usd::from_dollars(5.0), Usd::from_dollars(1.0), Usd::from_dollars(1.0), now, ends);
        assert_eq!(o.cap_at, Some(parse_ts("2026-11-30T18:00:00Z").unwrap()));
        assert_eq!(o.projected, Usd::from_dollars(16.0));
        assert!(!o.reached);
        // Slower: the day ends first.
        let o = outlook(None, Usd::from_dollars(10.0), Usd::from_dollars(5.0), Usd(0), Usd::from_dollars(0.1), now, ends);
        assert_eq!((o.cap_at, o.projected), (None, Usd::from_dollars(6.0)));
        // Already there.
        let o = outlook(None, Usd::from_dollars(10.0), Usd::from_dollars(9.5), Usd::from_dollars(0.5), Usd::from_dollars(3.0), now, ends);
        assert!(o.reached && o.cap_at.is_none());
        // Nothing spent lately: no projection past what is used.
        let o = outlook(Some("rex".into()), Usd::from_dollars(10.0), Usd::from_dollars(2.0), Usd(0), Usd(0), now, ends);
        assert_eq!((o.cap_at, o.projected), (None, Usd::from_dollars(2.0)));
    }
}
