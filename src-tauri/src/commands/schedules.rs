//! Schedules: the file's and the window's, their next and last runs; create, edit, delete,
//! pause, resume, run now, and a cron expression's next runs as it is typed.

use crate::dto::*;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use reef_core::factory::schedules;
use reef_core::rules::schedule::{Overlap, Schedule, ScheduleSection};
use reef_core::*;
use tauri::State;

#[tauri::command]
#[specta::specta]
pub async fn list_schedules(state: State<'_, AppState>) -> AppResult<Vec<ScheduleDto>> {
    let f = state.factory()?;
    let mut out = vec![];
    for (s, source) in f.schedules_with_source().await? {
        let st = schedules::state(f, &s.section.name).await?;
        let runs = f.schedule_runs(&s.section.name, 8).await?;
        out.push(ScheduleDto {
            name: s.section.name.clone(),
            cron: s.section.cron.clone(),
            title: s.section.title.clone(),
            description: s.section.description.clone(),
            agent: s.section.agent.clone(),
            kind: s.section.kind.clone(),
            action_class: s.section.action_class.clone(),
            next_run: s.next_slot(f.config.timezone, f.now()).map(|t| time::fmt_ts(&t)),
            last_slot: st.last_slot.map(|t| time::fmt_ts(&t)),
            paused: st.paused,
            overlap: s.overlap,
            source,
            runs: runs
                .into_iter()
                .map(|r| ScheduleRunDto { at: time::fmt_ts(&r.at), kind: r.kind, task_id: r.task_id, status: r.status })
                .collect(),
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

/// Creates or replaces a schedule (kept in the store; it wins over the file's of that name).
#[tauri::command]
#[specta::specta]
pub async fn save_schedule(state: State<'_, AppState>, schedule: ScheduleInputDto) -> AppResult<()> {
    let f = state.factory()?;
    let s = schedule;
    let section = ScheduleSection {
        description: s.description,
        agent: s.agent.filter(|a| !a.is_empty()),
        kind: s.kind.filter(|k| !k.trim().is_empty()),
        action_class: s.action_class.filter(|c| !c.trim().is_empty()),
        overlap: Some(
            match s.overlap {
                Overlap::Skip => "skip",
                Overlap::Allow => "allow",
            }
            .to_string(),
        ),
        ..ScheduleSection::new(s.name.trim(), s.cron.trim(), s.title.trim())
    };
    f.save_schedule(section, &state.operator()?).await?;
    Ok(())
}

#[tauri::command]
#[specta::specta]
pub async fn delete_schedule(state: State<'_, AppState>, name: String) -> AppResult<()> {
    let f = state.factory()?;
    Ok(f.delete_schedule(&name, &state.operator()?).await?)
}

/// The next five runs of a cron expression in the factory's timezone, or what is wrong with it.
#[tauri::command]
#[specta::specta]
pub async fn preview_cron(state: State<'_, AppState>, cron: String) -> AppResult<Vec<String>> {
    let f = state.factory()?;
    let probe = ScheduleSection::new("preview", cron.trim(), "preview");
    let s = Schedule::parse(&probe).map_err(AppError::invalid)?;
    Ok(s.upcoming(f.config.timezone, f.now(), 5).iter().map(time::fmt_ts).collect())
}
