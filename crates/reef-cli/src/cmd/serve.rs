//! `reef serve`: the headless engine — dispatcher and/or workers — until Ctrl-C or SIGTERM.

use super::Out;
use reef_core::factory::Factory;
use reef_host::loops;
use std::path::Path;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Dispatcher and workers (default).
    Both,
    Dispatcher,
    Worker,
}

impl From<Role> for loops::Role {
    fn from(r: Role) -> Self {
        match r {
            Role::Both => loops::Role::Both,
            Role::Dispatcher => loops::Role::Dispatcher,
            Role::Worker => loops::Role::Worker,
        }
    }
}

pub async fn run(f: &Factory, role: Role, config_file: Option<&Path>, out: &Out) -> anyhow::Result<()> {
    let engine = reef_host::build_engine(f, config_file)?;
    let shutdown = CancellationToken::new();
    let http: loops::HttpServer =
        Box::new(|f, addr, s| Box::pin(async move { crate::http::run(f, addr, s).await.map_err(|e| format!("{e:#}")) }));
    let mut started =
        loops::spawn(f, engine.clone(), role.into(), Some(http), reef_mcp::socket::server(), reef_host::host_name(), shutdown.clone());
    if !out.json {
        eprintln!("reef serve ({role:?}) as {} on {}; gateway {}. Ctrl-C stops cleanly.", engine.id, f.ports.kind, f.config.llm_base_url);
        eprintln!("sandbox: {}", engine.containment.describe());
        for (which, why) in started.left_out() {
            tracing::info!(loop_ = which.label(), reason = why, "not started");
        }
    }
    let tasks = &mut started.tasks;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stopped_by_signal = tokio::select! {
        _ = tokio::signal::ctrl_c() => true,
        _ = term.recv() => true,
        r = tasks.join_next() => {
            // A loop ended on its own: an error worth stopping for.
            if let Some(Ok(Err(e))) = r { shutdown.cancel(); while tasks.join_next().await.is_some() {} return Err(e.into()); }
            false
        }
    };
    shutdown.cancel();
    while let Some(r) = tasks.join_next().await {
        if let Ok(Err(e)) = r {
            tracing::warn!(error = %e, "engine loop ended with an error during shutdown");
        }
    }
    if stopped_by_signal && !out.json {
        eprintln!("reef serve stopped; running tasks went back to pending");
    }
    Ok(())
}
