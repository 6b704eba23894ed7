//! `reef status`: what needs the operator, which store, tasks per state, today's spend against
//! each cap with the day's pace, and how CLI agents are contained on this machine.

use super::Out;
use reef_core::factory::Factory;

pub async fn run(f: &Factory, out: &Out) -> anyhow::Result<()> {
    let r = f.status().await?;
    let a = f.attention().await?;
    let tz = f.config.timezone;
    let clock = |t: &reef_core::Timestamp| t.with_timezone(&tz).format("%H:%M").to_string();
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
    doc["attention"] = serde_json::to_value(&a)?;
    out.print(&doc, || {
        let mut s = String::from("needs you\n");
        let mut quiet = true;
        for h in a.hold.iter().chain(&a.held_agents) {
            quiet = false;
            let who = h.agent.as_deref().unwrap_or("the factory");
            let why = h.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
            let by = h.by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
            s.push_str(&format!("  {who} is on {}{by}{why}\n", h.hold));
        }
        for (n, what) in
            [(a.approvals, "approval"), (a.questions, "question"), (a.needs_human, "task handed to you"), (a.failed, "failed task")]
        {
            if n > 0 {
                quiet = false;
                let many = if what == "task handed to you" { "tasks handed to you".to_string() } else { format!("{what}s") };
                s.push_str(&format!("  {n} {}\n", if n == 1 { what.to_string() } else { many }));
            }
        }
        if a.dispatcher.is_none() {
            quiet = false;
            s.push_str("  no engine runs (start `reef serve`, or the app on the server)\n");
        }
        if quiet {
            s.push_str("  nothing\n");
        }
        s.push_str(&format!("\nstore     {}\ntimezone  {}\n\ntasks\n", r.store, r.timezone));
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
        s.push_str(&format!("\npace (last hour; caps roll over at {} {})\n", clock(&a.day_ends), a.timezone));
        for o in &a.spend {
            let who = o.agent.as_deref().unwrap_or("factory");
            let end = match (o.reached, o.cap_at) {
                (true, _) => "cap reached".to_string(),
                (false, Some(t)) => format!("cap reached at ~{}", clock(&t)),
                (false, None) => format!("ends the day at ~{} of {}", o.projected, o.cap),
            };
            s.push_str(&format!("  {who:<12} {:>9}/h  {end}\n", o.per_hour.to_string()));
        }
        s.push_str(&format!("\npending approvals  {}\n", r.pending_approvals));
        s.push_str(&format!("dispatcher         {}\n", r.dispatcher.as_deref().unwrap_or("none active (start `reef serve`)")));
        s.push_str(&format!("sandbox            {}\n", c.describe()));
        s
    });
    Ok(())
}
