//! Operator controls shared through the store: pausing or stopping the factory or one agent,
//! and one-period cap overrides. Every change is audited and evented; workers read them before
//! claiming and while running.

use super::Factory;
use crate::settings::Key;
use crate::*;
use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hold {
    /// Take no new work; running work finishes.
    Pause,
    /// Take no new work and stop running work cleanly; its tasks go back to pending.
    Stop,
}

impl Hold {
    pub fn as_str(self) -> &'static str {
        match self {
            Hold::Pause => "pause",
            Hold::Stop => "stop",
        }
    }
}

impl std::str::FromStr for Hold {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pause" => Ok(Hold::Pause),
            "stop" => Ok(Hold::Stop),
            o => Err(format!("{o:?} is not pause or stop")),
        }
    }
}

/// Which cap an override changes: the factory's (`global`) or one agent's, for today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapTarget {
    Global,
    Agent(String),
}

impl CapTarget {
    /// `global`, or an agent's name.
    pub fn parse(s: &str) -> Self {
        if s == "global" {
            CapTarget::Global
        } else {
            CapTarget::Agent(s.to_string())
        }
    }
}

fn key(agent: Option<&str>) -> String {
    match agent {
        Some(a) => Key::AgentHold(a).id(),
        None => Key::FactoryHold.id(),
    }
}

fn override_key(scope: &ScopeKey) -> String {
    Key::CapOverride(&scope.0).id()
}

impl Factory {
    /// The hold on the factory (`None`) or an agent, if any.
    pub async fn hold_of(&self, agent: Option<&str>) -> StoreResult<Option<Hold>> {
        Ok(self.ports.settings.get(&key(agent)).await?.and_then(|v| serde_json::from_value(v["hold"].clone()).ok()))
    }

    /// The strongest hold that applies to `agent` (its own or the factory's).
    pub async fn effective_hold(&self, agent: &str) -> StoreResult<Option<Hold>> {
        let a = self.hold_of(Some(agent)).await?;
        let g = self.hold_of(None).await?;
        Ok(match (a, g) {
            (Some(Hold::Stop), _) | (_, Some(Hold::Stop)) => Some(Hold::Stop),
            (Some(Hold::Pause), _) | (_, Some(Hold::Pause)) => Some(Hold::Pause),
            _ => None,
        })
    }

    /// Pauses, stops (`Some`) or resumes (`None`) the factory or one agent.
    pub async fn set_hold(&self, agent: Option<&str>, hold: Option<Hold>, who: &str, reason: Option<&str>) -> StoreResult<()> {
        if let Some(a) = agent {
            if self.config.agent(a).is_none() {
                return Err(StoreError::Invalid(format!("{a:?} is not a configured agent")));
            }
        }
        let k = key(agent);
        let old = self.ports.settings.get(&k).await?.unwrap_or(serde_json::Value::Null);
        match hold {
            Some(h) => {
                self.ports
                    .settings
                    .put(&k, serde_json::json!({"hold": h, "by": who, "at": time::fmt_ts(&self.now()), "reason": reason}))
                    .await?
            }
            None => self.ports.settings.delete(&k).await?,
        }
        let subject = agent.map(|a| format!("agent:{a}")).unwrap_or_else(|| "factory".into());
        let action = hold.map(Hold::as_str).unwrap_or("resume");
        self.audit(who, &format!("control.{action}"), &subject, old, serde_json::json!({"hold": hold}), reason).await?;
        self.event(&format!("control.{action}"), who, Some(&subject), serde_json::json!({"reason": reason})).await
    }

    /// Sets today's cap of the factory or one agent to `cap` for the rest of the day; audited.
    /// The period is in the scope key, so the override ends with the day by itself.
    pub async fn override_cap(&self, target: &CapTarget, cap: Usd, who: &str, reason: &str) -> StoreResult<ScopeKey> {
        if reason.trim().is_empty() {
            return Err(StoreError::Invalid("a cap override needs a reason".into()));
        }
        if cap.0 < 0 {
            return Err(StoreError::Invalid("a cap must be a non-negative amount".into()));
        }
        let (tz, now) = (self.config.timezone, self.now());
        let scope = match target {
            CapTarget::Global => ScopeKey::global_day(tz, now),
            CapTarget::Agent(a) if self.config.agent(a).is_some() => ScopeKey::agent_day(a, tz, now),
            CapTarget::Agent(a) => return Err(StoreError::Invalid(format!("{a:?} is neither `global` nor a configured agent"))),
        };
        let k = override_key(&scope);
        let old = self.ports.settings.get(&k).await?.unwrap_or(serde_json::Value::Null);
        self.ports.settings.put(&k, serde_json::json!(cap.0)).await?;
        self.audit(who, "cap.override", &scope.0, old, serde_json::json!(cap.0), Some(reason)).await?;
        self.event("cap.override", who, Some(&scope.0), serde_json::json!({"cap": cap.0, "reason": reason})).await?;
        Ok(scope)
    }

    /// `scopes` with any operator override applied to their caps.
    pub async fn apply_overrides(&self, mut scopes: Vec<ScopeCap>) -> StoreResult<Vec<ScopeCap>> {
        for s in &mut scopes {
            if let Some(v) = self.ports.settings.get(&override_key(&s.scope)).await? {
                if let Some(c) = v.as_i64() {
                    s.cap = Usd(c);
                }
            }
        }
        Ok(scopes)
    }
}
