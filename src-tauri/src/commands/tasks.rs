//! Tasks: list, show, create, cancel, retry, reassign, comment, and an agent loop's trace.

use crate::dto::*;
use crate::error::AppResult;
use crate::state::AppState;
use reef_core::*;
use tauri::State;

#[tauri::command]
#[specta::specta]
pub async fn list_tasks(
    state: State<'_, AppState>,
    statuses: Vec<TaskStatus>,
    agent: Option<String>,
    limit: Option<u32>,
) -> AppResult<TaskListDto> {
    let f = state.factory()?;
    let status = (!statuses.is_empty()).then_some(statuses);
    let l = f.ports.tasks.list(&TaskQuery { status, assigned_to: agent, limit: limit.map(|l| l as usize), ..Default::default() }).await?;
    Ok(TaskListDto { tasks: l.items.iter().map(Into::into).collect(), malformed: l.malformed.iter().map(Into::into).collect() })
}

#[tauri::command]
#[specta::specta]
pub async fn get_task(state: State<'_, AppState>, id: String) -> AppResult<TaskDto> {
    Ok((&state.factory()?.ports.tasks.get(&id).await?).into())
}

#[tauri::command]
#[specta::specta]
pub async fn create_task(state: State<'_, AppState>, task: NewTaskDto) -> AppResult<TaskDto> {
    let f = state.factory()?;
    let new = NewTask {
        title: task.title,
        description: task.description.unwrap_or_default(),
        priority: task.priority.unwrap_or(0) as i64,
        assigned_to: task.agent.filter(|a| !a.is_empty()),
        kind: task.kind.filter(|k| !k.is_empty()),
        action_class: task.action_class.filter(|a| !a.is_empty()),
        model_tier: task.tier,
        product: task.product.filter(|p| !p.is_empty()),
        review: task.review.unwrap_or(false),
        ..Default::default()
    };
    Ok((&f.create_task(new, &state.operator()?).await?).into())
}

#[tauri::command]
#[specta::specta]
pub async fn cancel_task(state: State<'_, AppState>, id: String, reason: Option<String>) -> AppResult<TaskDto> {
    let f = state.factory()?;
    Ok((&f.cancel_task(&id, &f.operator(), reason.as_deref()).await?).into())
}

/// Accepts a task that waits in review (its change, if any, goes on to its merge).
#[tauri::command]
#[specta::specta]
pub async fn accept_task(state: State<'_, AppState>, id: String, note: Option<String>) -> AppResult<TaskDto> {
    let f = state.factory()?;
    Ok((&f.accept_task(&id, &f.operator(), note.as_deref()).await?).into())
}

#[tauri::command]
#[specta::specta]
pub async fn retry_task(state: State<'_, AppState>, id: String) -> AppResult<TaskDto> {
    let f = state.factory()?;
    Ok((&f.retry_task(&id, &f.operator()).await?).into())
}

#[tauri::command]
#[specta::specta]
pub async fn reassign_task(state: State<'_, AppState>, id: String, agent: String) -> AppResult<TaskDto> {
    let f = state.factory()?;
    Ok((&f.reassign_task(&id, &agent, &f.operator()).await?).into())
}

#[tauri::command]
#[specta::specta]
pub async fn comment_task(state: State<'_, AppState>, id: String, body: String) -> AppResult<TaskDto> {
    let f = state.factory()?;
    Ok((&f.comment(&id, &state.operator()?, &body).await?).into())
}

/// The agent loop's steps on a task (oldest first), for the trace view.
#[tauri::command]
#[specta::specta]
pub async fn task_trace(state: State<'_, AppState>, id: String) -> AppResult<Vec<TraceStepDto>> {
    let f = state.factory()?;
    let steps = reef_core::engine::agent_loop::trace::steps(f, &id).await?;
    Ok(steps.into_iter().map(Into::into).collect())
}
