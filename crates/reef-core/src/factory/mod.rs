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

pub mod attention;
pub mod control;
pub mod decisions;
pub mod delivery;
pub mod evidence;
pub mod live;
pub mod pipeline_defs;
pub mod pipelines;
pub mod products;
pub mod running;
pub mod schedule_defs;
pub mod schedules;
pub mod search;
mod shared_doc;
pub mod spend;
pub mod tasks;
pub mod waits;

pub use attention::{Attention, HoldNote, Outlook};
pub use control::{CapTarget, Hold};
pub use decisions::Question;
pub use evidence::Evidence;
pub use running::RunningWork;
pub use schedule_defs::{ScheduleRun, ScheduleSource};
pub use search::{Hit, HitKind};
pub use spend::{CapUse, HourSpend, StatusReport};

#[derive(Clone)]
pub struct Factory {
    pub ports: Ports,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<Config>,
    /// This process's copy of the live config (agents, cap, gates as last edited).
    pub(crate) live_cache: Arc<live::LiveCache>,
    /// The secret values this process knows, kept out of everything it stores or sends.
    pub redactor: Arc<crate::secret::Redactor>,
}

impl Factory {
    pub fn new(ports: Ports, clock: Arc<dyn Clock>, config: Arc<Config>) -> Self {
        let redactor = Arc::new(known_secrets(&config));
        Self { ports, clock, config, live_cache: Default::default(), redactor }
    }

    /// An outcome with every known secret value taken out of its text, before it is stored.
    pub fn redacted(&self, mut o: Outcome) -> Outcome {
        let r = &self.redactor;
        match &mut o {
            Outcome::Succeeded { result, work_products, .. } => {
                *result = r.redact(result);
                for v in
                    [&mut work_products.branch, &mut work_products.pr_url, &mut work_products.preview_url, &mut work_products.deploy_url]
                {
                    if let Some(s) = v.as_mut() {
                        *s = r.redact(s);
                    }
                }
            }
            Outcome::Retry { error } | Outcome::Requeue { error } | Outcome::Failed { error } => *error = r.redact(error),
            Outcome::NeedsHuman { reason } => *reason = r.redact(reason),
            Outcome::AwaitingApproval | Outcome::Blocked { .. } => {}
        }
        o
    }

    /// An event with every known secret value taken out of its data, before it is stored (and so
    /// before any webhook sends it).
    pub fn redacted_event(&self, mut ev: Event) -> Event {
        self.redactor.redact_json(&mut ev.data);
        ev
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The actor this host's operator acts as in the audit log and events (`operator:<name>`).
    pub fn operator(&self) -> String {
        format!("operator:{}", self.config.operator)
    }

    pub async fn event(&self, kind: &str, actor: &str, subject: Option<&str>, data: serde_json::Value) -> StoreResult<()> {
        let ev = Event { id: new_id(), kind: kind.into(), at: self.now(), actor: actor.into(), subject: subject.map(Into::into), data };
        self.ports.events.append(self.redacted_event(ev)).await
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
                old: {
                    let mut v = old;
                    self.redactor.redact_json(&mut v);
                    v
                },
                new: {
                    let mut v = new;
                    self.redactor.redact_json(&mut v);
                    v
                },
                host: self.config.operator.split('@').nth(1).map(Into::into),
                reason: reason.map(|r| self.redactor.redact(r)),
            })
            .await
    }
}

/// The secrets this process holds: the config's (gateway key, Stripe, phone links, operator
/// clients, the store's address) and those in its environment (`secret::holds_secret`: REEF's
/// outward and product secrets, any `*_KEY` / `*_TOKEN` / … a CLI agent may be passed).
fn known_secrets(c: &Config) -> crate::secret::Redactor {
    use crate::secret::Secret;
    let mut known: Vec<(String, Secret)> =
        std::env::vars().filter(|(k, _)| crate::secret::holds_secret(k)).map(|(k, v)| (k, Secret::new(v))).collect();
    let mut add = |name: &str, s: Option<&Secret>| {
        if let Some(s) = s {
            known.push((name.to_string(), s.clone()));
        }
    };
    add("REEF_LLM_API_KEY", c.llm_api_key.as_ref());
    add("REEF_STRIPE_API_KEY", c.stripe.api_key.as_ref());
    add("REEF_STRIPE_WEBHOOK_SECRET", c.stripe.webhook_secret.as_ref());
    add("REEF_LINK_SECRET", c.links.as_ref().map(|l| &l.secret));
    add("REEF_GITHUB_TOKEN", c.forge_token.as_ref());
    known.extend(c.product_secrets.iter().cloned());
    for (name, s) in &c.mcp.operators {
        known.push((crate::secret::mcp_operator_secret(name), s.clone()));
    }
    if let crate::config::StoreChoice::Mongo { uri, .. } = &c.store {
        known.push(("REEF_MONGODB_URI".into(), uri.clone()));
    }
    crate::secret::Redactor::new(known)
}
