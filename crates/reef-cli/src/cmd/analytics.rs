//! `reef analytics`: success rate, cost and latency per agent × tier × task type.

use super::Out;
use reef_core::engine::analytics::outcomes;
use reef_core::factory::Factory;

pub async fn run(f: &Factory, days: u32, out: &Out) -> anyhow::Result<()> {
    let rows = outcomes(f, days).await?;
    out.print(&rows, || {
        let mut s =
            format!("{:<8} {:<9} {:<14} {:>8} {:>8} {:>10} {:>10}\n", "AGENT", "TIER", "TYPE", "ATTEMPTS", "SUCCESS", "COST", "AVG MS");
        for r in &rows {
            s.push_str(&format!(
                "{:<8} {:<9} {:<14} {:>8} {:>7.0}% {:>10} {:>10}\n",
                r.agent,
                r.tier,
                r.task_type,
                r.attempts,
                100.0 * r.success_rate(),
                r.cost.to_string(),
                r.avg_latency_ms
            ));
        }
        if rows.is_empty() {
            s.push_str("(no finished attempts in this period)\n");
        }
        s
    });
    Ok(())
}
