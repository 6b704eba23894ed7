//! Spend: scopes with caps, reservations held before a call, and the calls themselves.

use crate::time::{local_day, local_month, ts, ts_opt, Timestamp};
use crate::Usd;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// A budget scope for one period, e.g. `agent:rex:day:2026-11-21`. Its totals are kept for good.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScopeKey(pub String);

impl ScopeKey {
    pub fn task(task_id: &str) -> Self {
        Self(format!("task:{task_id}"))
    }
    pub fn agent_day(agent: &str, tz: Tz, now: Timestamp) -> Self {
        Self(format!("agent:{agent}:day:{}", local_day(tz, now)))
    }
    pub fn provider_month(provider: &str, tz: Tz, now: Timestamp) -> Self {
        Self(format!("provider:{provider}:month:{}", local_month(tz, now)))
    }
    pub fn global_day(tz: Tz, now: Timestamp) -> Self {
        Self(format!("global:day:{}", local_day(tz, now)))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Monthly spend roll-up, e.g. `spend:month:2026-11:agent:rex` (no cap; kept for good).
    pub fn spend_month(month: &str, dimension: &str, value: &str) -> Self {
        Self(format!("spend:month:{month}:{dimension}:{value}"))
    }
}

/// The roll-up scopes one call's cost is added to, by month in the factory's timezone.
pub fn rollups_for(call: &LlmCall, tz: Tz) -> Vec<ScopeKey> {
    let m = local_month(tz, call.at);
    let mut v = vec![
        ScopeKey(format!("spend:month:{m}:global")),
        ScopeKey::spend_month(&m, "agent", &call.agent),
        ScopeKey::spend_month(&m, "model", &call.model),
    ];
    if let Some(p) = &call.product {
        v.push(ScopeKey::spend_month(&m, "product", p));
    }
    if let Some(p) = &call.provider {
        v.push(ScopeKey::spend_month(&m, "provider", p));
    }
    v
}

/// One scope a reservation must fit in, with the cap in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScopeCap {
    pub scope: ScopeKey,
    pub cap: Usd,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReserveRequest {
    pub id: String,
    pub scopes: Vec<ScopeCap>,
    pub amount: Usd,
    /// An abandoned reservation (its worker died) is released after this.
    pub expires_at: Timestamp,
    pub task_id: Option<String>,
    pub agent: Option<String>,
}

impl ReserveRequest {
    /// The reservation this request becomes once every scope accepted it.
    pub fn to_reservation(&self, now: Timestamp) -> Reservation {
        Reservation {
            id: self.id.clone(),
            scopes: self.scopes.iter().map(|s| s.scope.clone()).collect(),
            amount: self.amount,
            state: ReservationState::Open,
            created_at: now,
            expires_at: self.expires_at,
            settled: None,
            task_id: self.task_id.clone(),
            agent: self.agent.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationState {
    Open,
    Settled,
    Released,
    Expired,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    #[serde(rename = "_id")]
    pub id: String,
    pub scopes: Vec<ScopeKey>,
    pub amount: Usd,
    pub state: ReservationState,
    #[serde(with = "ts")]
    pub created_at: Timestamp,
    #[serde(with = "ts")]
    pub expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled: Option<Usd>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// The running totals of one scope and period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScopeTotal {
    #[serde(rename = "_id")]
    pub scope: ScopeKey,
    pub cap: Usd,
    pub spent: Usd,
    pub reserved: Usd,
    /// Spend recorded past the cap (a CLI agent that overshot its soft cap): shown, never hidden.
    #[serde(default)]
    pub overshoot: Usd,
    #[serde(with = "ts")]
    pub updated_at: Timestamp,
}

/// One LLM call as recorded in `llm_calls`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmCall {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(with = "ts")]
    pub at: Timestamp,
    pub agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost: Usd,
    pub latency_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, with = "ts_opt", skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
}

/// Spend grouped by one key (agent, model, product or day).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpendRow {
    pub key: String,
    pub cost: Usd,
    pub calls: u64,
}

#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpendGroup {
    Agent,
    Model,
    Product,
    Day,
}
