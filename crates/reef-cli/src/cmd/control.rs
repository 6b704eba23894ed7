//! Operator controls: pause / resume / stop, reassign, cancel, retry, cap overrides. Audited.

use super::Out;
use crate::cmd::task::resolve;
use clap::Subcommand;
use reef_core::factory::{CapTarget, Factory, Hold};
use reef_core::*;

#[derive(Subcommand)]
pub enum CapCmd {
    /// Set today's cap for an agent (or `global`) to a new amount; ends with the day.
    Override {
        /// Agent name, or `global`.
        who: String,
        #[arg(long)]
        usd: f64,
        #[arg(long, short = 'r')]
        reason: String,
    },
    /// Set the factory's standing daily cap (every day from now on). Agents' caps: `reef agent edit`.
    Daily {
        #[arg(long)]
        usd: f64,
    },
}

pub async fn hold(f: &Factory, agent: Option<String>, h: Option<Hold>, reason: Option<String>, out: &Out) -> anyhow::Result<()> {
    f.set_hold(agent.as_deref(), h, &f.operator(), reason.as_deref()).await?;
    let what = agent.map(|a| format!("agent {a}")).unwrap_or_else(|| "the factory".into());
    let verb = match h {
        Some(Hold::Pause) => "paused (running work finishes; nothing new starts)",
        Some(Hold::Stop) => "stopped (running work is stopped and goes back to pending)",
        None => "resumed",
    };
    out.print(&serde_json::json!({"target": what, "hold": h}), || format!("{what} {verb}"));
    Ok(())
}

pub async fn reassign(f: &Factory, task: &str, agent: &str, out: &Out) -> anyhow::Result<()> {
    let t = resolve(f, task).await?;
    let n = f.reassign_task(&t.id, agent, &f.operator()).await?;
    out.print(&n, || format!("task {} now assigned to {agent}", n.id));
    Ok(())
}

pub async fn cancel(f: &Factory, task: &str, reason: Option<String>, out: &Out) -> anyhow::Result<()> {
    let t = resolve(f, task).await?;
    let n = f.cancel_task(&t.id, &f.operator(), reason.as_deref()).await?;
    out.print(&n, || format!("task {} cancelled", n.id));
    Ok(())
}

pub async fn retry(f: &Factory, task: &str, out: &Out) -> anyhow::Result<()> {
    let t = resolve(f, task).await?;
    let n = f.retry_task(&t.id, &f.operator()).await?;
    out.print(&n, || format!("task {} back in the queue", n.id));
    Ok(())
}

pub async fn accept(f: &Factory, task: &str, note: Option<String>, out: &Out) -> anyhow::Result<()> {
    let t = resolve(f, task).await?;
    let n = f.accept_task(&t.id, &f.operator(), note.as_deref()).await?;
    let merge = f.change(&n.id).await?.and_then(|c| c.steps.get("merge").cloned());
    out.print(&n, || match &merge {
        Some(m) => format!("task {} accepted; its change goes on to merge task {m}", n.id),
        None => format!("task {} accepted", n.id),
    });
    Ok(())
}

pub async fn cap(f: &Factory, c: CapCmd, out: &Out) -> anyhow::Result<()> {
    match c {
        CapCmd::Daily { usd } => {
            let usd = dollars(usd)?;
            f.set_global_cap(usd, &f.operator()).await?;
            out.print(&serde_json::json!({"scope": "global", "daily_cap": usd}), || format!("the factory's daily cap is now {usd}"));
        }
        CapCmd::Override { who, usd, reason } => {
            let usd = dollars(usd)?;
            let scope = f.override_cap(&CapTarget::parse(&who), usd, &f.operator(), &reason).await?;
            out.print(&serde_json::json!({"scope": scope.0, "cap": usd}), || {
                format!("{} capped at {usd} for the rest of the period", scope.0)
            });
        }
    }
    Ok(())
}

fn dollars(usd: f64) -> anyhow::Result<Usd> {
    anyhow::ensure!(usd.is_finite() && usd >= 0.0, "--usd must be a non-negative amount");
    Ok(Usd::from_dollars(usd))
}
