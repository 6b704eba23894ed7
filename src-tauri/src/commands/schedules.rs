//! Schedules: their next runs and state; pause, resume, run now.

use crate::dto::*;
use crate::error::AppResult;
use crate::state::AppState;
use reef_core::factory::schedules;
use reef_core::*;
use tauri::State;

#[tauri::command]
#[specta::specta]
pub async fn list_schedules(state: State<'_, AppState>) -> AppResult<Vec<ScheduleDto>> {
    let f = state.factory()?;
    let mut out = vec![];
    for s in &f.config.schedules {
        let st = schedules::state(f, &s.section.name).await?;
        out.push(ScheduleDto {
            name: s.section.name.clone(),
            cron: s.section.cron.clone(),
            title: s.section.title.clone(),
            agent: s.section.agent.clone(),
            next_run: s.next_slot(f.config.timezone, f.now()).map(|t| time::fmt_ts(&t)),
            last_slot: st.last_slot.map(|t| time::fmt_ts(&t)),
            paused: st.paused,
            overlap: s.overlap,
        });
    }
    Ok(out)
}

#[tauri::command]
#[specta::specta]
pub async fn schedule_action(state: State<'_, AppState>, name: String, action: ScheduleActionDto) -> AppResult<()> {
    let f = state.factory()?;
    let who = f.operator();
    match action {
        ScheduleActionDto::Pause => f.pause_schedule(&name, true, &who).await?,
        ScheduleActionDto::Resume => f.pause_schedule(&name, false, &who).await?,
        ScheduleActionDto::Run => {
            f.run_schedule_now(&name, &who).await?;
        }
    }
    Ok(())
}
