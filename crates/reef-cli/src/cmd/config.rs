//! `reef config export | path`.

use super::Out;
use clap::Subcommand;
use reef_core::config::Config;

#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Print the effective configuration as TOML, with every secret removed.
    Export,
    /// Print where the config file is read from.
    Path,
}

pub fn run(cmd: ConfigCmd, cfg: &Config, out: &Out) -> anyhow::Result<()> {
    match cmd {
        ConfigCmd::Export => {
            let text = cfg.export_redacted();
            out.print(&serde_json::json!({"toml": text}), || text.clone());
        }
        ConfigCmd::Path => {
            let p = crate::setup::config_path(None).map(|p| p.display().to_string()).unwrap_or_default();
            out.print(&serde_json::json!({"path": p}), || p.clone());
        }
    }
    Ok(())
}
