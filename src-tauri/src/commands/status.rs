//! The overview's numbers.

use crate::dto::*;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use tauri::State;

#[tauri::command]
#[specta::specta]
pub async fn status(state: State<'_, AppState>) -> AppResult<StatusDto> {
    let f = state.factory()?;
    let r = f.status().await?;
    Ok(StatusDto {
        store: r.store.to_string(),
        remote: matches!(r.store, reef_core::StoreKind::Mongo(_)),
        timezone: r.timezone,
        operator: f.config.operator.clone(),
        tasks: r.tasks.iter().map(|(s, n)| CountDto { status: *s, count: *n as u32 }).collect(),
        caps_today: r
            .caps_today
            .iter()
            .map(|c| CapDto {
                scope: c.scope.clone(),
                cap_usd: c.cap.dollars(),
                spent_usd: c.spent.dollars(),
                reserved_usd: c.reserved.dollars(),
            })
            .collect(),
        pending_approvals: r.pending_approvals as u32,
        dispatcher: r.dispatcher,
        malformed: r.malformed.iter().map(Into::into).collect(),
    })
}

/// What needs the operator now: holds, waiting decisions, failures since the last
/// acknowledgement, and each cap with today's pace (the status strip and sidebar badges).
#[tauri::command]
#[specta::specta]
pub async fn attention(state: State<'_, AppState>) -> AppResult<AttentionDto> {
    let f = state.factory()?;
    Ok((&f.attention().await?).into())
}

/// Running work: agent, since when, last output line, cost so far.
#[tauri::command]
#[specta::specta]
pub async fn running_work(state: State<'_, AppState>) -> AppResult<Vec<RunningDto>> {
    let f = state.factory()?;
    Ok(f.running_work().await?.iter().map(Into::into).collect())
}

/// What each of these tasks has cost so far (the rows the task list shows).
#[tauri::command]
#[specta::specta]
pub async fn task_costs(state: State<'_, AppState>, ids: Vec<String>) -> AppResult<Vec<TaskCostDto>> {
    let f = state.factory()?;
    Ok(f.task_costs(&ids).await?.into_iter().map(|(id, c)| TaskCostDto { id, cost_usd: c.dollars() }).collect())
}

/// The palette's search: tasks, agents, products and approvals whose name, title or id holds `text`.
#[tauri::command]
#[specta::specta]
pub async fn search(state: State<'_, AppState>, text: String) -> AppResult<Vec<HitDto>> {
    let f = state.factory()?;
    Ok(f.search(&text, 8).await?.into_iter().map(|h| HitDto { kind: h.kind, id: h.id, title: h.title, detail: h.detail }).collect())
}

/// Opens an http(s) link (a preview, a pull request) in the operator's browser — the program
/// `REEF_OPEN_WITH` names, else the desktop's (`xdg-open`, `open`) — given the URL as one
/// argument, never through a shell; the window itself never navigates away from REEF.
#[tauri::command]
#[specta::specta]
pub async fn open_external(url: String) -> AppResult<()> {
    let ok_url = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 4096
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok_url {
        return Err(AppError::invalid(format!("{:?} is not an http(s) link REEF opens", url.chars().take(80).collect::<String>())));
    }
    let program = std::env::var("REEF_OPEN_WITH")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| if cfg!(target_os = "macos") { "open" } else { "xdg-open" }.to_string());
    let mut child = std::process::Command::new(&program)
        .arg(&url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| AppError::invalid(format!("could not start {program} to open the link: {e}")))?;
    // Reaped off the async runtime: the browser may outlive the call.
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// The operator has seen the alerts so far (audited).
#[tauri::command]
#[specta::specta]
pub async fn acknowledge_alerts(state: State<'_, AppState>) -> AppResult<()> {
    let f = state.factory()?;
    Ok(f.acknowledge_alerts(&state.operator()?).await?)
}

/// Whether this app runs the engine, another process does, or this is a remote window.
#[tauri::command]
#[specta::specta]
pub async fn engine_status(state: State<'_, AppState>) -> AppResult<crate::engine::EngineDto> {
    state.factory()?;
    Ok(state
        .engine
        .lock()
        .ok()
        .and_then(|e| e.clone())
        .unwrap_or(crate::engine::EngineDto { mode: crate::engine::EngineMode::Off, detail: "starting".into() }))
}

/// Quits REEF (the window asked the operator first when the engine runs here).
#[tauri::command]
#[specta::specta]
pub async fn quit_app(app: tauri::AppHandle) -> AppResult<()> {
    app.exit(0);
    Ok(())
}

/// The store's connection as last announced; none while the store has not yet answered (or
/// failed): the window then says it is connecting, never that it is connected.
#[tauri::command]
#[specta::specta]
pub async fn store_status(state: State<'_, AppState>) -> AppResult<Option<crate::bridge::StoreStatus>> {
    Ok(state.store.lock().ok().and_then(|s| s.clone()))
}

/// The window calls this once it has drawn its first view: the cold-start figure
/// `scripts/bench-app.sh` reports (written to REEF_BENCH_PAINT_FILE when set).
#[tauri::command]
#[specta::specta]
pub async fn first_paint() -> AppResult<u32> {
    let ms = crate::started().elapsed().as_millis() as u32;
    tracing::info!(ms, "first paint");
    if let Some(p) = std::env::var_os("REEF_BENCH_PAINT_FILE") {
        let _ = std::fs::write(p, ms.to_string());
    }
    Ok(ms)
}
