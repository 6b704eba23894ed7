//! Agents: status, caps, holds, and their settings with revisions and rollback.

use crate::dto::*;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use reef_core::factory::Hold;
use tauri::State;

#[tauri::command]
#[specta::specta]
pub async fn list_agents(state: State<'_, AppState>) -> AppResult<Vec<AgentDto>> {
    let f = state.factory()?;
    let stored = f.ports.agents.list().await?.items;
    let live = f.live().await?;
    let mut out = vec![];
    for a in &live.agents {
        let s = stored.iter().find(|x| x.id == a.name);
        let hold = f.hold_of(Some(&a.name)).await?;
        out.push(AgentDto {
            name: a.name.clone(),
            role: a.role.clone(),
            capabilities: a.capabilities.clone(),
            status: s.map(|s| s.status).unwrap_or(reef_core::AgentStatus::Offline),
            heartbeat_at: s.and_then(|s| s.heartbeat_at.as_ref()).map(reef_core::time::fmt_ts),
            current_task: s.and_then(|s| s.current_task.clone()),
            daily_cap_usd: a.daily_cap_usd.dollars(),
            tier: a.model_tier,
            revision: s.map(|s| s.revision).unwrap_or(0),
            hold,
        });
    }
    Ok(out)
}

/// `hold` null resumes; `agent` null for the whole factory.
#[tauri::command]
#[specta::specta]
pub async fn set_agent_hold(state: State<'_, AppState>, agent: Option<String>, hold: Option<Hold>) -> AppResult<()> {
    let f = state.factory()?;
    Ok(f.set_hold(agent.as_deref(), hold, &f.operator(), Some("from the desktop app")).await?)
}

/// Success rate, cost and latency per agent × tier × task type over the last `days` days, from
/// each attempt's outcome event (the same figures `reef analytics` prints).
#[tauri::command]
#[specta::specta]
pub async fn agent_outcomes(state: State<'_, AppState>, days: u32) -> AppResult<Vec<OutcomeDto>> {
    let f = state.factory()?;
    let rows = reef_core::engine::analytics::outcomes(f, days.clamp(1, 365)).await?;
    Ok(rows
        .into_iter()
        .map(|r| OutcomeDto {
            success_rate: r.success_rate(),
            agent: r.agent,
            tier: r.tier,
            task_type: r.task_type,
            attempts: r.attempts,
            successes: r.successes,
            cost_usd: r.cost.dollars(),
            avg_latency_ms: r.avg_latency_ms as u32,
        })
        .collect())
}

/// An agent's settings in force and every revision of them, newest first.
#[tauri::command]
#[specta::specta]
pub async fn agent_detail(state: State<'_, AppState>, name: String) -> AppResult<AgentDetailDto> {
    let f = state.factory()?;
    let live = f.live().await?;
    let a = live
        .agent(&name)
        .ok_or_else(|| AppError { code: crate::error::ErrorCode::NotFound, message: format!("{name:?} is not a configured agent") })?;
    let mut revs = f.ports.agents.revisions(&name).await?;
    revs.sort_by_key(|r| std::cmp::Reverse(r.revision));
    Ok(AgentDetailDto {
        config: a.into(),
        revisions: revs
            .iter()
            .map(|r| AgentRevisionDto {
                revision: r.revision,
                author: r.author.clone(),
                at: reef_core::time::fmt_ts(&r.at),
                config: (&r.config).into(),
            })
            .collect(),
        max_prompt_bytes: reef_core::factory::live::MAX_PROMPT_BYTES as u32,
        agent_tools: reef_core::domain::agent::all_agent_tools().map(String::from).collect(),
    })
}

/// Saves an agent's edited settings as a new revision (audited); returns the revision number.
#[tauri::command]
#[specta::specta]
pub async fn edit_agent(state: State<'_, AppState>, config: AgentConfigDto, reason: Option<String>) -> AppResult<u32> {
    let f = state.factory()?;
    let c = config.into_config().map_err(AppError::invalid)?;
    let reason = reason.filter(|r| !r.trim().is_empty());
    Ok(f.edit_agent(c, &state.operator()?, reason.as_deref()).await?.revision)
}

/// Puts an agent back to an earlier revision's settings, as a new revision.
#[tauri::command]
#[specta::specta]
pub async fn rollback_agent(state: State<'_, AppState>, name: String, revision: u32) -> AppResult<u32> {
    let f = state.factory()?;
    Ok(f.rollback_agent(&name, revision, &state.operator()?).await?.revision)
}
