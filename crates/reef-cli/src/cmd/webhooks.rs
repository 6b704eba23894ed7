//! `reef webhooks`: the subscriptions, what each is owed, and the delivery log.

use super::Out;
use reef_core::engine::relay;
use reef_core::factory::Factory;
use reef_core::*;

pub async fn run(f: &Factory, limit: usize, out: &Out) -> anyhow::Result<()> {
    let subs: Vec<serde_json::Value> = relay::status(f).await?.iter().map(|s| serde_json::to_value(s).unwrap_or_default()).collect();
    let log = f.ports.events.recent(&EventQuery { kind_prefix: Some(relay::DELIVERY_KIND.into()), limit, ..Default::default() }).await?;
    let deliveries: Vec<serde_json::Value> = log
        .items
        .iter()
        .map(|e| {
            serde_json::json!({"at": time::fmt_ts(&e.at), "subscription": e.subject, "event": e.data["event"], "kind": e.data["kind"],
                "attempt": e.data["attempt"], "ok": e.data["ok"], "status": e.data["status"], "error": e.data["error"]})
        })
        .collect();
    let doc = serde_json::json!({"subscriptions": subs, "deliveries": deliveries});
    out.print(&doc, || {
        let mut s = String::new();
        if subs.is_empty() {
            s.push_str("No webhooks configured ([[webhooks]] in the config file).\n");
        }
        for x in &subs {
            s.push_str(&format!(
                "{:<16} → {:<28} {:<9} pending {:<4} {}\n    events: {}\n",
                x["name"].as_str().unwrap_or(""),
                x["host"].as_str().unwrap_or(""),
                x["template"].as_str().unwrap_or(""),
                x["pending"],
                x["last_error"].as_str().map(|e| format!("failing ({} tries): {e}", x["failures"])).unwrap_or_else(|| "ok".into()),
                x["events"].as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default()
            ));
        }
        if !deliveries.is_empty() {
            s.push_str("\nDeliveries, newest first:\n");
        }
        for d in &deliveries {
            s.push_str(&format!(
                "{}  {:<14} {:<22} try {:<3} {}\n",
                d["at"].as_str().unwrap_or(""),
                d["subscription"].as_str().unwrap_or(""),
                d["kind"].as_str().unwrap_or(""),
                d["attempt"],
                if d["ok"] == true {
                    format!("delivered (HTTP {})", d["status"])
                } else {
                    format!("failed: {}", d["error"].as_str().unwrap_or(""))
                }
            ));
        }
        s
    });
    Ok(())
}
