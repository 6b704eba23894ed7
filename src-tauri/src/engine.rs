//! Whether this app runs the engine: yes on the server when no other engine (a `reef serve`)
//! holds the dispatcher lease; never in remote mode. The app only starts and stops it.

use reef_core::engine::dispatcher;
use reef_core::factory::Factory;
use reef_host::loops;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// Who runs the engine, as this app sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum EngineMode {
    /// This app runs it.
    Here,
    /// Another process on this store (a `reef serve`) holds the dispatcher lease.
    Elsewhere,
    /// Remote mode: the server runs it; this machine watches and decides.
    Remote,
    /// Nobody here: `detail` says why.
    Off,
}

#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct EngineDto {
    pub mode: EngineMode,
    pub detail: String,
}

pub async fn start(f: &Factory, config_file: Option<&std::path::Path>, shutdown: CancellationToken) -> EngineDto {
    if f.config.remote {
        return EngineDto {
            mode: EngineMode::Remote,
            detail: "Remote mode: this machine watches and decides; the server runs the engine.".into(),
        };
    }
    if let Ok(Some(holder)) = f.ports.leases.holder(dispatcher::LEASE_NAME, f.now()).await {
        return EngineDto { mode: EngineMode::Elsewhere, detail: format!("Another engine is active ({holder}); this app watches it.") };
    }
    match reef_host::build_engine(f, config_file) {
        Ok(e) => {
            let id = e.id.clone();
            let sandbox = e.containment.describe();
            // The same loops as `reef serve`; tokio's JoinSet lives in a task that logs each end.
            let mut started = loops::spawn(f, e, loops::Role::Both, None, reef_mcp::socket::server(), reef_host::host_name(), shutdown);
            let left_out: Vec<String> = started.left_out().map(|(which, why)| format!("{}: {why}", which.label())).collect();
            tauri::async_runtime::spawn(async move {
                while let Some(r) = started.tasks.join_next().await {
                    if let Ok(Err(err)) = r {
                        tracing::error!(error = %err, "in-app engine loop stopped");
                    }
                }
            });
            let mut detail = format!("This app runs the engine ({id}); quitting stops it. Sandbox: {sandbox}.");
            if !left_out.is_empty() {
                detail.push_str(&format!(" Not run here — {}.", left_out.join("; ")));
            }
            EngineDto { mode: EngineMode::Here, detail }
        }
        Err(err) => EngineDto { mode: EngineMode::Off, detail: format!("The engine is not running here: {err}") },
    }
}
