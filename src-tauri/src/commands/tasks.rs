//! Tasks: list, show, create, cancel, retry, reassign, comment.

use crate::dto::*;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use reef_core::*;
use tauri::State;

#[tauri::command]
#[specta::specta]
pub async fn list_tasks(
    state: State<'_, AppState>,
    statuses: Vec<String>,
    agent: Option<String>,
    limit: Option<u32>,
) -> AppResult<TaskListDto> {
    let f = state.factory()?;
    let status = if statuses.is_empty() {
        None
    } else {
        Some(statuses.iter().map(|s| s.parse::<TaskStatus>()).collect::<Result<Vec<_>, _>>().map_err(AppError::invalid)?)
    };
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
    let model_tier = task.tier.as_deref().filter(|t| !t.is_empty()).map(str::parse::<ModelTier>).transpose().map_err(AppError::invalid)?;
    let new = NewTask {
        title: task.title,
        description: task.description.unwrap_or_default(),
        priority: task.priority.unwrap_or(0) as i64,
        assigned_to: task.agent.filter(|a| !a.is_empty()),
        kind: task.kind.filter(|k| !k.is_empty()),
        action_class: task.action_class.filter(|a| !a.is_empty()),
        model_tier,
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
    let who = state.operator()?;
    let from: Vec<TaskStatus> = TaskStatus::ALL.into_iter().filter(|s| !s.is_terminal()).collect();
    let t = f.ports.tasks.transition(&id, &from, TaskStatus::Cancelled, Some(&format!("cancelled by {who}")), f.now()).await?;
    f.audit(&who, "task.cancel", &id, serde_json::Value::Null, serde_json::json!("cancelled"), reason.as_deref()).await?;
    f.event("task.cancelled", &who, Some(&id), serde_json::json!({"reason": reason})).await?;
    Ok((&t).into())
}

#[tauri::command]
#[specta::specta]
pub async fn retry_task(state: State<'_, AppState>, id: String) -> AppResult<TaskDto> {
    let f = state.factory()?;
    let who = state.operator()?;
    let from =
        [TaskStatus::Failed, TaskStatus::Cancelled, TaskStatus::NeedsHuman, TaskStatus::Paused, TaskStatus::Backlog, TaskStatus::Review];
    let t = f.ports.tasks.transition(&id, &from, TaskStatus::Pending, None, f.now()).await?;
    f.audit(&who, "task.retry", &id, serde_json::Value::Null, serde_json::json!("pending"), None).await?;
    f.event("task.retried", &who, Some(&id), serde_json::json!({})).await?;
    Ok((&t).into())
}

#[tauri::command]
#[specta::specta]
pub async fn reassign_task(state: State<'_, AppState>, id: String, agent: String) -> AppResult<TaskDto> {
    let f = state.factory()?;
    if f.config.agent(&agent).is_none() {
        return Err(AppError::invalid(format!("{agent:?} is not a configured agent")));
    }
    let who = state.operator()?;
    let t = f.ports.tasks.assign(&id, Some(&agent), f.now()).await?;
    f.audit(&who, "task.reassign", &id, serde_json::Value::Null, serde_json::json!(agent), None).await?;
    f.event("task.reassigned", &who, Some(&id), serde_json::json!({"to": agent})).await?;
    Ok((&t).into())
}

#[tauri::command]
#[specta::specta]
pub async fn comment_task(state: State<'_, AppState>, id: String, body: String) -> AppResult<TaskDto> {
    let f = state.factory()?;
    Ok((&f.comment(&id, &state.operator()?, &body).await?).into())
}
