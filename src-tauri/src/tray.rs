//! The system tray: the pending-approvals count, open the window, decide the newest request,
//! pause or resume the factory. Closing the window keeps REEF running here.

use crate::state::AppState;
use reef_core::factory::Hold;
use reef_core::{ApprovalStatus, Decision};
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager};

pub const TRAY_ID: &str = "reef";

/// The operator asked to quit while this app runs the engine; the window asks to confirm.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, specta::Type, tauri_specta::Event)]
pub struct QuitRequested {
    pub reason: String,
}

pub fn install(app: &AppHandle) -> tauri::Result<()> {
    let item = |id: &str, label: &str| MenuItem::with_id(app, id, label, true, None::<&str>);
    let menu = Menu::with_items(
        app,
        &[
            &item("open", "Open REEF")?,
            &PredefinedMenuItem::separator(app)?,
            &item("approve_newest", "Approve newest request")?,
            &item("reject_newest", "Reject newest request")?,
            &PredefinedMenuItem::separator(app)?,
            &item("pause", "Pause factory")?,
            &item("resume", "Resume factory")?,
            &PredefinedMenuItem::separator(app)?,
            &item("quit", "Quit REEF")?,
        ],
    )?;
    let mut b = TrayIconBuilder::with_id(TRAY_ID).menu(&menu).tooltip("REEF").on_menu_event(|app, ev| on_menu(app, ev.id.as_ref()));
    if let Some(icon) = app.default_window_icon() {
        b = b.icon(icon.clone());
    }
    b.build(app)?;
    Ok(())
}

fn show_window(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

fn on_menu(app: &AppHandle, id: &str) {
    match id {
        "open" => show_window(app),
        "quit" => {
            // Quitting stops an engine that runs here: say so first, in the window.
            let here = app
                .state::<AppState>()
                .engine
                .lock()
                .ok()
                .and_then(|e| e.as_ref().map(|e| e.mode == crate::engine::EngineMode::Here))
                .unwrap_or(false);
            if here {
                show_window(app);
                let _ = tauri_specta::Event::emit(
                    &QuitRequested {
                        reason: "REEF runs the engine in this app; quitting stops it and running tasks go back to the queue.".into(),
                    },
                    app,
                );
            } else {
                app.exit(0);
            }
        }
        other => {
            let (app, other) = (app.clone(), other.to_string());
            tauri::async_runtime::spawn(async move {
                let state = app.state::<AppState>();
                let (Ok(f), Ok(who)) = (state.factory(), state.operator()) else { return };
                let r = match other.as_str() {
                    "pause" => f.set_hold(None, Some(Hold::Pause), &who, Some("from the tray")).await,
                    "resume" => f.set_hold(None, None, &who, Some("from the tray")).await,
                    "approve_newest" | "reject_newest" => match f.ports.approvals.list(Some(ApprovalStatus::Pending), 1).await {
                        Ok(l) => match l.items.first() {
                            Some(a) if other == "approve_newest" => f.decide(&a.id, Decision::Approve, &who, None).await.map(|_| ()),
                            Some(a) => f.decide(&a.id, Decision::Reject, &who, Some("rejected from the tray")).await.map(|_| ()),
                            None => Ok(()),
                        },
                        Err(e) => Err(e),
                    },
                    _ => Ok(()),
                };
                if let Err(e) = r {
                    tracing::warn!(error = %e, action = other, "tray action failed");
                }
            });
        }
    }
}

/// Shows the number of requests waiting, in the tray's label and tooltip.
pub fn set_pending(app: &AppHandle, n: usize) {
    if let Some(t) = app.tray_by_id(TRAY_ID) {
        let text = if n == 0 {
            "REEF — nothing waits for you".to_string()
        } else {
            format!("REEF — {n} approval{} waiting", if n == 1 { "" } else { "s" })
        };
        let _ = t.set_tooltip(Some(&text));
        let _ = t.set_title(if n == 0 { None } else { Some(n.to_string()) });
    }
}
