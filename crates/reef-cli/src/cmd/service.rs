//! `reef service install|uninstall`: a systemd user unit that runs `reef serve` and restarts it
//! after a crash; its logs go to the journal, which rotates them.
//!
//! Invariant: the unit names no secret — only where the config and data are; secrets stay in the
//! environment of the operator's session or the OS keyring.

use super::Out;
use std::path::{Path, PathBuf};

/// Where systemd looks for the operator's own units.
fn unit_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| anyhow::anyhow!("neither XDG_CONFIG_HOME nor HOME is set: cannot place the unit"))?;
    Ok(base.join("systemd/user"))
}

/// The unit text for this `reef` binary, role and config.
pub fn unit(reef: &Path, role: &str, config: Option<&Path>, data_dir: &Path) -> String {
    let mut env = format!("Environment=REEF_DATA_DIR={}\n", data_dir.display());
    if let Some(c) = config {
        env.push_str(&format!("Environment=REEF_CONFIG={}\n", c.display()));
    }
    format!(
        "# Written by `reef service install`. Secrets are not here: REEF reads them from the OS keyring.\n\
         [Unit]\n\
         Description=REEF engine (reef serve --role {role})\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         ExecStart={reef} serve --role {role}\n\
         {env}\
         Environment=REEF_LOG=info\n\
         # After a crash (or a kill), again in 5 s; a clean stop stays stopped.\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         # SIGTERM stops it cleanly: running tasks go back to pending.\n\
         KillSignal=SIGTERM\n\
         TimeoutStopSec=30\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        reef = reef.display(),
    )
}

pub fn install(role: &str, config: Option<&Path>, data_dir: &Path, out: &Out) -> anyhow::Result<()> {
    let reef = std::env::current_exe()?;
    let dir = unit_dir()?;
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("reef.service");
    let config = config.map(|c| std::path::absolute(c).unwrap_or_else(|_| c.to_path_buf()));
    let data_dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    std::fs::write(&path, unit(&reef, role, config.as_deref(), &data_dir))?;
    let next = "systemctl --user daemon-reload && systemctl --user enable --now reef.service";
    out.print(&serde_json::json!({"unit": path, "next": next}), || {
        format!("wrote {}\nstart it now and at every login: {next}\nits log: journalctl --user -u reef.service -f\n(to keep it running after logout: loginctl enable-linger $USER)", path.display())
    });
    Ok(())
}

pub fn uninstall(out: &Out) -> anyhow::Result<()> {
    let path = unit_dir()?.join("reef.service");
    let existed = path.exists();
    if existed {
        std::fs::remove_file(&path)?;
    }
    out.print(&serde_json::json!({"removed": existed, "unit": path}), || {
        if existed {
            format!("removed {} (first: systemctl --user disable --now reef.service)", path.display())
        } else {
            format!("no unit at {}", path.display())
        }
    });
    Ok(())
}
