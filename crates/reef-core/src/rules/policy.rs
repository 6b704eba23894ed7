//! The approval policy: which action classes may run on their own and which wait for a person.
//!
//! Invariant: the policy fails closed. A class it does not name waits for approval; only work
//! that names no class (and runs no executor that acts as one) runs by itself; a class the policy
//! names is never run past its gate.

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
    /// What an action class nobody listed gets: fail-safe default deny (seed 001, decision 60).
    pub const UNLISTED: Gate = Gate::ApproveBefore;

    /// How much a person stands between the agent and the action: higher is more guarded.
    pub fn strictness(self) -> u8 {
        match self {
            Gate::Auto => 0,
            Gate::NotifyAfter => 1,
            Gate::ApproveBefore => 2,
            Gate::NeverAuto => 3,
        }
    }

    /// A gate at which a person decides before the action (approval or by hand).
    pub fn is_guarded(self) -> bool {
        self.strictness() >= Gate::ApproveBefore.strictness()
    }

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

/// Action class → gate, with seed 002's defaults (§7.4).
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
        for c in ["read_only", "draft", "research", "internal_doc"] {
            gates.insert(c.to_string(), Gate::Auto);
        }
        for c in ["build", "staging_deploy"] {
            gates.insert(c.to_string(), Gate::NotifyAfter);
        }
        for c in ["production_deploy", "customer_message", "financial_transaction", "public_post"] {
            gates.insert(c.to_string(), Gate::ApproveBefore);
        }
        for c in ["legal", "security_change", "data_deletion"] {
            gates.insert(c.to_string(), Gate::NeverAuto);
        }
        Self { gates, expiry: std::time::Duration::from_secs(24 * 3600), on_expiry: OnExpiry::Cancel }
    }
}

/// Checks an action class name: lowercase letters, digits and `_`, at most 64 bytes.
pub fn check_class(class: &str) -> Result<(), String> {
    if class.is_empty() || class.len() > 64 || !class.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(format!("{class:?} is not an action class (lowercase letters, digits and _, e.g. production_deploy)"));
    }
    Ok(())
}

/// The gate of one action class: its own where the policy lists it, approval where it does not,
/// `auto` for work that names no class.
pub fn gate_of(gates: &BTreeMap<String, Gate>, action_class: Option<&str>) -> Gate {
    match action_class {
        None => Gate::Auto,
        Some(c) => gates.get(c).copied().unwrap_or(Gate::UNLISTED),
    }
}

/// The class that governs a task and its gate: the stricter of the class the task was given and
/// the class its executor acts as (an executor that deploys makes every task it runs a deploy,
/// whatever class the task names or leaves out). On a tie the executor's class is named: it is
/// what will actually run.
pub fn governing<'a>(gates: &BTreeMap<String, Gate>, given: Option<&'a str>, executor: Option<&'a str>) -> (Option<&'a str>, Gate) {
    let (g, x) = (gate_of(gates, given), gate_of(gates, executor));
    match executor {
        Some(_) if x.strictness() >= g.strictness() => (executor, x),
        _ => (given, g),
    }
}

/// The gate of a merge whose change is flagged (it edits or deletes tests or check definitions):
/// never less than approve-before, whatever the policy says of merges — a person sees it first.
pub fn flagged_gate(gate: Gate, flagged: bool) -> Gate {
    if flagged && gate.strictness() < Gate::ApproveBefore.strictness() {
        Gate::ApproveBefore
    } else {
        gate
    }
}

impl ApprovalPolicy {
    pub fn gate(&self, action_class: Option<&str>) -> Gate {
        gate_of(&self.gates, action_class)
    }
}

#[cfg(test)]
mod flag_tests {
    use super::*;

    #[test]
    fn a_flagged_change_waits_for_a_person_whatever_merges_are_set_to() {
        for g in Gate::ALL {
            let f = flagged_gate(g, true);
            assert!(f.strictness() >= Gate::ApproveBefore.strictness(), "{g:?} -> {f:?}");
            assert_eq!(flagged_gate(g, false), g, "an unflagged change keeps the policy's gate");
        }
        assert_eq!(flagged_gate(Gate::NeverAuto, true), Gate::NeverAuto);
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
        assert_eq!(p.gate(Some("research")), Gate::Auto);
        assert_eq!(p.gate(Some("build")), Gate::NotifyAfter);
        assert_eq!(p.gate(None), Gate::Auto);
    }

    #[test]
    fn a_class_nobody_listed_waits_for_approval() {
        let p = ApprovalPolicy::default();
        assert_eq!(p.gate(Some("made_up_by_an_agent")), Gate::ApproveBefore);
        assert_eq!(p.gate(Some("")), Gate::ApproveBefore);
        let mut gates = p.gates.clone();
        gates.remove("research");
        assert_eq!(gate_of(&gates, Some("research")), Gate::ApproveBefore, "a removed class is an unlisted one");
    }

    #[test]
    fn the_executors_class_governs_when_it_is_stricter() {
        let mut gates = ApprovalPolicy::default().gates;
        gates.insert("build".into(), Gate::Auto);
        // No class given, or a harmless one: the deploying executor's class governs.
        assert_eq!(governing(&gates, None, Some("production_deploy")), (Some("production_deploy"), Gate::ApproveBefore));
        assert_eq!(governing(&gates, Some("build"), Some("production_deploy")), (Some("production_deploy"), Gate::ApproveBefore));
        // A stricter class given stays.
        assert_eq!(governing(&gates, Some("legal"), Some("production_deploy")), (Some("legal"), Gate::NeverAuto));
        // An executor that acts as no class leaves the task's own.
        assert_eq!(governing(&gates, Some("build"), None), (Some("build"), Gate::Auto));
        assert_eq!(governing(&gates, None, None), (None, Gate::Auto));
    }
}
