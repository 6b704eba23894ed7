//! Operator controls: pause / resume / stop, reassign, cancel, retry, cap overrides. Audited.

use super::Out;
use crate::cmd::task::resolve;
use clap::Subcommand;
use reef_core::engine::control::{override_cap, set_hold, Hold};
use reef_core::factory::Factory;
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
    let who = format!("operator:{}", f.config.operator);
    set_hold(f, agent.as_deref(), h, &who, reason.as_deref()).await?;
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
    anyhow::ensure!(f.config.agent(agent).is_some(), "{agent:?} is not a configured agent");
    let t = resolve(f, task).await?;
    let who = format!("operator:{}", f.config.operator);
    let n = f.ports.tasks.assign(&t.id, Some(agent), f.now()).await?;
    f.audit(&who, "task.reassign", &t.id, serde_json::json!(t.assigned_to), serde_json::json!(agent), None).await?;
    f.event("task.reassigned", &who, Some(&t.id), serde_json::json!({"from": t.assigned_to, "to": agent})).await?;
    out.print(&n, || format!("task {} now assigned to {agent}", n.id));
    Ok(())
}

pub async fn cancel(f: &Factory, task: &str, reason: Option<String>, out: &Out) -> anyhow::Result<()> {
    let t = resolve(f, task).await?;
    let who = format!("operator:{}", f.config.operator);
    let from: Vec<TaskStatus> = TaskStatus::ALL.into_iter().filter(|s| !s.is_terminal()).collect();
    let note = format!("cancelled by {who}{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default());
    let n = f.ports.tasks.transition(&t.id, &from, TaskStatus::Cancelled, Some(&note), f.now()).await?;
    f.audit(&who, "task.cancel", &t.id, serde_json::json!(t.status), serde_json::json!("cancelled"), reason.as_deref()).await?;
    f.event("task.cancelled", &who, Some(&t.id), serde_json::json!({"reason": reason})).await?;
    out.print(&n, || format!("task {} cancelled", n.id));
    Ok(())
}

pub async fn retry(f: &Factory, task: &str, out: &Out) -> anyhow::Result<()> {
    let t = resolve(f, task).await?;
    let who = format!("operator:{}", f.config.operator);
    let from =
        [TaskStatus::Failed, TaskStatus::Cancelled, TaskStatus::NeedsHuman, TaskStatus::Paused, TaskStatus::Backlog, TaskStatus::Review];
    let n = f.ports.tasks.transition(&t.id, &from, TaskStatus::Pending, None, f.now()).await?;
    f.audit(&who, "task.retry", &t.id, serde_json::json!(t.status), serde_json::json!("pending"), None).await?;
    f.event("task.retried", &who, Some(&t.id), serde_json::json!({"from": t.status})).await?;
    out.print(&n, || format!("task {} back in the queue", n.id));
    Ok(())
}

pub async fn cap(f: &Factory, c: CapCmd, out: &Out) -> anyhow::Result<()> {
    let (target, usd, reason) = match c {
        CapCmd::Override { who, usd, reason } => (who, usd, reason),
        CapCmd::Daily { usd } => {
            anyhow::ensure!(usd.is_finite(), "--usd must be a number");
            f.set_global_cap(Usd::from_dollars(usd), &format!("operator:{}", f.config.operator)).await?;
            out.print(&serde_json::json!({"scope": "global", "daily_cap": Usd::from_dollars(usd)}), || {
                format!("the factory's daily cap is now {}", Usd::from_dollars(usd))
            });
            return Ok(());
        }
    };
    anyhow::ensure!(usd.is_finite() && usd >= 0.0, "--usd must be a non-negative amount");
    let now = f.now();
    let scope = if target == "global" {
        ScopeKey::global_day(f.config.timezone, now)
    } else {
        anyhow::ensure!(f.config.agent(&target).is_some(), "{target:?} is neither `global` nor a configured agent");
        ScopeKey::agent_day(&target, f.config.timezone, now)
    };
    let who = format!("operator:{}", f.config.operator);
    override_cap(f, &scope, Usd::from_dollars(usd), &who, &reason).await?;
    out.print(&serde_json::json!({"scope": scope.0, "cap": Usd::from_dollars(usd)}), || {
        format!("{} capped at {} for the rest of the period", scope.0, Usd::from_dollars(usd))
    });
    Ok(())
}
