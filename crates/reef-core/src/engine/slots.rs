//! Concurrency slots and cap holds: an agent's running tasks are held as leases in the store (so
//! limits hold across processes and machines), and an agent held at a cap waits until the period
//! ends or the refused amount fits again.

use super::runtime::Engine;
use crate::*;

/// A concurrency slot held for one running task.
pub(super) struct Slot {
    names: Vec<String>,
    holder: String,
}

impl Slot {
    pub(super) async fn release(&self, e: &Engine) {
        for n in &self.names {
            let _ = e.factory.ports.leases.release(n, &self.holder).await;
        }
    }
    pub(super) async fn renew(&self, e: &Engine) -> bool {
        let mut ok = true;
        for n in &self.names {
            ok &= e.factory.ports.leases.acquire(n, &self.holder, e.factory.config.engine.lease, e.factory.now()).await.unwrap_or(false);
        }
        ok
    }
}

pub(super) async fn acquire_slot(e: &Engine, agent: &AgentConfig) -> StoreResult<Option<Slot>> {
    let f = &e.factory;
    let holder = format!("{}:{}", e.id, new_id());
    let mut names = vec![];
    let take = |prefix: String, max: u32| {
        let holder = holder.clone();
        async move {
            for i in 0..max.max(1) {
                let n = format!("{prefix}:{i}");
                if f.ports.leases.acquire(&n, &holder, f.config.engine.lease, f.now()).await? {
                    return Ok::<_, StoreError>(Some(n));
                }
            }
            Ok(None)
        }
    };
    if let Some(max) = f.config.engine.max_running {
        match take("slot:global".into(), max).await? {
            Some(n) => names.push(n),
            None => return Ok(None),
        }
    }
    match take(format!("slot:agent:{}", agent.name), agent.max_concurrent).await? {
        Some(n) => names.push(n),
        None => {
            Slot { names, holder }.release(e).await;
            return Ok(None);
        }
    }
    Ok(Some(Slot { names, holder }))
}

pub(super) fn cap_hold_key(agent: &str) -> String {
    crate::settings::Key::CapHold(agent).id()
}

/// The same kind of scope for the period in force now (e.g. today's instead of yesterday's).
pub(super) fn current_period(f: &crate::factory::Factory, s: &str) -> String {
    f.current_period(s)
}

/// Whether an agent held at a cap may work again: the refusing scope's period ended, or the
/// refused amount now fits (the operator raised the cap, or reservations were released).
pub(super) async fn cap_has_room(e: &Engine, agent: &str) -> StoreResult<bool> {
    let f = &e.factory;
    let Some(hold) = f.ports.settings.get(&cap_hold_key(agent)).await? else { return Ok(true) };
    let scope = hold["scope"].as_str().unwrap_or("").to_string();
    let requested = Usd(hold["requested"].as_i64().unwrap_or(0));
    let room = if current_period(f, &scope) != scope {
        true
    } else {
        let key = ScopeKey(scope.clone());
        let t = f.ports.ledger.totals(std::slice::from_ref(&key)).await?;
        match t.first() {
            None => true,
            Some(t) => {
                // The cap in force now (an edit since the hold counts), else the one recorded.
                let base = f.scopes_for(agent, None, None).await?.into_iter().find(|s| s.scope == key).map(|s| s.cap).unwrap_or(t.cap);
                let cap = f.apply_overrides(vec![ScopeCap { scope: key, cap: base }]).await?[0].cap;
                t.spent + t.reserved + requested <= cap
            }
        }
    };
    if room {
        f.ports.settings.delete(&cap_hold_key(agent)).await?;
        f.ports.agents.heartbeat(agent, AgentStatus::Idle, None, f.now()).await?;
        f.event("agent.cap_cleared", "reef", Some(&format!("agent:{agent}")), serde_json::json!({"scope": scope})).await?;
    }
    Ok(room)
}
