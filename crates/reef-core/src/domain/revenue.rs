//! Products and the money they bring in, kept per currency (never silently converted).

use crate::time::{ts, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_provider: Option<String>,
    /// Stripe product/price ids that map to this product.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stripe_ids: Vec<String>,
    #[serde(with = "ts")]
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevenueKind {
    Charge,
    InvoicePaid,
    Refund,
    Subscription,
    Manual,
}

/// One revenue event. `_id` is the source's id (e.g. Stripe event id), so recording is idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevenueEvent {
    #[serde(rename = "_id")]
    pub id: String,
    pub product: String,
    /// Minor units (cents); refunds are negative.
    pub amount_minor: i64,
    /// ISO 4217, lower case as Stripe sends it.
    pub currency: String,
    pub kind: RevenueKind,
    #[serde(with = "ts")]
    pub at: Timestamp,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub data: serde_json::Value,
    /// What the money moved through (a Stripe charge id), so a later refund finds its product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// A recurring subscription as last reported by its source; MRR is summed from these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    /// The source's id (Stripe `sub_…`).
    #[serde(rename = "_id")]
    pub id: String,
    pub product: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// The source's status (Stripe: active, trialing, past_due, canceled, unpaid, …).
    pub status: String,
    pub currency: String,
    /// The recurring amount normalised to one month, in minor units.
    pub monthly_minor: i64,
    /// When the source last changed it: an older report never overwrites a newer one.
    #[serde(with = "ts")]
    pub updated_at: Timestamp,
    #[serde(default)]
    pub source: String,
}

impl Subscription {
    /// Whether it counts towards MRR: paying now, or late but not given up on.
    pub fn counts_for_mrr(&self) -> bool {
        matches!(self.status.as_str(), "active" | "past_due")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RevenueRow {
    pub product: String,
    /// `YYYY-MM` (UTC).
    pub month: String,
    pub currency: String,
    pub amount_minor: i64,
}
