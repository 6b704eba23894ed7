//! The live part of the configuration: each agent's prompt, model and caps, the factory's daily
//! cap and the approval gates, as the operator last set them. It lives in the store so every REEF
//! process (the server's engine, a laptop's window, the CLI) sees one truth.
//!
//! Invariant: the newest change wins. A change made in the window or the CLI is a new agent
//! revision (or settings change), audited; the config file's values are applied again only when
//! the file itself changed since they were last applied — so restarting never undoes an edit, and
//! editing the file still works.

use crate::factory::Factory;
use crate::rules::policy::{gate_of, Gate};
use crate::settings::Key;
use crate::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How long a process trusts its copy before it reads the store again: an edit made on another
/// machine is in force within this long (measured on the factory's clock).
pub const FRESH_FOR: Duration = Duration::from_secs(2);
const FACTORY_KEY: Key<'static> = Key::LiveFactory;
/// The longest prompt an agent may have (the window's editor and `reef agent edit` share it).
pub const MAX_PROMPT_BYTES: usize = 32 * 1024;

/// The configuration in force now.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveConfig {
    /// The configured agents (the file names them), each with its current settings.
    pub agents: Vec<AgentConfig>,
    pub global_daily_cap: Usd,
    pub gates: BTreeMap<String, Gate>,
}

impl LiveConfig {
    pub fn agent(&self, name: &str) -> Option<&AgentConfig> {
        self.agents.iter().find(|a| a.name == name)
    }

    /// The gate of one class; a class the policy does not list waits for approval.
    pub fn gate(&self, action_class: Option<&str>) -> Gate {
        crate::rules::policy::gate_of(&self.gates, action_class)
    }
}

/// The factory-wide settings an operator edits: `live.factory` in the store's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FactorySettings {
    global_daily_cap: Usd,
    gates: BTreeMap<String, Gate>,
}

/// One process's copy of the live config; shared by a factory's clones.
#[derive(Default)]
pub struct LiveCache {
    slot: RwLock<Option<(Timestamp, Arc<LiveConfig>)>>,
}

impl LiveCache {
    fn get(&self, now: Timestamp) -> Option<Arc<LiveConfig>> {
        let g = self.slot.read().ok()?;
        let fresh = |at: &Timestamp| (now - *at).to_std().is_ok_and(|age| age < FRESH_FOR);
        g.as_ref().filter(|(at, _)| fresh(at)).map(|(_, c)| c.clone())
    }

    fn put(&self, now: Timestamp, c: Arc<LiveConfig>) {
        if let Ok(mut g) = self.slot.write() {
            *g = Some((now, c));
        }
    }

    fn clear(&self) {
        if let Ok(mut g) = self.slot.write() {
            *g = None;
        }
    }
}

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::Invalid(msg.into())
}

/// Checks an edited agent config: the window and the CLI send whatever a person typed.
pub fn validate_agent(c: &AgentConfig) -> StoreResult<()> {
    if c.daily_cap_usd.0 < 0 {
        return Err(invalid(format!("{}: daily cap {} is negative", c.name, c.daily_cap_usd)));
    }
    if c.daily_cap_usd > Usd::from_dollars(100_000.0) {
        return Err(invalid(format!("{}: daily cap {} is over $100,000 — a typo?", c.name, c.daily_cap_usd)));
    }
    if c.prompt.len() > MAX_PROMPT_BYTES {
        return Err(invalid(format!("{}: the prompt is {} bytes; the limit is {MAX_PROMPT_BYTES}", c.name, c.prompt.len())));
    }
    if c.prompt.chars().any(|ch| ch.is_control() && !matches!(ch, '\n' | '\t' | '\r')) {
        return Err(invalid(format!("{}: the prompt holds control characters", c.name)));
    }
    if let Some(m) = &c.model {
        if m.trim().is_empty() || m.len() > 200 || m.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
            return Err(invalid(format!("{}: model {m:?} is not a model name (e.g. frontier or anthropic/claude-sonnet-4)", c.name)));
        }
    }
    if !(1..=64).contains(&c.max_concurrent) {
        return Err(invalid(format!("{}: max_concurrent {} must be between 1 and 64", c.name, c.max_concurrent)));
    }
    c.check_tools().map_err(invalid)?;
    Ok(())
}

/// Checks an action class name for the approval policy.
fn validate_class(class: &str) -> StoreResult<()> {
    crate::rules::policy::check_class(class).map_err(invalid)
}

