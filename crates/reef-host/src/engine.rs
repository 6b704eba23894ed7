//! The engine as every host runs it: its shared parts built from config (prices, budget,
//! executors, how CLI agents reach `reef mcp`), for `reef serve` and the desktop app alike.

use crate::setup::{config_path, embedder, host_name, litellm_config_path, HostError};
use reef_core::config::Config;
use reef_core::factory::Factory;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The engine (dispatcher + workers' shared parts) for `f`, as `reef serve` and the app run it.
pub fn build_engine(f: &Factory, config_file: Option<&Path>) -> Result<Arc<reef_core::engine::runtime::Engine>, HostError> {
    use reef_core::engine::{budget::Budget, cli_agent::CliExecutor, llm::LlmExecutor, runtime::Engine};
    use reef_core::rules::pricing::PriceBook;
    let path = litellm_config_path(&f.config, config_file)?;
    let text = std::fs::read_to_string(&path).map_err(|e| HostError::Config(format!("reading {}: {e}", path.display())))?;
    let prices = PriceBook::from_litellm_yaml(&text).map_err(|e| HostError::Config(format!("{}: {e}", path.display())))?;
    let budget = Budget { factory: f.clone(), prices: Arc::new(prices) };
    let llm = Arc::new(LlmExecutor::new(
        &f.config.llm_base_url,
        f.config.llm_api_key.clone(),
        budget.clone(),
        f.config.engine.llm_max_tokens,
        std::time::Duration::from_secs(600),
    ));
    let data_dir = f.config.data_dir.clone();
    let mcp = mcp_launch(&f.config, config_file);
    let cli = f
        .config
        .executors
        .iter()
        .map(|x| Arc::new(CliExecutor::new(x.clone(), Some(budget.clone()), data_dir.join("children")).with_mcp(mcp.clone())))
        .collect();
    let id = format!("{}:{}:{}", host_name(), std::process::id(), &reef_core::new_id()[24..]);
    let embedder = Some(embedder(&f.config)?);
    Ok(Arc::new(Engine { factory: f.clone(), budget, llm, cli, id, data_dir, embedder }))
}

/// How CLI agents start `reef mcp` for their task: the `reef` binary (configured, else the one
/// beside this program, else this program itself — `reef-app mcp` serves the same tools) and what
/// it needs to open this factory's config and store.
/// Outward secrets (gateway key, Stripe, webhooks, links, operator tokens) are never passed: a
/// task's tool server does not read them.
pub fn mcp_launch(cfg: &Config, config_file: Option<&Path>) -> reef_core::engine::cli_agent::McpLaunch {
    let exe = std::env::current_exe().ok();
    let command = cfg.mcp.command.clone().unwrap_or_else(|| {
        exe.as_ref()
            .map(|e| if e.file_name().is_some_and(|n| n == "reef") { e.clone() } else { e.with_file_name("reef") })
            .filter(|p| p.exists())
            .or(exe.clone())
            .unwrap_or_else(|| PathBuf::from("reef"))
    });
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string();
    let mut env: Vec<(String, String)> =
        ["PATH", "HOME", "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME"]
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
    // REEF_CONFIG / REEF_DATA_DIR are set below as absolute paths; REEF_MCP_* are per attempt.
    let passed = |k: &str| {
        k.starts_with("REEF_")
            && !matches!(k, "REEF_CONFIG" | "REEF_DATA_DIR")
            && !k.starts_with("REEF_MCP_")
            && !reef_core::secret::is_outward_secret(k)
    };
    env.extend(std::env::vars().filter(|(k, _)| passed(k)));
    if let Some(p) = config_path(config_file).filter(|p| p.exists()) {
        env.push(("REEF_CONFIG".into(), abs(&p)));
    }
    env.push(("REEF_DATA_DIR".into(), abs(&cfg.data_dir)));
    reef_core::engine::cli_agent::McpLaunch { command, env, dir: cfg.data_dir.join("mcp") }
}
