//! Routing: which agent takes a task, and on which rung of the cost pyramid it starts.
//!
//! Invariant: an operator's assignment is never overridden; the tier only ever starts at the
//! cheapest rung the rules allow and moves up by escalation.

use crate::domain::agent::AgentConfig;
use crate::{ModelTier, Task};
use serde::Deserialize;

/// A routing rule from config: tasks of `kind` (type) go to `agent` and/or start at `tier`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    pub kind: String,
    pub agent: Option<String>,
    pub tier: Option<ModelTier>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub agent: String,
    pub tier: ModelTier,
}

/// Picks the agent and starting tier for `task` among `agents`.
pub fn route(task: &Task, agents: &[AgentConfig], rules: &[RouteRule]) -> Option<Route> {
    let rule = task.kind.as_deref().and_then(|k| rules.iter().find(|r| r.kind == k));
    let by_name = |n: &str| agents.iter().find(|a| a.name == n);
    let agent = task
        .assigned_to
        .as_deref()
        .and_then(by_name)
        .or_else(|| rule.and_then(|r| r.agent.as_deref()).and_then(by_name))
        .or_else(|| task.role.as_deref().and_then(|role| agents.iter().find(|a| a.role == role)))
        .or_else(|| task.kind.as_deref().and_then(|k| agents.iter().find(|a| a.capabilities.iter().any(|c| c == k))))
        // Nothing matched: the orchestrator triages it.
        .or_else(|| agents.iter().find(|a| a.role == "orchestrator"))
        .or_else(|| agents.first())?;
    let tier = task.model_tier.or_else(|| rule.and_then(|r| r.tier)).or(agent.model_tier).unwrap_or(ModelTier::Cheap);
    Some(Route { agent: agent.name.clone(), tier })
}

/// Whether the GPUs the local tier runs on are busy: any host's latest GPU utilisation sample
/// (no older than `fresh`) at or above `threshold` percent.
pub fn local_gpu_busy(samples: &[crate::MetricSample], now: crate::Timestamp, fresh: chrono::Duration, threshold: f64) -> bool {
    let mut latest: std::collections::BTreeMap<(&str, &str), &crate::MetricSample> = Default::default();
    for s in samples.iter().filter(|s| s.source.metric.ends_with(".util_percent") && now - s.timestamp <= fresh) {
        let k = (s.source.host.as_str(), s.source.metric.as_str());
        if latest.get(&k).is_none_or(|o| o.timestamp < s.timestamp) {
            latest.insert(k, s);
        }
    }
    latest.values().any(|s| s.value >= threshold)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewTask, Timestamp};

    fn task(kind: Option<&str>, role: Option<&str>, assigned: Option<&str>) -> Task {
        let mut n = NewTask::titled("t");
        n.kind = kind.map(String::from);
        n.role = role.map(String::from);
        n.assigned_to = assigned.map(String::from);
        n.into_task("id".into(), Timestamp::default())
    }

    #[test]
    fn routes_by_assignment_then_rule_then_role_then_capability_then_orchestrator() {
        let agents = crate::domain::agent::default_agents();
        let rules = vec![RouteRule { kind: "tweet".into(), agent: Some("blaze".into()), tier: Some(ModelTier::Local) }];
        assert_eq!(route(&task(Some("research"), None, Some("rex")), &agents, &rules).unwrap().agent, "rex", "assignment wins");
        let r = route(&task(Some("tweet"), None, None), &agents, &rules).unwrap();
        assert_eq!((r.agent.as_str(), r.tier), ("blaze", ModelTier::Local));
        assert_eq!(route(&task(None, Some("research"), None), &agents, &rules).unwrap().agent, "scout");
        assert_eq!(route(&task(Some("deploy"), None, None), &agents, &rules).unwrap().agent, "rex", "deploy is Rex's capability");
        assert_eq!(
            route(&task(Some("poetry"), None, None), &agents, &rules).unwrap().agent,
            "kev",
            "unknown work goes to the orchestrator"
        );
    }

    #[test]
    fn a_busy_local_gpu_is_seen_only_from_fresh_samples() {
        use crate::{MetricSample, MetricSource};
        let now = crate::time::parse_ts("2026-11-21T10:00:00Z").unwrap();
        let s = |m: &str, v: f64, mins: i64| MetricSample {
            timestamp: now - chrono::Duration::minutes(mins),
            source: MetricSource { host: "dreamteam".into(), metric: m.into() },
            value: v,
        };
        let fresh = chrono::Duration::minutes(5);
        assert!(local_gpu_busy(&[s("gpu0.util_percent", 97.0, 1)], now, fresh, 90.0));
        assert!(!local_gpu_busy(&[s("gpu0.util_percent", 97.0, 30)], now, fresh, 90.0), "stale samples do not count");
        assert!(
            !local_gpu_busy(&[s("gpu0.util_percent", 97.0, 3), s("gpu0.util_percent", 20.0, 1)], now, fresh, 90.0),
            "the latest sample decides"
        );
        assert!(!local_gpu_busy(&[s("cpu.percent", 100.0, 1)], now, fresh, 90.0));
    }

    #[test]
    fn tier_comes_from_task_then_rule_then_agent() {
        let agents = crate::domain::agent::default_agents();
        let mut t = task(Some("research"), None, None);
        assert_eq!(route(&t, &agents, &[]).unwrap().tier, ModelTier::Local, "Scout's default tier");
        t.model_tier = Some(ModelTier::Frontier);
        assert_eq!(route(&t, &agents, &[]).unwrap().tier, ModelTier::Frontier);
    }
}
