//! The approvals inbox.

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
