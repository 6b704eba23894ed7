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
    };
    let env = |k: &str| std::env::var(k).ok();
    Config::resolve(text.as_deref(), &env, &defaults).map_err(|e| match &path {
        Some(p) if text.is_some() => HostError::Config(format!("{e} [file: {}]", p.display())),
        _ => HostError::Config(e.to_string()),
    })
}

/// The config and a factory on the store it names.
pub async fn open_factory(explicit: Option<&Path>) -> Result<Factory, HostError> {
    let cfg = load_config(explicit)?;
    let ports = crate::open(&cfg.store).await?;
    Ok(Factory::new(ports, Arc::new(SystemClock), Arc::new(cfg)))
}
