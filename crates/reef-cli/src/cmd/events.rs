//! `reef events`: the event feed, newest first, searchable.

use super::Out;
use reef_core::factory::Factory;
use reef_core::EventQuery;

pub async fn run(
    f: &Factory,
    kind: Option<String>,
    subject: Option<String>,
    text: Option<String>,
    limit: usize,
    out: &Out,
) -> anyhow::Result<()> {
    let l = f.ports.events.recent(&EventQuery { kind_prefix: kind, subject, text, limit, ..Default::default() }).await?;
    out.print(&serde_json::json!({"events": l.items, "malformed": l.malformed}), || {
        let mut s = String::new();
        for e in &l.items {
            s.push_str(&format!(
                "{}  {:<24} {:<22} {}  {}\n",
                reef_core::time::fmt_ts(&e.at),
                e.kind,
                e.actor,
                e.subject.as_deref().map(super::short).unwrap_or("-"),
                if e.data.is_null() { String::new() } else { e.data.to_string() }
            ));
        }
        if l.items.is_empty() {
            s.push_str("(no events)\n");
        }
        s
    });
    Ok(())
}

/// `reef audit`: who did what, newest first (operators, agents, MCP calls and refusals).
pub async fn audit(f: &Factory, subject: Option<String>, action: Option<String>, limit: usize, out: &Out) -> anyhow::Result<()> {
    // Filtered by action after the read: the log is read newest first, so ask for more.
    let want = if action.is_some() { limit.saturating_mul(20).max(1000) } else { limit };
    let l = f.ports.audit.list(subject.as_deref(), want).await?;
    let items: Vec<_> = l.items.into_iter().filter(|a| action.as_deref().is_none_or(|p| a.action.starts_with(p))).take(limit).collect();
    out.print(&serde_json::json!({"audit": items, "malformed": l.malformed}), || {
        let mut s = String::new();
        for a in &items {
            s.push_str(&format!(
                "{}  {:<28} {:<30} {}{}\n",
                reef_core::time::fmt_ts(&a.at),
                a.action,
                a.actor,
                super::short(&a.subject),
                a.reason.as_deref().map(|r| format!("  ({r})")).unwrap_or_default()
            ));
        }
        if items.is_empty() {
            s.push_str("(nothing audited)\n");
        }
        s
    });
    Ok(())
}
