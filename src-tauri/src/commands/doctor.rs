//! `reef doctor` from the window: the configured store examined and REEF's guarantees proven on a
//! scratch store beside it; the report is remembered per store on this machine, so Settings shows
//! it and the window offers doctor for a MongoDB it has never checked.

use crate::dto::*;
use crate::error::AppResult;
use crate::state::AppState;
use tauri::State;

/// Runs doctor on the configured store. Beside a server that already holds a factory it writes
/// nothing unless `allow_scratch` (the operator's answer to the question it returns first).
#[tauri::command]
#[specta::specta]
pub async fn run_doctor(state: State<'_, AppState>, allow_scratch: bool) -> AppResult<DoctorRunDto> {
    let f = state.factory()?;
    let mut asked = None;
    let consent = |question: &str| {
        asked = Some(question.to_string());
        allow_scratch
    };
    let ran = reef_store::doctor::run(&f.config.store, f.clock.as_ref(), consent).await;
    if let (Some(question), false) = (asked, allow_scratch) {
        return Ok(DoctorRunDto { report: None, consent: Some(question) });
    }
    let report = ran?;
    reef_store::doctor::remember(&f.config.data_dir, &report)?;
    Ok(DoctorRunDto { report: Some(report.into()), consent: None })
}
