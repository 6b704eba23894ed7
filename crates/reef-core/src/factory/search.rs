//! Search across the factory for the window's palette (Ctrl+K): tasks by title or id, agents,
//! products and approval requests. (Memories and events have searches of their own, which the
//! palette asks alongside.)
//!
//! Invariant: bounded — at most [`MAX_HITS`] per kind, each read limited in the store.

use super::Factory;
use crate::*;
use serde::Serialize;

/// Hits per kind at most.
pub const MAX_HITS: usize = 20;
/// The longest text searched for.
pub const MAX_QUERY: usize = 200;

#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HitKind {
    Task,
    Agent,
    Product,
    Approval,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub kind: HitKind,
    pub id: String,
    pub title: String,
    /// A line of context: a task's state and agent, an approval's class.
    pub detail: String,
}

impl Factory {
    /// Everything whose name, title or id holds `text` (case-insensitive), tasks first.
    pub async fn search(&self, text: &str, per_kind: usize) -> StoreResult<Vec<Hit>> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(vec![]);
        }
        if text.len() > MAX_QUERY {
            return Err(StoreError::Invalid(format!("a search of {} bytes; at most {MAX_QUERY}", text.len())));
        }
        let per_kind = per_kind.clamp(1, MAX_HITS);
        let needle = text.to_lowercase();
        let has = |s: &str| s.to_lowercase().contains(&needle);
        let mut hits = vec![];
        let q = TaskQuery { text: Some(text.to_string()), limit: Some(per_kind), ..Default::default() };
        for t in self.ports.tasks.list(&q).await?.items {
            let detail = format!("{} · {}", t.status, t.assigned_to.as_deref().unwrap_or("unrouted"));
            hits.push(Hit { kind: HitKind::Task, id: t.id, title: t.title, detail });
        }
        let live = self.live().await?;
        for a in live.agents.iter().filter(|a| has(&a.name) || has(&a.role)).take(per_kind) {
            hits.push(Hit { kind: HitKind::Agent, id: a.name.clone(), title: a.name.clone(), detail: a.role.clone() });
        }
        for p in self.ports.revenue.products().await?.items.into_iter().filter(|p| has(&p.id) || has(&p.name)).take(per_kind) {
            hits.push(Hit { kind: HitKind::Product, id: p.id.clone(), title: p.name.clone(), detail: p.id });
        }
        let approvals = self.ports.approvals.list(None, 500).await?.items;
        for a in approvals.into_iter().filter(|a| has(&a.summary) || has(&a.action_class) || has(&a.id)).take(per_kind) {
            let detail = format!("{} · {}", a.action_class, a.status.as_str());
            hits.push(Hit { kind: HitKind::Approval, id: a.id, title: a.summary, detail });
        }
        Ok(hits)
    }
}
