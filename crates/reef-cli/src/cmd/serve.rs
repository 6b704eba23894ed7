//! `reef serve`: the headless engine — dispatcher and/or workers — until Ctrl-C or SIGTERM.

use super::Out;
use reef_core::engine::{dispatcher, worker};
use reef_core::factory::Factory;
use std::path::Path;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Dispatcher and workers (default).
    Both,
    Dispatcher,
    Worker,
}

pub async fn run(f: &Factory, role: Role, config_file: Option<&Path>, out: &Out) -> anyhow::Result<()> {
    let engine = reef_store::host::build_engine(f, config_file)?;
    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    if matches!(role, Role::Both | Role::Dispatcher) {
        let (e, s) = (engine.clone(), shutdown.clone());
        tasks.spawn(async move { dispatcher::run(e, s).await.map_err(anyhow::Error::from) });
    }
    if matches!(role, Role::Both | Role::Worker) {
        let (e, s) = (engine.clone(), shutdown.clone());
        tasks.spawn(async move { worker::run(e, s).await.map_err(anyhow::Error::from) });
    }
    if !f.config.remote {
        let (f2, s) = (f.clone(), shutdown.clone());
        let every = f.config.engine.telemetry_every;
        tasks.spawn(async move { reef_core::sampler::run(f2, reef_store::host::host_name(), every, s).await.map_err(anyhow::Error::from) });
    }
    if let Some(addr) = f.config.listen {
        let (f2, s) = (f.clone(), shutdown.clone());
        tasks.spawn(async move { crate::http::run(f2, addr, s).await });
    }
    if let (Some(key), Some(every)) = (f.config.stripe.api_key.clone(), f.config.stripe.pull_every) {
        if !f.config.remote {
            let pull = reef_core::stripe::StripePull {
                ports: f.ports.clone(),
                api_base: f.config.stripe.api_base.clone(),
                api_key: key,
                http: reqwest::Client::new(),
            };
            let s = shutdown.clone();
            tasks.spawn(async move { pull.run(every, s).await.map_err(anyhow::Error::from) });
        }
    }
    if !f.config.webhooks.is_empty() && !f.config.remote && matches!(role, Role::Both | Role::Dispatcher) {
        let (f2, s) = (f.clone(), shutdown.clone());
        let subs = std::sync::Arc::new(f.config.webhooks.clone());
        let me = format!("{}:webhooks", engine.id);
        let links = reef_core::links::maker(f);
        tasks.spawn(async move { reef_core::engine::relay::run(f2, subs, me, links, s).await.map_err(anyhow::Error::from) });
    }
    if !out.json {
        eprintln!("reef serve ({role:?}) as {} on {}; gateway {}. Ctrl-C stops cleanly.", engine.id, f.ports.kind, f.config.llm_base_url);
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stopped_by_signal = tokio::select! {
        _ = tokio::signal::ctrl_c() => true,
        _ = term.recv() => true,
        r = tasks.join_next() => {
            // A loop ended on its own: an error worth stopping for.
            if let Some(Ok(Err(e))) = r { shutdown.cancel(); while tasks.join_next().await.is_some() {} return Err(e); }
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
