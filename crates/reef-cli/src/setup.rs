//! Turning the environment into a running `Factory`: config file, env overrides, the store.

use anyhow::Context;
use reef_core::config::{Config, Defaults};
use reef_core::factory::Factory;
use reef_core::{StoreError, SystemClock};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("REEF_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

fn dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("dev", "reef", "reef")
}

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

pub fn load_config(explicit: Option<&Path>) -> anyhow::Result<Config> {
    let path = config_path(explicit);
    let text = match &path {
        Some(p) if p.exists() => Some(std::fs::read_to_string(p).with_context(|| format!("reading config file {}", p.display()))?),
        Some(p) if explicit.is_some() => anyhow::bail!("config file {} does not exist", p.display()),
        _ => None,
    };
    let defaults = Defaults {
        data_dir: dirs().map(|d| d.data_dir().to_path_buf()).unwrap_or_else(|| PathBuf::from(".reef")),
        machine_timezone: iana_time_zone::get_timezone().ok(),
        host: host_name(),
    };
    let env = |k: &str| std::env::var(k).ok();
    Config::resolve(text.as_deref(), &env, &defaults).map_err(|e| match &path {
        Some(p) if text.is_some() => anyhow::anyhow!("{e} [file: {}]", p.display()),
        _ => anyhow::anyhow!("{e}"),
    })
}

pub async fn open_factory(explicit: Option<&Path>) -> anyhow::Result<Factory> {
    let cfg = load_config(explicit)?;
    let ports = reef_store::open(&cfg.store).await?;
    Ok(Factory::new(ports, Arc::new(SystemClock), Arc::new(cfg)))
}

/// The `{code, message}` a script can branch on.
pub fn describe(e: &anyhow::Error) -> (String, String) {
    let code = e
        .downcast_ref::<StoreError>()
        .map(|s| serde_json::to_value(s.code()).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default())
        .unwrap_or_else(|| "error".into());
    (code, format!("{e:#}"))
}
