//! The team and its rules: caps, agents, routing, approval gates and schedules.
//! Invariant: every name a rule uses (an agent, a gate, a tier) is checked here, once.

use super::{bad, dollars, ConfigError, FileConfig};
use crate::domain::agent::{default_agents, AgentConfig};
use crate::rules::policy::{ApprovalPolicy, Gate, OnExpiry};
use crate::rules::schedule::Schedule;
use crate::{ModelTier, Usd};
use std::collections::BTreeMap;

/// (the factory's daily cap, a task's default cap, each provider's monthly cap).
pub fn caps(file: &FileConfig) -> Result<(Usd, Usd, BTreeMap<String, Usd>), ConfigError> {
    let global_daily_cap = dollars("caps.global_daily_usd", file.caps.global_daily_usd.unwrap_or(100.0))?;
    let task_default_cap = dollars("caps.task_default_usd", file.caps.task_default_usd.unwrap_or(5.0))?;
    let mut provider_monthly_caps = BTreeMap::new();
    for (p, v) in &file.caps.provider_monthly_usd {
        provider_monthly_caps.insert(p.clone(), dollars(&format!("caps.provider_monthly_usd.{p}"), *v)?);
    }
    Ok((global_daily_cap, task_default_cap, provider_monthly_caps))
}

/// The configured agents, or seed 000's four.
pub fn agents(file: &FileConfig) -> Result<Vec<AgentConfig>, ConfigError> {
    let agents = if file.agents.is_empty() {
        default_agents()
    } else {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = vec![];
        for (i, a) in file.agents.iter().enumerate() {
            let key = format!("agents[{i}]");
            if a.name.trim().is_empty() || !a.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(bad(
                    &format!("{key}.name"),
                    format!("{:?} is not a usable agent name", a.name),
                    "use letters, digits, - and _",
                ));
            }
            if !seen.insert(a.name.clone()) {
                return Err(bad(&format!("{key}.name"), format!("agent {:?} is defined twice", a.name), "remove one of them"));
            }
            let model_tier = match &a.model_tier {
                Some(t) => {
                    Some(t.parse::<ModelTier>().map_err(|e| bad(&format!("{key}.model_tier"), e, "use local, cheap, mid or frontier"))?)
                }
                None => None,
            };
            let agent = AgentConfig {
                name: a.name.clone(),
                role: a.role.clone(),
                capabilities: a.capabilities.clone(),
                prompt: a.prompt.clone(),
                model_tier,
                model: a.model.clone(),
                daily_cap_usd: dollars(&format!("{key}.daily_cap_usd"), a.daily_cap_usd)?,
                max_concurrent: a.max_concurrent.unwrap_or(1).max(1),
                tools: a.tools.clone(),
            };
            agent.check_tools().map_err(|e| bad(&format!("{key}.tools"), e, "name only tools from that list"))?;
            out.push(agent);
        }
        out
    };
    Ok(agents)
}

/// Routing rules may only name configured agents.
pub fn check_routing(file: &FileConfig, agents: &[AgentConfig]) -> Result<(), ConfigError> {
    for (i, r) in file.routing.iter().enumerate() {
        if let Some(a) = &r.agent {
            if !agents.iter().any(|x: &AgentConfig| &x.name == a) {
                return Err(bad(&format!("routing[{i}].agent"), format!("{a:?} is not a configured agent"), "name one of the [[agents]]"));
            }
        }
    }
    Ok(())
}

/// The approval gates, their expiry and what happens then.
pub fn policy(file: &FileConfig) -> Result<ApprovalPolicy, ConfigError> {
    let mut policy = ApprovalPolicy::default();
    for (class, g) in &file.approvals.gates {
        crate::rules::policy::check_class(class).map_err(|e| bad(&format!("approvals.gates.{class}"), e, "rename the class"))?;
        let gate: Gate = g
            .parse()
            .map_err(|e: String| bad(&format!("approvals.gates.{class}"), e, "use auto, notify_after, approve_before or never_auto"))?;
        policy.gates.insert(class.clone(), gate);
    }
    if let Some(h) = file.approvals.expiry_hours {
        if !(h.is_finite() && h > 0.0) {
            return Err(bad("approvals.expiry_hours", format!("{h} is not a positive number of hours"), "e.g. 24"));
        }
        policy.expiry = std::time::Duration::from_secs_f64(h * 3600.0);
    }
    policy.on_expiry = match file.approvals.on_expiry.as_deref() {
        None | Some("cancel") => OnExpiry::Cancel,
        Some("escalate") => OnExpiry::Escalate,
        Some(o) => return Err(bad("approvals.on_expiry", format!("{o:?} is not cancel or escalate"), "use cancel or escalate")),
    };
    Ok(policy)
}

/// Schedules, each parsed and naming a configured agent if any.
pub fn schedules(file: &FileConfig, agents: &[AgentConfig]) -> Result<Vec<Schedule>, ConfigError> {
    let mut schedules = vec![];
    for (i, sc) in file.schedules.iter().enumerate() {
        let key = format!("schedules[{i}]");
        let parsed =
            Schedule::parse(sc).map_err(|e| bad(&key, e, "use five-field cron like \"0 7 * * *\" and overlap = \"skip\" or \"allow\""))?;
        if schedules.iter().any(|x: &Schedule| x.section.name == sc.name) {
            return Err(bad(&format!("{key}.name"), format!("schedule {:?} is defined twice", sc.name), "give each a distinct name"));
        }
        if let Some(a) = &sc.agent {
            if !agents.iter().any(|x| &x.name == a) {
                return Err(bad(&format!("{key}.agent"), format!("{a:?} is not a configured agent"), "name one of the [[agents]]"));
            }
        }
        schedules.push(parsed);
    }
    Ok(schedules)
}
