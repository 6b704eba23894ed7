//! Whether this app runs the engine: yes on the server when no other engine (a `reef serve`)
//! holds the dispatcher lease; never in remote mode. The app only starts and stops it.

use reef_core::engine::{dispatcher, worker};
use reef_core::factory::Factory;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Serialize, specta::Type)]
pub struct EngineDto {
    /// "here" (this app runs it), "elsewhere" (another process does), "remote", or "off".
    pub mode: String,
    pub detail: String,
}

pub async fn start(f: &Factory, config_file: Option<&std::path::Path>, shutdown: CancellationToken) -> EngineDto {
    if f.config.remote {
        return EngineDto {
            mode: "remote".into(),
            detail: "Remote mode: this machine watches and decides; the server runs the engine.".into(),
        };
    }
    if let Ok(Some(holder)) = f.ports.leases.holder(dispatcher::LEASE_NAME, f.now()).await {
        return EngineDto { mode: "elsewhere".into(), detail: format!("Another engine is active ({holder}); this app watches it.") };
    }
    match reef_store::host::build_engine(f, config_file) {
        Ok(e) => {
            let id = e.id.clone();
            let (f3, s3, every) = (f.clone(), shutdown.clone(), f.config.engine.telemetry_every);
            tauri::async_runtime::spawn(async move {
                let _ = reef_core::sampler::run(f3, reef_store::host::host_name(), every, s3).await;
            });
            if !f.config.webhooks.is_empty() {
                let (f4, s4, me) = (f.clone(), shutdown.clone(), format!("{id}:webhooks"));
                let subs = std::sync::Arc::new(f.config.webhooks.clone());
                let links = reef_core::links::maker(f);
                tauri::async_runtime::spawn(async move {
                    if let Err(err) = reef_core::engine::relay::run(f4, subs, me, links, s4).await {
                        tracing::error!(error = %err, "in-app webhook relay stopped");
                    }
                });
            }
            let (e2, s2) = (e.clone(), shutdown.clone());
            tauri::async_runtime::spawn(async move {
                if let Err(err) = dispatcher::run(e2, s2).await {
                    tracing::error!(error = %err, "in-app dispatcher stopped");
                }
            });
            tauri::async_runtime::spawn(async move {
                if let Err(err) = worker::run(e, shutdown).await {
                    tracing::error!(error = %err, "in-app workers stopped");
                }
            });
            EngineDto { mode: "here".into(), detail: format!("This app runs the engine ({id}); quitting stops it.") }
        }
        Err(err) => EngineDto { mode: "off".into(), detail: format!("The engine is not running here: {err}") },
    }
}
