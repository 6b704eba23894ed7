//! What every host (the `reef` CLI, the desktop app) does first: find the config file, read it
//! with the environment's overrides, and open the store it names.

use reef_core::config::{Config, Defaults};
use reef_core::factory::Factory;
use reef_core::SystemClock;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] reef_core::StoreError),
}

fn dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("dev", "reef", "reef")
}

/// The config file: the one given, else `config.toml` in the platform config dir.
pub fn config_path(explicit: Option<&Path>) -> Option<PathBuf> {
    explicit.map(Path::to_path_buf).or_else(|| dirs().map(|d| d.config_dir().join("config.toml")))
}

pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

pub fn load_config(explicit: Option<&Path>) -> Result<Config, HostError> {
    let path = config_path(explicit);
    let text = match &path {
        Some(p) if p.exists() => {
            Some(std::fs::read_to_string(p).map_err(|e| HostError::Config(format!("reading config file {}: {e}", p.display())))?)
        }
        Some(p) if explicit.is_some() => return Err(HostError::Config(format!("config file {} does not exist", p.display()))),
        _ => None,
    };
    let defaults = Defaults {
        data_dir: dirs().map(|d| d.data_dir().to_path_buf()).unwrap_or_else(|| PathBuf::from(".reef")),
        machine_timezone: iana_time_zone::get_timezone().ok(),
        host: host_name(),
        cache_dir: dirs().map(|d| d.cache_dir().to_path_buf()).unwrap_or_else(|| PathBuf::from(".reef-cache")),
    };
    let keyring = KeyringFallback { vault: crate::vault::Vault::os(), broken: std::cell::Cell::new(false) };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty()).or_else(|| keyring.get(k));
    Config::resolve(text.as_deref(), &env, &defaults).map_err(|e| match &path {
        Some(p) if text.is_some() => HostError::Config(format!("{e} [file: {}]", p.display())),
        _ => HostError::Config(e.to_string()),
    })
}

/// Reads a secret REEF may need from the OS keyring when the environment lacks it: its own
/// (vault::KNOWN), webhook and product secrets. The first keyring error (none on this machine,
/// locked) ends the lookups: start-up never waits on it twice.
struct KeyringFallback {
    vault: crate::vault::Vault,
    broken: std::cell::Cell<bool>,
}

impl KeyringFallback {
    fn get(&self, name: &str) -> Option<String> {
        let wanted = crate::vault::KNOWN.iter().any(|(k, _)| *k == name)
            || name.starts_with("REEF_WEBHOOK_")
            || name.starts_with("REEF_PRODUCT_")
            || name.starts_with("REEF_MCP_OPERATOR_");
        if !wanted || self.broken.get() {
            return None;
        }
        match self.vault.get(name) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, "secrets: environment only");
                self.broken.set(true);
                None
            }
        }
    }
}

/// The config and a factory on the store it names.
pub async fn open_factory(explicit: Option<&Path>) -> Result<Factory, HostError> {
    let cfg = load_config(explicit)?;
    let ports = crate::open(&cfg.store).await?;
    Ok(Factory::new(ports, Arc::new(SystemClock), Arc::new(cfg)))
}

/// Where the LiteLLM config with the model prices is: the configured path, else beside the
/// config file, else in the working directory.
pub fn litellm_config_path(cfg: &Config, config_file: Option<&Path>) -> Result<PathBuf, HostError> {
    if let Some(p) = &cfg.engine.litellm_config {
        return if p.exists() {
            Ok(p.clone())
        } else {
            Err(HostError::Config(format!("engine.litellm_config {} does not exist", p.display())))
        };
    }
    let candidates: Vec<PathBuf> = config_file
        .and_then(|c| c.parent())
        .map(|d| d.join("litellm-config.yaml"))
        .into_iter()
        .chain([PathBuf::from("litellm-config.yaml")])
        .collect();
    candidates.iter().find(|p| p.exists()).cloned().ok_or_else(|| {
        HostError::Config(format!(
            "no litellm-config.yaml found (looked at {}); REEF needs its model prices to reserve budget (fix: set engine.litellm_config)",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ))
    })
}

/// The embedder the config names (MiniLM loads on first use, so this is cheap).
pub fn embedder(cfg: &Config) -> Result<Arc<dyn reef_core::embed::Embedder>, HostError> {
    reef_embed::from_config(cfg).map_err(|e| HostError::Config(e.to_string()))
}

/// The engine (dispatcher + workers' shared parts) for `f`, as `reef serve` and the app run it.
pub fn build_engine(f: &Factory, config_file: Option<&Path>) -> Result<Arc<reef_core::engine::runtime::Engine>, HostError> {
    use reef_core::engine::{budget::Budget, cli::CliExecutor, llm::LlmExecutor, pricing::PriceBook, runtime::Engine};
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
pub fn mcp_launch(cfg: &Config, config_file: Option<&Path>) -> reef_core::engine::cli::McpLaunch {
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
            && !reef_core::config::is_outward_secret(k)
    };
    env.extend(std::env::vars().filter(|(k, _)| passed(k)));
    if let Some(p) = config_path(config_file).filter(|p| p.exists()) {
        env.push(("REEF_CONFIG".into(), abs(&p)));
    }
    env.push(("REEF_DATA_DIR".into(), abs(&cfg.data_dir)));
    reef_core::engine::cli::McpLaunch { command, env, dir: cfg.data_dir.join("mcp") }
}
