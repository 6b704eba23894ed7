//! Outcome analytics: success rate, cost and latency per agent × model tier × task type, from the
//! outcome events workers record for every attempt.

use crate::factory::Factory;
use crate::*;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutcomeRow {
    pub agent: String,
    pub tier: String,
    pub task_type: String,
    pub attempts: u32,
    pub successes: u32,
    pub cost: Usd,
    pub avg_latency_ms: u64,
}

impl OutcomeRow {
    pub fn success_rate(&self) -> f64 {
        if self.attempts == 0 {
            0.0
        } else {
            self.successes as f64 / self.attempts as f64
        }
    }
}

/// The event kinds that end an attempt, and whether each counts as a success.
fn attempt_outcome(kind: &str) -> Option<bool> {
    match kind {
        "task.done" => Some(true),
        "task.failed" | "task.retry" | "task.revise" | "task.needs_human" => Some(false),
        _ => None,
    }
}

/// Aggregates outcome events (those with `agent`, `tier` and `task_type` in their data).
pub fn aggregate(events: &[Event]) -> Vec<OutcomeRow> {
    // (agent, tier, type) → (attempts, successes, cost, total latency)
    type Key = (String, String, String);
    let mut acc: BTreeMap<Key, (u32, u32, i64, u64)> = BTreeMap::new();
    for e in events {
        let Some(ok) = attempt_outcome(&e.kind) else { continue };
        let d = &e.data;
        let (Some(agent), Some(tier)) = (d["agent"].as_str(), d["tier"].as_str()) else { continue };
        let kind = d["task_type"].as_str().unwrap_or("(none)");
        let a = acc.entry((agent.into(), tier.into(), kind.into())).or_default();
        a.0 += 1;
        a.1 += ok as u32;
        a.2 += d["cost"].as_i64().unwrap_or(0);
        a.3 += d["latency_ms"].as_u64().unwrap_or(0);
    }
    acc.into_iter()
        .map(|((agent, tier, task_type), (n, ok, cost, lat))| OutcomeRow {
            agent,
            tier,
            task_type,
            attempts: n,
            successes: ok,
            cost: Usd(cost),
            avg_latency_ms: lat / n.max(1) as u64,
        })
        .collect()
}

/// Outcomes over the last `days` days.
pub async fn outcomes(f: &Factory, days: u32) -> StoreResult<Vec<OutcomeRow>> {
    let since = f.now() - chrono::Duration::days(days.max(1) as i64);
    let l = f.ports.events.recent(&crate::EventQuery { kind_prefix: Some("task.".into()), limit: 200_000, ..Default::default() }).await?;
    let recent: Vec<Event> = l.items.into_iter().filter(|e| e.at >= since).collect();
    Ok(aggregate(&recent))
}

/// With learning on: where an agent's work of this type keeps failing on a tier (at least
/// `min_attempts`, success below `min_rate`), start one tier higher.
pub fn learned_tier(rows: &[OutcomeRow], agent: &str, task_type: &str, tier: ModelTier, min_attempts: u32, min_rate: f64) -> ModelTier {
    let mut t = tier;
    while let Some(r) = rows.iter().find(|r| r.agent == agent && r.task_type == task_type && r.tier == t.as_str()) {
        if r.attempts < min_attempts || r.success_rate() >= min_rate {
            break;
        }
        match t.escalate() {
            Some(n) => t = n,
            None => break,
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, agent: &str, tier: &str, ty: &str, cost: i64) -> Event {
        Event {
            id: new_id(),
            kind: kind.into(),
            at: Timestamp::default(),
            actor: format!("agent:{agent}"),
            subject: None,
            data: serde_json::json!({"agent": agent, "tier": tier, "task_type": ty, "cost": cost, "latency_ms": 100}),
        }
    }

    #[test]
    fn attempts_and_successes_per_agent_tier_and_type() {
        let rows = aggregate(&[
            ev("task.retry", "rex", "cheap", "build", 10),
            ev("task.retry", "rex", "cheap", "build", 10),
            ev("task.done", "rex", "mid", "build", 50),
            ev("task.done", "scout", "local", "research", 0),
            ev("task.created", "rex", "cheap", "build", 0),
        ]);
        let cheap = rows.iter().find(|r| r.agent == "rex" && r.tier == "cheap").unwrap();
        assert_eq!((cheap.attempts, cheap.successes, cheap.cost), (2, 0, Usd(20)));
        assert_eq!(rows.iter().find(|r| r.tier == "mid").unwrap().success_rate(), 1.0);
        assert_eq!(rows.len(), 3, "non-outcome events are not attempts");
    }

    #[test]
    fn learning_starts_one_tier_up_only_where_the_cheap_tier_keeps_failing() {
        let mut evs: Vec<Event> = (0..6).map(|_| ev("task.retry", "rex", "cheap", "build", 1)).collect();
        evs.push(ev("task.done", "rex", "cheap", "build", 1));
        let rows = aggregate(&evs);
        assert_eq!(learned_tier(&rows, "rex", "build", ModelTier::Cheap, 5, 0.5), ModelTier::Mid);
        assert_eq!(learned_tier(&rows, "rex", "qa", ModelTier::Cheap, 5, 0.5), ModelTier::Cheap, "another type is untouched");
        assert_eq!(learned_tier(&rows, "rex", "build", ModelTier::Cheap, 10, 0.5), ModelTier::Cheap, "too few attempts to judge");
    }
}
