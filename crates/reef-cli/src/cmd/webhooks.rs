//! `reef webhooks`: the subscriptions, what each is owed, and the delivery log.

use super::Out;
use reef_core::engine::relay;
use reef_core::factory::Factory;

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
