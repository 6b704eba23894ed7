//! `Factory`: the one operation layer. Every operator or agent action hosts offer (the CLI, the
//! desktop app, the MCP toolbox) is one method here, making the store change, its audit entry and
//! its event together; hosts only parse, call and map errors.
//!
//! Invariant: every action that changes state leaves an audit entry naming who did it; every
//! change a watcher cares about leaves an event.

use crate::config::Config;
use crate::ports::Ports;
use crate::*;
use std::sync::Arc;

pub mod control;
pub mod decisions;
pub mod live;
pub mod products;
pub mod schedules;
pub mod spend;
pub mod tasks;
pub mod waits;

pub use control::{CapTarget, Hold};
pub use decisions::Question;
pub use spend::{CapUse, StatusReport};

#[derive(Clone)]
pub struct Factory {
    pub ports: Ports,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<Config>,
    /// This process's copy of the live config (agents, cap, gates as last edited).
    pub(crate) live_cache: Arc<live::LiveCache>,
}

impl Factory {
    pub fn new(ports: Ports, clock: Arc<dyn Clock>, config: Arc<Config>) -> Self {
        Self { ports, clock, config, live_cache: Default::default() }
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The actor this host's operator acts as in the audit log and events (`operator:<name>`).
    pub fn operator(&self) -> String {
        format!("operator:{}", self.config.operator)
    }

    pub async fn event(&self, kind: &str, actor: &str, subject: Option<&str>, data: serde_json::Value) -> StoreResult<()> {
        self.ports
            .events
            .append(Event { id: new_id(), kind: kind.into(), at: self.now(), actor: actor.into(), subject: subject.map(Into::into), data })
            .await
    }

    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        old: serde_json::Value,
        new: serde_json::Value,
        reason: Option<&str>,
    ) -> StoreResult<()> {
        self.ports
            .audit
            .record(AuditEntry {
                id: new_id(),
                at: self.now(),
                actor: actor.into(),
                action: action.into(),
                subject: subject.into(),
                old,
                new,
                host: self.config.operator.split('@').nth(1).map(Into::into),
                reason: reason.map(Into::into),
            })
            .await
    }
}
