//! `reef mcp token`: a task token for an agent REEF did not start.

use reef_core::factory::Factory;
use reef_core::toolbox;

/// `reef mcp token`: a task token for an agent REEF did not start (a long-running one working on
/// a task), attributed to the task's agent unless another is named.
pub async fn issue(f: &Factory, task: &str, agent: Option<String>, hours: u64, out: &super::Out) -> anyhow::Result<()> {
    let t = super::task::resolve(f, task).await?;
    let (token, agent) = toolbox::issue_token_on_request(f, &t, agent, hours, &f.operator()).await?;
    out.print(&serde_json::json!({"token": token, "task": t.id, "agent": agent, "hours": hours}), || token.clone());
    Ok(())
}
