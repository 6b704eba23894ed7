//! Turning the environment into a running `Factory`: config file, env overrides, the store.

use reef_core::config::Config;
use reef_core::factory::Factory;
use reef_core::StoreError;
use std::path::Path;

pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("REEF_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

pub use reef_host::config_path;

pub fn load_config(explicit: Option<&Path>) -> anyhow::Result<Config> {
    Ok(reef_host::load_config(explicit)?)
}

pub async fn open_factory(explicit: Option<&Path>) -> anyhow::Result<Factory> {
    Ok(reef_host::open_factory(explicit).await?)
}

/// The `{code, message}` a script can branch on.
pub fn describe(e: &anyhow::Error) -> (String, String) {
    let store = e.downcast_ref::<StoreError>().or_else(|| match e.downcast_ref::<reef_host::HostError>() {
        Some(reef_host::HostError::Store(s)) => Some(s),
        _ => None,
    });
    let code = store
        .map(|s| s.code())
        .or_else(|| e.downcast_ref::<reef_core::memory::MemoryError>().map(|m| m.code()))
        .map(|c| serde_json::to_value(c).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default())
        .or_else(|| match e.downcast_ref::<reef_host::vault::PutError>() {
            Some(reef_host::vault::PutError::Vault(v)) => Some(v.code().to_string()),
            _ => e.downcast_ref::<reef_host::vault::VaultError>().map(|v| v.code().to_string()),
        })
        .unwrap_or_else(|| "error".into());
    (code, format!("{e:#}"))
}
