//! reef-app: the desktop shell. It wires reef-core to the window — commands per area, typed
//! with tauri-specta; typed events bridged from the store's watch; tray and notifications — and
//! holds no business logic of its own.

mod bridge;
mod commands;
mod dto;
mod engine;
mod error;
mod notify;
mod state;
mod tray;

pub use bridge::{StoreChanged, StoreStatus};
pub use state::AppState;

use tauri::Manager;
use tauri_specta::{collect_commands, collect_events, Builder};

/// The typed IPC surface: used by the app, and by the test that writes `ui/src/bindings.ts`.
pub fn specta_builder() -> Builder<tauri::Wry> {
    Builder::<tauri::Wry>::new()
        .commands(collect_commands![
            commands::status::status,
            commands::status::attention,
            commands::status::acknowledge_alerts,
            commands::status::running_work,
            commands::status::task_costs,
            commands::status::search,
            commands::status::open_external,
            commands::spend::spend_by_hour,
            commands::schedules::save_schedule,
            commands::schedules::delete_schedule,
            commands::schedules::preview_cron,
            commands::tasks::list_tasks,
            commands::tasks::get_task,
            commands::tasks::create_task,
            commands::tasks::cancel_task,
            commands::tasks::retry_task,
            commands::tasks::accept_task,
            commands::tasks::reassign_task,
            commands::tasks::comment_task,
            commands::tasks::task_trace,
            commands::delivery::task_change,
            commands::delivery::change_file,
            commands::delivery::comment_change_line,
            commands::delivery::product_pipelines,
            commands::delivery::rollback_product,
            commands::delivery::product_pipeline,
            commands::delivery::edit_pipeline,
            commands::delivery::rollback_pipeline,
            commands::approvals::list_approvals,
            commands::approvals::decide_approval,
            commands::approvals::approval_evidence,
            commands::approvals::list_questions,
            commands::approvals::answer_question,
            commands::agents::list_agents,
            commands::agents::set_agent_hold,
            commands::agents::agent_outcomes,
            commands::agents::agent_detail,
            commands::agents::edit_agent,
            commands::agents::rollback_agent,
            commands::events::recent_events,
            commands::status::engine_status,
            commands::status::quit_app,
            commands::status::first_paint,
            commands::status::store_status,
            commands::schedules::list_schedules,
            commands::schedules::schedule_action,
            commands::spend::spend,
            commands::spend::revenue,
            commands::knowledge::search_memory,
            commands::knowledge::list_entities,
            commands::knowledge::traverse,
            commands::hardware::hardware,
            commands::settings::settings,
            commands::settings::set_notification_prefs,
            commands::settings::test_store_uri,
            commands::settings::set_global_cap,
            commands::settings::set_gate,
            commands::settings::secrets,
            commands::settings::set_secret,
            commands::settings::delete_secret,
            commands::settings::save_store_uri,
            commands::outbox::webhooks,
            commands::outbox::redeliver_webhook,
            commands::doctor::run_doctor,
        ])
        .events(collect_events![StoreChanged, StoreStatus, tray::QuitRequested])
        // One type per DTO: the window reads what commands return and sends what they take.
        .disable_serde_phases()
}

static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// When this process started (as near as the app can tell), for the cold-start figure.
pub fn started() -> std::time::Instant {
    *STARTED.get_or_init(std::time::Instant::now)
}

fn mcp_stdio() -> i32 {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    // `reef-app mcp --connect SOCKET`: a contained agent's bridge to the host's socket.
    let args: Vec<String> = std::env::args().collect();
    if args.get(2).map(String::as_str) == Some("--connect") {
        let Some(socket) = args.get(3) else {
            eprintln!("error: --connect needs the socket's path");
            return 2;
        };
        let token = std::env::var("REEF_MCP_TOKEN").unwrap_or_default();
        return match rt.block_on(reef_mcp::socket::connect(std::path::Path::new(socket), &token)) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e:#}");
                1
            }
        };
    }
    let config = std::env::var_os("REEF_CONFIG").map(std::path::PathBuf::from);
    let served = rt.block_on(async {
        let f = reef_host::open_factory(config.as_deref()).await?;
        reef_mcp::stdio(&f).await
    });
    match served {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    }
}

