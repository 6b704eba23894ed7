//! `reef webhooks`: the subscriptions, what each is owed, and the delivery log.

use super::Out;
use reef_core::engine::relay;
use reef_core::factory::Factory;

/// `reef webhooks --redeliver EVENT --to SUB`: one more delivery of one dead letter, now.
pub async fn redeliver(f: &Factory, sub: &str, event: &str, out: &Out) -> anyhow::Result<()> {
    relay::redeliver(f, sub, event, &f.operator()).await?;
    out.print(&serde_json::json!({"redelivered": event, "to": sub}), || format!("{event} delivered to {sub}"));
    Ok(())
}

pub async fn run(f: &Factory, limit: usize, out: &Out) -> anyhow::Result<()> {
    let subs = relay::status(f).await?;
    let deliveries = relay::deliveries(f, limit).await?;
    out.print(&serde_json::json!({"subscriptions": subs, "deliveries": deliveries}), || {
        let mut s = String::new();
        if subs.is_empty() {
            s.push_str("No webhooks configured ([[webhooks]] in the config file).\n");
        }
        for x in &subs {
            s.push_str(&format!(
                "{:<16} → {:<28} {:<9} pending {:<4} {}\n    events: {}\n",
                x.name,
                x.host,
                x.template,
                x.pending,
                x.last_error.as_ref().map(|e| format!("failing ({} tries): {e}", x.failures)).unwrap_or_else(|| "ok".into()),
                x.events.join(", ")
            ));
            if !x.dead_letters.is_empty() {
                s.push_str(&format!(
                    "    dead letters (refused {} times; `reef webhooks --redeliver EVENT --to {}`): {}\n",
                    relay::MAX_REFUSALS,
                    x.name,
                    x.dead_letters
                        .iter()
                        .map(|d| format!("{} ({})", d.event, if d.kind.is_empty() { "?" } else { &d.kind }))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        if !deliveries.is_empty() {
            s.push_str("\nDeliveries, newest first:\n");
        }
        for d in &deliveries {
            s.push_str(&format!(
                "{}  {:<14} {:<22} try {:<3} {} ({})\n",
                d.at,
                d.subscription,
                d.kind,
                d.attempt,
                if d.ok { "delivered" } else { "failed" },
                d.detail
            ));
        }
        s
    });
    Ok(())
}
