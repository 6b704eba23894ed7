//! Events (what happened, for feeds and alerts), the audit log (who changed what, kept for good),
//! and store changes (what a watcher wakes on).

use crate::time::{ts, Timestamp};
use serde::{Deserialize, Serialize};

/// A domain event in `events` (capped/retained: a feed, not a record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "_id")]
    pub id: String,
    /// Dotted kind, e.g. `task.created`, `budget.alert`, `approval.requested`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(with = "ts")]
    pub at: Timestamp,
    /// Who caused it: `operator:<name>`, `agent:<name>`, `reef` …
    pub actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default)]
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Severity {
    #[serde(rename = "info")]
    Info,
    #[serde(rename = "warning")]
    Warning,
    #[serde(rename = "critical")]
    Critical,
}

/// One entry in the audit log: never capped, never expired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(with = "ts")]
    pub at: Timestamp,
    /// Operator identity (`operator:adam@laptop`) or agent (`agent:rex`).
    pub actor: String,
    /// What was done, e.g. `task.create`, `approval.decide`, `agent.config`, `cap.override`.
    pub action: String,
    pub subject: String,
    #[serde(default)]
    pub old: serde_json::Value,
    #[serde(default)]
    pub new: serde_json::Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Where a watcher is in the store's change history. Opaque outside the store that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumeToken(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    Insert,
    Update,
    Delete,
}

/// One change to one document, as a watcher sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub token: ResumeToken,
    pub collection: String,
    pub op: ChangeOp,
    pub id: String,
}
