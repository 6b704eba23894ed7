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
