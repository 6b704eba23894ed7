//! `reef serve`: the headless engine — dispatcher and/or workers — until Ctrl-C or SIGTERM.

use super::Out;
use anyhow::Context;
use reef_core::config::Config;
use reef_core::engine::budget::Budget;
use reef_core::engine::cli::CliExecutor;
use reef_core::engine::llm::LlmExecutor;
use reef_core::engine::pricing::PriceBook;
use reef_core::engine::runtime::Engine;
use reef_core::engine::{dispatcher, worker};
use reef_core::factory::Factory;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Dispatcher and workers (default).
    Both,
    Dispatcher,
    Worker,
}

/// Where the LiteLLM config with the model prices is: the configured path, else beside the
/// config file, else in the working directory.
pub fn litellm_config_path(cfg: &Config, config_file: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = &cfg.engine.litellm_config {
        anyhow::ensure!(p.exists(), "engine.litellm_config {} does not exist", p.display());
        return Ok(p.clone());
    }
    let candidates: Vec<PathBuf> = config_file
        .and_then(|c| c.parent())
        .map(|d| d.join("litellm-config.yaml"))
        .into_iter()
        .chain([PathBuf::from("litellm-config.yaml")])
        .collect();
    candidates.iter().find(|p| p.exists()).cloned().with_context(|| {
        format!(
            "no litellm-config.yaml found (looked at {}); REEF needs its model prices to reserve budget (fix: set engine.litellm_config)",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    })
}

pub fn build_engine(f: &Factory, config_file: Option<&Path>) -> anyhow::Result<Arc<Engine>> {
    let path = litellm_config_path(&f.config, config_file)?;
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let prices = PriceBook::from_litellm_yaml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let budget = Budget { factory: f.clone(), prices: Arc::new(prices) };
    let llm = Arc::new(LlmExecutor::new(
        &f.config.llm_base_url,
        f.config.llm_api_key.clone(),
        budget.clone(),
        f.config.engine.llm_max_tokens,
        Duration::from_secs(600),
    ));
    let data_dir = f.config.data_dir.clone();
    let cli =
        f.config.executors.iter().map(|x| Arc::new(CliExecutor::new(x.clone(), Some(budget.clone()), data_dir.join("children")))).collect();
    let id = format!("{}:{}:{}", crate::setup::host_name(), std::process::id(), &reef_core::new_id()[24..]);
    // Memories are found with the embedder that made them: hashing for now (the demo's); the
    // model-backed embedders replace it through the same port.
    let embedder: Option<Arc<dyn reef_core::embed::Embedder>> =
        Some(Arc::new(reef_core::embed::HashingEmbedder { dim: crate::cmd::demo::DEMO_DIM }));
    Ok(Arc::new(Engine { factory: f.clone(), budget, llm, cli, id, data_dir, embedder }))
}

pub async fn run(f: &Factory, role: Role, config_file: Option<&Path>, out: &Out) -> anyhow::Result<()> {
    let engine = build_engine(f, config_file)?;
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
