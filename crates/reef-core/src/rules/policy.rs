//! The approval policy: which action classes may run on their own and which wait for a person.
//!
//! Invariant: an unknown action class is treated as `auto` only when it is absent; a class the
//! policy names is never run past its gate.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Runs without asking.
    Auto,
    /// Runs, then tells the operator.
    NotifyAfter,
    /// Waits for an approval first.
    ApproveBefore,
    /// Never runs by itself: goes to a person (`needs_human`).
    NeverAuto,
}

impl Gate {
    pub const ALL: [Gate; 4] = [Gate::Auto, Gate::NotifyAfter, Gate::ApproveBefore, Gate::NeverAuto];

    /// The name the config file, the CLI and the window use.
    pub fn as_str(self) -> &'static str {
        match self {
            Gate::Auto => "auto",
            Gate::NotifyAfter => "notify_after",
            Gate::ApproveBefore => "approve_before",
            Gate::NeverAuto => "never_auto",
        }
    }
}

impl std::str::FromStr for Gate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Gate::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not a gate (auto, notify_after, approve_before, never_auto)"))
    }
}

/// Action class → gate, with seed 002's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalPolicy {
    pub gates: BTreeMap<String, Gate>,
    /// How long a request waits before it expires.
    pub expiry: std::time::Duration,
    /// What an expired request does to its task.
    pub on_expiry: OnExpiry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnExpiry {
    /// Cancel the task with the reason and raise an alert.
    Cancel,
    /// Hand it to a person (`needs_human`) and raise an alert.
    Escalate,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        let mut gates = BTreeMap::new();
        for c in ["production_deploy", "customer_message", "financial_transaction", "public_post"] {
            gates.insert(c.to_string(), Gate::ApproveBefore);
        }
        for c in ["legal", "security_change", "data_deletion"] {
            gates.insert(c.to_string(), Gate::NeverAuto);
        }
        Self { gates, expiry: std::time::Duration::from_secs(24 * 3600), on_expiry: OnExpiry::Cancel }
    }
}

impl ApprovalPolicy {
    pub fn gate(&self, action_class: Option<&str>) -> Gate {
        action_class.and_then(|c| self.gates.get(c).copied()).unwrap_or(Gate::Auto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_defaults_gate_the_risky_classes() {
        let p = ApprovalPolicy::default();
        assert_eq!(p.gate(Some("production_deploy")), Gate::ApproveBefore);
        assert_eq!(p.gate(Some("public_post")), Gate::ApproveBefore);
        assert_eq!(p.gate(Some("data_deletion")), Gate::NeverAuto);
        assert_eq!(p.gate(Some("build")), Gate::Auto);
        assert_eq!(p.gate(None), Gate::Auto);
    }
}
