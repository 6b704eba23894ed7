//! The delivery loop: a task's change and one file's patch, line comments back to the builder,
//! each product's pipeline (edited as revisions), and a rollback asked for by the operator.

use crate::dto::*;
use crate::error::AppResult;
use crate::state::AppState;
use tauri::State;

/// Bytes of one file's patch sent to the window (the rest is summarised).
const PATCH_MAX: usize = 512 * 1024;

/// A task's change (or, for a merge or deploy step, the change it ships); `None` if it has none.
#[tauri::command]
#[specta::specta]
pub async fn task_change(state: State<'_, AppState>, id: String) -> AppResult<Option<ChangeDto>> {
    let f = state.factory()?;
    if f.change(&id).await?.is_none() {
        return Ok(None);
    }
    Ok(Some((&f.change_view(&id).await?).into()))
}

/// One file's unified patch in a task's change.
#[tauri::command]
#[specta::specta]
pub async fn change_file(state: State<'_, AppState>, id: String, path: String) -> AppResult<PatchDto> {
    let (text, cut) = state.factory()?.change_patch(&id, Some(&path), PATCH_MAX).await?;
    Ok(PatchDto { text, cut })
}

/// A comment on one line of a task's change: it reaches the builder's next attempt.
#[tauri::command]
#[specta::specta]
pub async fn comment_change_line(state: State<'_, AppState>, id: String, file: String, line: u32, body: String) -> AppResult<TaskDto> {
    let f = state.factory()?;
    let task = f.change(&id).await?.map(|c| c.task).unwrap_or(id);
    Ok((&f.comment_line(&task, &file, line as u64, &body, &state.operator()?).await?).into())
}

/// Each product: its pipeline, open changes and where they are, last deploy and health, money.
#[tauri::command]
#[specta::specta]
pub async fn product_pipelines(state: State<'_, AppState>) -> AppResult<Vec<ProductPipelineDto>> {
    Ok(state.factory()?.pipelines().await?.iter().map(Into::into).collect())
}

/// Rolls a product back to the version before its latest deploy (a rollback task the operator approves by asking).
#[tauri::command]
#[specta::specta]
pub async fn rollback_product(state: State<'_, AppState>, product: String) -> AppResult<TaskDto> {
    let f = state.factory()?;
    let who = state.operator()?;
    let Some(target) = f.rollback_target(&product).await? else {
        return Err(crate::error::AppError::invalid(format!("product {product} has no earlier healthy deploy to go back to")));
    };
    Ok((&f.propose_rollback(&product, target, &format!("{who} asked to roll back"), &who, Some(&who)).await?).into())
}

/// A product's pipeline to edit: the table in force, its latest revision and its history.
#[tauri::command]
#[specta::specta]
pub async fn product_pipeline(state: State<'_, AppState>, product: String) -> AppResult<PipelineEditDto> {
    let f = state.factory()?;
    let (text, revision) = f.pipeline_text(&product).await?;
    let exists = f.pipeline(Some(&product)).await?.is_some();
    let revisions = f.pipeline_revisions(&product).await?.iter().rev().map(Into::into).collect();
    Ok(PipelineEditDto { product, exists, revision, text, revisions })
}

/// Saves an edited pipeline as a new revision; `base`: the revision the edit started from.
#[tauri::command]
#[specta::specta]
pub async fn edit_pipeline(state: State<'_, AppState>, product: String, text: String, base: u32, reason: Option<String>) -> AppResult<u32> {
    let f = state.factory()?;
    Ok(f.edit_pipeline(&product, &text, Some(base), &state.operator()?, reason.as_deref()).await?.revision)
}

/// Puts an earlier revision of a product's pipeline back, as a new revision.
#[tauri::command]
#[specta::specta]
pub async fn rollback_pipeline(state: State<'_, AppState>, product: String, revision: u32) -> AppResult<u32> {
    let f = state.factory()?;
    Ok(f.rollback_pipeline(&product, revision, &state.operator()?).await?.revision)
}
