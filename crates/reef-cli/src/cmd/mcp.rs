//! `reef mcp token`: a task token for an agent REEF did not start.

use reef_core::factory::Factory;
use reef_core::toolbox;

/// `reef mcp token`: a task token for an agent REEF did not start (a long-running one working on
/// a task), attributed to the task's agent unless another is named.
pub async fn issue(f: &Factory, task: &str, agent: Option<String>, hours: u64, out: &super::Out) -> anyhow::Result<()> {
    let t = super::task::resolve(f, task).await?;
    if t.status.is_terminal() {
        anyhow::bail!("task {} is {}: there is nothing left to act on", t.id, t.status);
    }
    let agent = match agent.or(t.assigned_to.clone()) {
        Some(a) if f.live().await?.agent(&a).is_some() => a,
        Some(a) => anyhow::bail!("there is no agent {a:?}"),
        None => anyhow::bail!("task {} has no agent yet: name one with --agent", t.id),
    };
    if !(1..=24 * 30).contains(&hours) {
        anyhow::bail!("--hours {hours} is outside 1..720");
    }
    let token = toolbox::issue_token(f, &t.id, &agent, std::time::Duration::from_secs(hours * 3600)).await?;
    let who = f.operator();
    f.audit(&who, "mcp.token.issue", &t.id, serde_json::Value::Null, serde_json::json!({"agent": agent, "hours": hours}), None).await?;
    out.print(&serde_json::json!({"token": token, "task": t.id, "agent": agent, "hours": hours}), || token.clone());
    Ok(())
}
