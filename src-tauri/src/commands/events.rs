//! The event feed, searchable.

use crate::dto::*;
use crate::error::AppResult;
use crate::state::AppState;
use reef_core::EventQuery;
use tauri::State;

#[tauri::command]
#[specta::specta]
pub async fn recent_events(
    state: State<'_, AppState>,
    kind: Option<String>,
    subject: Option<String>,
    text: Option<String>,
    limit: u32,
) -> AppResult<Vec<EventDto>> {
    let f = state.factory()?;
    let q = EventQuery {
        kind_prefix: kind.filter(|k| !k.is_empty()),
        subject,
        text: text.filter(|t| !t.is_empty()),
        limit: limit.clamp(1, 5000) as usize,
        ..Default::default()
    };
    Ok(f.ports.events.recent(&q).await?.items.iter().map(Into::into).collect())
}
