//! The approvals inbox, with the agents' questions waiting for an answer.

use crate::dto::*;
use crate::error::AppResult;
use crate::state::AppState;
use reef_core::*;
use tauri::State;

#[tauri::command]
#[specta::specta]
pub async fn list_approvals(state: State<'_, AppState>, pending_only: bool) -> AppResult<Vec<ApprovalDto>> {
    let f = state.factory()?;
    let l = f.ports.approvals.list(pending_only.then_some(ApprovalStatus::Pending), 500).await?;
    Ok(l.items.iter().map(Into::into).collect())
}

#[tauri::command]
#[specta::specta]
pub async fn decide_approval(
    state: State<'_, AppState>,
    id: String,
    decision: DecisionDto,
    reason: Option<String>,
) -> AppResult<ApprovalDto> {
    let f = state.factory()?;
    let d = match decision {
        DecisionDto::Approve => Decision::Approve,
        DecisionDto::Reject => Decision::Reject,
        DecisionDto::Revise => Decision::Revise,
    };
    let a = f.decide(&id, d, &state.operator()?, reason.as_deref().filter(|r| !r.trim().is_empty())).await?;
    Ok((&a).into())
}

#[tauri::command]
#[specta::specta]
pub async fn list_questions(state: State<'_, AppState>) -> AppResult<Vec<QuestionDto>> {
    let f = state.factory()?;
    Ok(f.open_questions(500).await?.iter().map(Into::into).collect())
}

#[tauri::command]
#[specta::specta]
pub async fn answer_question(state: State<'_, AppState>, task_id: String, answer: String) -> AppResult<()> {
    let f = state.factory()?;
    f.answer(&task_id, &state.operator()?, &answer).await?;
    Ok(())
}

/// The evidence behind one request: the task, its thread, the agent's output, cost, the raw request.
#[tauri::command]
#[specta::specta]
pub async fn approval_evidence(state: State<'_, AppState>, id: String) -> AppResult<EvidenceDto> {
    let f = state.factory()?;
    Ok((&f.evidence(&id).await?).into())
}
