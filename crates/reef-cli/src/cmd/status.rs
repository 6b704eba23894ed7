//! `reef status`: which store, tasks per state, today's spend against each cap, and how CLI
//! agents are contained on this machine.

use super::Out;
use reef_core::factory::Factory;

pub async fn run(f: &Factory, out: &Out) -> anyhow::Result<()> {
    let r = f.status().await?;
    let c = reef_core::engine::sandbox::Containment::detect(&f.config.sandbox, &f.config.data_dir);
    let sandbox = serde_json::json!({
        "mode": c.mode,
        "usable": c.mode == reef_core::config::SandboxMode::Off || c.bwrap.is_ok(),
        "network": c.network,
        "work_dir": c.work_dir,
        "detail": c.describe(),
    });
    let mut doc = serde_json::to_value(&r)?;
    doc["sandbox"] = sandbox;
    out.print(&doc, || {
        let mut s = format!("store     {}\ntimezone  {}\n\ntasks\n", r.store, r.timezone);
        let total: u64 = r.tasks.iter().map(|(_, n)| n).sum();
        for (st, n) in &r.tasks {
            s.push_str(&format!("  {:<18} {n:>7}\n", st.as_str()));
        }
        s.push_str(&format!("  {:<18} {total:>7}\n\nspend today\n", "total"));
        for c in &r.caps_today {
            let pct = if c.cap.0 > 0 { 100.0 * (c.spent.0 + c.reserved.0) as f64 / c.cap.0 as f64 } else { 0.0 };
            let bar_len = ((pct / 5.0).round() as usize).min(20);
            s.push_str(&format!(
                "  {:<34} {:>9} of {:>8}  [{:<20}] {:>5.1}%{}\n",
                c.scope,
                c.spent.to_string(),
                c.cap.to_string(),
                "#".repeat(bar_len),
                pct,
                if c.reserved.0 > 0 { format!("  ({} reserved)", c.reserved) } else { String::new() }
            ));
        }
        s.push_str(&format!("\npending approvals  {}\n", r.pending_approvals));
        s.push_str(&format!("dispatcher         {}\n", r.dispatcher.as_deref().unwrap_or("none active (start `reef serve`)")));
        s.push_str(&format!("sandbox            {}\n", c.describe()));
        s
    });
    Ok(())
}
