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

/// Where REEF keeps downloads (models, agent CLIs): `~/.cache/reef` on Linux.
pub fn cache_dir() -> PathBuf {
    dirs().map(|d| d.cache_dir().to_path_buf()).unwrap_or_else(|| PathBuf::from(".reef-cache"))
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
        cache_dir: cache_dir(),
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
    let mut cfg = load_config(explicit)?;
    let ports = reef_store::open(&cfg.store).await?;
    cfg.product_secrets = product_secrets(&ports).await;
    Ok(Factory::new(ports, Arc::new(SystemClock), Arc::new(cfg)))
}

/// The product secrets whose names the store lists (`reef secret set --product`), each from the
/// environment, else the keyring; one that is in neither is left out (`reef secret list` says so).
async fn product_secrets(ports: &reef_core::ports::Ports) -> Vec<(String, reef_core::secret::Secret)> {
    let key = reef_core::settings::Key::ProductSecretNames.id();
    let names: Vec<String> = ports.settings.get(&key).await.ok().flatten().and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
    if names.is_empty() {
        return vec![];
    }
    // The keyring client blocks (for up to its timeout): off the async workers, once for all names.
    tokio::task::spawn_blocking(move || {
        let keyring = KeyringFallback { vault: crate::vault::Vault::os(), broken: std::cell::Cell::new(false) };
        names
            .into_iter()
            .filter(|n| n.starts_with("REEF_PRODUCT_"))
            .filter_map(|n| {
                let v = std::env::var(&n).ok().filter(|v| !v.is_empty()).or_else(|| keyring.get(&n))?;
                Some((n, reef_core::secret::Secret::new(v)))
            })
            .collect()
    })
    .await
    .unwrap_or_default()
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