impl Factory {
    /// The class that governs work of this class and type, and its gate: the stricter of the
    /// class given and the class the type's executor acts as. Every gate decision goes through
    /// here, so a task cannot slip past a deploying executor's gate by naming no class.
    pub fn governing(&self, live: &LiveConfig, class: Option<&str>, kind: Option<&str>) -> (Option<String>, Gate) {
        let executor = self.config.executor_for_kind(kind).and_then(|x| x.action_class.as_deref());
        let (c, g) = crate::rules::policy::governing(&live.gates, class, executor);
        (c.map(str::to_string), g)
    }

    /// The configuration in force, at most a couple of seconds old (engines also drop their
    /// copy as soon as their watch shows an agent or settings change).
    pub async fn live(&self) -> StoreResult<Arc<LiveConfig>> {
        if let Some(c) = self.live_cache.get(self.now()) {
            return Ok(c);
        }
        self.live_fresh().await
    }

    /// Forgets this process's copy: the next `live()` reads the store.
    pub fn forget_live(&self) {
        self.live_cache.clear();
    }

    /// The configuration in force, read from the store now: for decisions that must not run on
    /// a stale copy (the approval gate of a task about to run).
    pub async fn live_fresh(&self) -> StoreResult<Arc<LiveConfig>> {
        let stored = self.ports.agents.list().await?.items;
        let agents = self
            .config
            .agents
            .iter()
            .map(|file| stored.iter().find(|s| s.id == file.name).map(|s| s.config.clone()).unwrap_or_else(|| file.clone()))
            .collect();
        let fs = self.factory_settings().await?;
        let c = Arc::new(LiveConfig { agents, global_daily_cap: fs.global_daily_cap, gates: fs.gates });
        self.live_cache.put(self.now(), c.clone());
        Ok(c)
    }

