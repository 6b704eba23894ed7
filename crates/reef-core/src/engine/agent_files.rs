//! What a CLI agent is handed as files — its MCP config (holding its task token) and, when its
//! command asks, its prompt — and where they appear inside its sandbox.
//!
//! Invariant: each is written 0600 into a 0700 directory of REEF's, bound read-only into the
//! sandbox under `/run/reef`, and removed when the attempt ends.

use super::exec::Job;
use super::sandbox;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How a CLI agent reaches REEF's MCP tools for its task: `reef mcp --connect` (the `command`,
/// bound read-only into the sandbox) carrying its stdio session over the host's socket with the
/// task's token. Nothing in it names the config, the data dir or the store.
#[derive(Debug, Clone)]
pub struct McpLaunch {
    pub command: PathBuf,
    /// The host's MCP socket (`reef_mcp::socket`), served while the engine runs.
    pub socket: PathBuf,
    /// Where the per-attempt MCP config files go (0600, removed when the attempt ends).
    pub dir: PathBuf,
}

/// Where REEF's socket and an attempt's MCP config appear inside a sandbox.
pub(crate) fn inside(name: &str) -> PathBuf {
    Path::new(sandbox::INSIDE_RUN).join(name)
}

impl McpLaunch {
    /// The config file a job's agent is pointed at, on the host.
    pub fn config_path(&self, job: &Job) -> PathBuf {
        self.dir.join(format!("{}-{}.json", sandbox::dir_name(&job.task.id), job.attempt))
    }

    /// Writes the MCP config (Claude Code's `mcpServers` shape; Codex reads the same fields
    /// through `-c mcp_servers.reef...`) holding the task's token, readable by this user only.
    /// `contained`: the paths in it are the ones the agent sees inside its sandbox.
    pub(crate) fn write(&self, job: &Job, token: &str, contained: bool) -> std::io::Result<PathBuf> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(&self.dir)?;
        let (command, socket) = if contained { (inside("reef"), inside("mcp.sock")) } else { (self.command.clone(), self.socket.clone()) };
        let doc = serde_json::json!({"mcpServers": {"reef": {
            "type": "stdio",
            "command": command,
            "args": ["mcp", "--connect", socket],
            "env": {"REEF_MCP_TOKEN": token},
        }}});
        let path = self.config_path(job);
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
        f.write_all(serde_json::to_string_pretty(&doc).unwrap_or_default().as_bytes())?;
        Ok(path)
    }

    /// Removes config files older than `age`, left by attempts of a REEF that was killed (their
    /// tokens have expired by then; another engine's live attempts are younger).
    pub fn sweep(&self, age: Duration) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else { return };
        for e in rd.flatten() {
            let old = e.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).is_some_and(|el| el > age);
            if old {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// A file only this user can read (0600), in a 0700 directory.
pub(crate) fn write_private(p: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = p.parent() {
        private_dir(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(p)?;
    f.write_all(bytes)
}

/// A directory only this user can enter (0700), created if missing.
pub(crate) fn private_dir(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(p)?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700))
}