pub fn run() {
    started();
    let filter = tracing_subscriber::EnvFilter::try_from_env("REEF_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    if std::env::args().nth(1).as_deref() == Some("bridge") {
        // `reef-app bridge …`: what runs first in the sandbox of an agent the in-app engine starts.
        let args: Vec<String> = std::env::args().skip(2).collect();
        let code = match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(reef_host::bridge::run(&args)),
            Err(e) => {
                eprintln!("error: cannot start the async runtime: {e}");
                1
            }
        };
        std::process::exit(code);
    }
    if std::env::args().nth(1).as_deref() == Some("mcp") {
        // `reef-app mcp`: the CLI agents the in-app engine starts reach REEF's tools through the
        // app's own binary (no window), so an installed app needs no separate `reef`.
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
        std::process::exit(mcp_stdio());
    }
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
    let builder = specta_builder();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tauri::Builder::default()
        .plugin(tauri_plugin_notification::init())
        .manage(AppState::default())
        .invoke_handler(builder.invoke_handler())
        .on_window_event(|w, e| {
            // Closing the window keeps REEF in the tray; Quit is in the tray's menu.
            if let tauri::WindowEvent::CloseRequested { api, .. } = e {
                let _ = w.hide();
                api.prevent_close();
            }
        })
        .setup(move |app| {
            builder.mount_events(app);
            #[cfg(target_os = "linux")]
            if let Some(w) = app.get_webview_window("main") {
                // One document, no back/forward: WebKit's smallest caches are enough.
                let _ = w.with_webview(|wv| {
                    use webkit2gtk::{WebContextExt, WebViewExt};
                    if let Some(ctx) = wv.inner().context() {
                        ctx.set_cache_model(webkit2gtk::CacheModel::DocumentViewer);
                    }
                });
            }
            if let Err(e) = tray::install(app.handle()) {
                tracing::warn!(error = %e, "no system tray here; REEF runs without one");
            }
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                let config = std::env::var_os("REEF_CONFIG").map(std::path::PathBuf::from);
                // A store that does not answer (the server's MongoDB restarting) may come up: tried
                // again with backoff, the window told each time. A config REEF cannot use is not.
                let mut backoff = std::time::Duration::from_secs(1);
                let f = loop {
                    match reef_host::open_factory(config.as_deref()).await {
                        Ok(f) => break f,
                        Err(e) => {
                            let retrying = matches!(e, reef_host::HostError::Store(_));
                            tracing::error!(error = %e, retrying, "cannot open the store");
                            if let Ok(mut slot) = handle.state::<AppState>().open_error.lock() {
                                *slot = Some(e.to_string());
                            }
                            bridge::announce(&handle, StoreStatus { connected: false, message: e.to_string(), retrying });
                            if !retrying {
                                return;
                            }
                            tokio::select! {
                                _ = stop.cancelled() => return,
                                _ = tokio::time::sleep(backoff) => {}
                            }
                            backoff = (backoff * 2).min(std::time::Duration::from_secs(30));
                        }
                    }
                };
                handle.state::<AppState>().set(f.clone());
                let mode = engine::start(&f, config.as_deref(), stop.clone()).await;
                if let Ok(mut slot) = handle.state::<AppState>().engine.lock() {
                    *slot = Some(mode);
                }
                bridge::run(handle, f, stop).await;
            });
            Ok(())
        })
        .build(tauri::generate_context!())
        .expect("REEF could not start its window")
        .run(move |_app, event| {
            if let tauri::RunEvent::Exit = event {
                shutdown.cancel();
            }
        });
}

#[cfg(test)]
mod tests {
    /// Writes ui/src/bindings.ts from the commands and events; fails when the checked-in file
    /// differed, so CI catches bindings that drifted from the Rust side.
    #[test]
    fn bindings_are_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings.ts");
        let before = std::fs::read_to_string(&path).unwrap_or_default();
        super::specta_builder()
            .export(specta_typescript::Typescript::default().header("// Generated by src-tauri's bindings test. Do not edit.\n"), &path)
            .expect("export bindings");
        let after = std::fs::read_to_string(&path).unwrap();
        assert!(before == after, "ui/src/bindings.ts was out of date and has been regenerated: commit it");
    }
}