    async fn factory_settings(&self) -> StoreResult<FactorySettings> {
        let file = FactorySettings { global_daily_cap: self.config.global_daily_cap, gates: self.config.policy.gates.clone() };
        Ok(match self.ports.settings.get(&FACTORY_KEY.id()).await? {
            // A malformed value written by another program falls back to the file's (and is
            // replaced by the next edit) rather than stopping the engine.
            Some(v) => serde_json::from_value(v).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "settings {FACTORY_KEY} is malformed; using the config file's cap and gates");
                file
            }),
            None => file,
        })
    }

    /// Brings the store up to date with the config file: each agent, and the factory's cap and
    /// gates, are written from the file when the file's value changed since it was last applied
    /// (or was never applied); otherwise the store's — possibly edited — value stands.
    pub async fn sync_live(&self, author: &str) -> StoreResult<Vec<Agent>> {
        let mut out = vec![];
        for a in &self.config.agents {
            let key = Key::LiveFileApplied(&format!("agent:{}", a.name)).id();
            let file = serde_json::to_value(a).unwrap_or_default();
            let applied = self.ports.settings.get(&key).await?;
            let existing = match self.ports.agents.get(&a.name).await {
                Ok(x) => Some(x),
                Err(StoreError::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            match existing {
                Some(x) if applied.as_ref() == Some(&file) => out.push(x),
                _ => {
                    out.push(self.ports.agents.upsert(a.clone(), author, self.now()).await?);
                    self.ports.settings.put(&key, file).await?;
                }
            }
        }
        let key = Key::LiveFileApplied("factory").id();
        let file = FactorySettings { global_daily_cap: self.config.global_daily_cap, gates: self.config.policy.gates.clone() };
        let file_v = serde_json::to_value(&file).unwrap_or_default();
        let applied: Option<FactorySettings> = self.ports.settings.get(&key).await?.and_then(|v| serde_json::from_value(v).ok());
        if applied.as_ref() != Some(&file) {
            // Only what the file changed since it was last applied wins; a gate the operator
            // added in the window survives an unrelated edit of the file.
            let mut now = self.factory_settings().await?;
            match &applied {
                None => now = file.clone(),
                Some(old) => {
                    if old.global_daily_cap != file.global_daily_cap {
                        now.global_daily_cap = file.global_daily_cap;
                    }
                    for (class, gate) in &file.gates {
                        if old.gates.get(class) != Some(gate) {
                            now.gates.insert(class.clone(), *gate);
                        }
                    }
                    for class in old.gates.keys().filter(|c| !file.gates.contains_key(*c)) {
                        now.gates.remove(class);
                    }
                }
            }
            self.ports.settings.put(&FACTORY_KEY.id(), serde_json::to_value(&now).unwrap_or_default()).await?;
            self.ports.settings.put(&key, file_v).await?;
        }
        self.live_cache.clear();
        self.sync_pipelines().await?;
        Ok(out)
    }

    /// Changes an agent's prompt, model, tier, caps or concurrency: a new revision, audited.
    pub async fn edit_agent(&self, config: AgentConfig, who: &str, reason: Option<&str>) -> StoreResult<Agent> {
        if self.config.agent(&config.name).is_none() {
            return Err(invalid(format!("{:?} is not a configured agent", config.name)));
        }
        validate_agent(&config)?;
        let before = self.live().await?.agent(&config.name).cloned();
        let agent = self.ports.agents.upsert(config.clone(), who, self.now()).await?;
        self.live_cache.clear();
        if before.as_ref() != Some(&config) {
            self.audit(
                who,
                "agent.edit",
                &format!("agent:{}", config.name),
                serde_json::to_value(&before).unwrap_or_default(),
                serde_json::to_value(&config).unwrap_or_default(),
                reason,
            )
            .await?;
            self.event("agent.revised", who, Some(&format!("agent:{}", config.name)), serde_json::json!({"revision": agent.revision}))
                .await?;
        }
        Ok(agent)
    }

    /// Puts an agent back to an earlier revision's settings, as a new revision (history is never
    /// rewritten).
    pub async fn rollback_agent(&self, name: &str, revision: u32, who: &str) -> StoreResult<Agent> {
        let revs = self.ports.agents.revisions(name).await?;
        let Some(r) = revs.into_iter().find(|r| r.revision == revision) else {
            return Err(StoreError::NotFound { what: format!("revision {revision} of agent {name:?}") });
        };
        self.edit_agent(r.config, who, Some(&format!("rollback to revision {revision}"))).await
    }

    /// Sets the factory-wide daily cap (every day from now on; `reef cap` overrides one day).
    pub async fn set_global_cap(&self, cap: Usd, who: &str) -> StoreResult<()> {
        if cap.0 < 0 || cap > Usd::from_dollars(1_000_000.0) {
            return Err(invalid(format!("{cap} is not a daily cap between $0 and $1,000,000")));
        }
        let mut s = self.factory_settings().await?;
        let old = s.global_daily_cap;
        s.global_daily_cap = cap;
        self.put_factory_settings(&s).await?;
        self.audit(who, "cap.set", "global", serde_json::json!(old), serde_json::json!(cap), None).await?;
        self.event("cap.set", who, Some("global"), serde_json::json!({"cap": cap})).await
    }

    /// Sets the gate of one action class; `None` removes the class from the policy (it then
    /// waits for approval, like every class the policy does not name). Lowering the gate of a
    /// class a person decides (approve_before, never_auto) needs `confirmed`: one stray click
    /// must not make production deploys automatic.
    pub async fn set_gate(&self, class: &str, gate: Option<Gate>, who: &str, confirmed: bool) -> StoreResult<()> {
        validate_class(class)?;
        let mut s = self.factory_settings().await?;
        let old = s.gates.get(class).copied();
        let (was, will) = (gate_of(&s.gates, Some(class)), gate.unwrap_or(Gate::UNLISTED));
        let lowers = was.is_guarded() && will.strictness() < was.strictness();
        if lowers && !confirmed {
            return Err(StoreError::NeedsConfirmation(format!(
                "{class} is {} now; {} lets agents do it with less asking — confirm to lower it",
                was.as_str(),
                match gate {
                    Some(g) => format!("setting it to {}", g.as_str()),
                    None => "removing it (it then waits for approval, as every unlisted class does)".to_string(),
                }
            )));
        }
        match gate {
            Some(g) => s.gates.insert(class.to_string(), g),
            None => s.gates.remove(class),
        };
        self.put_factory_settings(&s).await?;
        let reason = lowers.then_some("lowered a guarded gate; the operator confirmed");
        self.audit(who, "policy.set", class, serde_json::json!(old), serde_json::json!(gate), reason).await?;
        self.event("policy.set", who, Some(class), serde_json::json!({"gate": gate, "was": was, "effective": will, "lowered": lowers}))
            .await
    }

    async fn put_factory_settings(&self, s: &FactorySettings) -> StoreResult<()> {
        self.ports.settings.put(&FACTORY_KEY.id(), serde_json::to_value(s).unwrap_or_default()).await?;
        self.live_cache.clear();
        Ok(())
    }
}
