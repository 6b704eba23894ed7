//! `reef approve | reject | revise ID --reason …` and `reef approvals`.

use super::{short, Out};
use clap::Args;
use reef_core::factory::Factory;
use reef_core::*;

#[derive(Args)]
pub struct DecideArgs {
    /// The approval id (or a unique ending of it).
    pub id: String,
    /// Why; required to reject or request a revision.
    #[arg(long, short = 'r')]
    pub reason: Option<String>,
}

#[derive(Args)]
pub struct ListArgs {
    /// pending (default), approved, rejected, revision_requested, expired, or all.
    #[arg(long, default_value = "pending")]
    pub status: String,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

fn parse_status(s: &str) -> anyhow::Result<Option<ApprovalStatus>> {
    Ok(Some(match s {
        "all" => return Ok(None),
        "pending" => ApprovalStatus::Pending,
        "approved" => ApprovalStatus::Approved,
        "rejected" => ApprovalStatus::Rejected,
        "revision_requested" => ApprovalStatus::RevisionRequested,
        "expired" => ApprovalStatus::Expired,
        o => anyhow::bail!("--status {o:?} is not one of pending, approved, rejected, revision_requested, expired, all"),
    }))
}

async fn resolve(f: &Factory, id: &str) -> anyhow::Result<String> {
    match f.ports.approvals.get(id).await {
        Ok(a) => return Ok(a.id),
        Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let all = f.ports.approvals.list(None, 100_000).await?;
    let hits: Vec<_> = all.items.into_iter().filter(|a| a.id.ends_with(id) || a.id.starts_with(id)).collect();
    match hits.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => anyhow::bail!("no approval request with id {id:?} (see `reef approvals`)"),
        more => anyhow::bail!("{} approval requests match {id:?}; give more of the id", more.len()),
    }
}

pub async fn decide(f: &Factory, d: Decision, a: DecideArgs, out: &Out) -> anyhow::Result<()> {
    let id = resolve(f, &a.id).await?;
    let who = f.operator();
    let ap = f.decide(&id, d, &who, a.reason.as_deref()).await?;
    out.print(&ap, || format!("{} {} (task {}) as {}", ap.status.as_str(), ap.id, ap.task_id, who));
    Ok(())
}

pub async fn list(f: &Factory, a: ListArgs, out: &Out) -> anyhow::Result<()> {
    let l = f.ports.approvals.list(parse_status(&a.status)?, a.limit).await?;
    out.print(&serde_json::json!({"approvals": l.items, "malformed": l.malformed}), || {
        let mut s = format!("{:<12}  {:<18}  {:<20}  {:<24}  {}\n", "ID", "STATUS", "ACTION", "EXPIRES", "SUMMARY");
        for x in &l.items {
            s.push_str(&format!(
                "{:<12}  {:<18}  {:<20}  {:<24}  {}\n",
                short(&x.id),
                x.status.as_str(),
                x.action_class,
                x.expires_at.map(|e| reef_core::time::fmt_ts(&e)).unwrap_or_else(|| "-".into()),
                x.summary
            ));
        }
        if l.items.is_empty() {
            s.push_str("(none)\n");
        }
        s
    });
    Ok(())
}

/// `reef answer`: the operator's answer to a task's question (MCP `ask_operator`).
pub async fn answer(f: &Factory, task: &str, answer: &str, out: &Out) -> anyhow::Result<()> {
    let t = super::task::resolve(f, task).await?;
    let who = f.operator();
    let t = f.answer(&t.id, &who, answer).await?;
    out.print(&serde_json::json!({"task": t.id, "status": t.status}), || format!("answered {}: back to {} for its agent", t.id, t.status));
    Ok(())
}
