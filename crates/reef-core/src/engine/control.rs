//! Operator controls shared through the store: pausing or stopping the factory or one agent,
//! and cap overrides. Every change is audited; workers read them before claiming and while
//! running.

use crate::factory::Factory;
use crate::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hold {
    /// Take no new work; running work finishes.
    Pause,
    /// Take no new work and stop running work cleanly; its tasks go back to pending.
    Stop,
}

fn key(agent: Option<&str>) -> String {
    match agent {
        Some(a) => format!("control:agent:{a}"),
        None => "control:factory".into(),
    }
}

/// The hold on the factory or an agent, if any.
pub async fn hold_of(f: &Factory, agent: Option<&str>) -> StoreResult<Option<Hold>> {
    Ok(f.ports.settings.get(&key(agent)).await?.and_then(|v| serde_json::from_value(v["hold"].clone()).ok()))
}

/// The strongest hold that applies to `agent` (its own or the factory's).
pub async fn effective_hold(f: &Factory, agent: &str) -> StoreResult<Option<Hold>> {
    let a = hold_of(f, Some(agent)).await?;
    let g = hold_of(f, None).await?;
    Ok(match (a, g) {
        (Some(Hold::Stop), _) | (_, Some(Hold::Stop)) => Some(Hold::Stop),
        (Some(Hold::Pause), _) | (_, Some(Hold::Pause)) => Some(Hold::Pause),
        _ => None,
    })
}

pub async fn set_hold(f: &Factory, agent: Option<&str>, hold: Option<Hold>, who: &str, reason: Option<&str>) -> StoreResult<()> {
    if let Some(a) = agent {
        if f.config.agent(a).is_none() {
            return Err(StoreError::Invalid(format!("{a:?} is not a configured agent")));
        }
    }
    let k = key(agent);
    let old = f.ports.settings.get(&k).await?.unwrap_or(serde_json::Value::Null);
    match hold {
        Some(h) => {
            f.ports.settings.put(&k, serde_json::json!({"hold": h, "by": who, "at": time::fmt_ts(&f.now()), "reason": reason})).await?
        }
        None => f.ports.settings.delete(&k).await?,
    }
    let subject = agent.map(|a| format!("agent:{a}")).unwrap_or_else(|| "factory".into());
    let action = match hold {
        Some(Hold::Pause) => "pause",
        Some(Hold::Stop) => "stop",
        None => "resume",
    };
    f.audit(who, &format!("control.{action}"), &subject, old, serde_json::json!({"hold": hold}), reason).await?;
    f.event(&format!("control.{action}"), who, Some(&subject), serde_json::json!({"reason": reason})).await
}

fn override_key(scope: &ScopeKey) -> String {
    format!("cap_override:{}", scope.0)
}

/// Raises (or lowers) a cap for one period; audited. The period is in the scope key, so the
/// override ends with the period by itself.
pub async fn override_cap(f: &Factory, scope: &ScopeKey, cap: Usd, who: &str, reason: &str) -> StoreResult<()> {
    if reason.trim().is_empty() {
        return Err(StoreError::Invalid("a cap override needs a reason".into()));
    }
    let old = f.ports.settings.get(&override_key(scope)).await?.unwrap_or(serde_json::Value::Null);
    f.ports.settings.put(&override_key(scope), serde_json::json!(cap.0)).await?;
    f.audit(who, "cap.override", &scope.0, old, serde_json::json!(cap.0), Some(reason)).await?;
    f.event("cap.override", who, Some(&scope.0), serde_json::json!({"cap": cap.0, "reason": reason})).await
}

/// `scopes` with any operator override applied to their caps.
pub async fn apply_overrides(f: &Factory, mut scopes: Vec<ScopeCap>) -> StoreResult<Vec<ScopeCap>> {
    for s in &mut scopes {
        if let Some(v) = f.ports.settings.get(&override_key(&s.scope)).await? {
            if let Some(c) = v.as_i64() {
                s.cap = Usd(c);
            }
        }
    }
    Ok(scopes)
}
