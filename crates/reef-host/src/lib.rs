//! reef-host: what every REEF host (the `reef` CLI, the desktop app) does around the core —
//! find and read the config with the environment's and the keyring's secrets, open the store,
//! build the engine, and start its loops. Hosts above this crate only parse, call and map errors.

pub mod bridge;
pub mod egress;
pub mod engine;
pub mod executors;
pub mod http;
pub mod loops;
pub mod meter;
pub mod setup;
pub mod vault;

pub use engine::{build_engine, mcp_launch};
pub use setup::{config_path, embedder, host_name, litellm_config_path, load_config, open_factory, HostError};

/// A listening Unix socket only this user can use.
pub struct PrivateSocket {
    pub listener: tokio::net::UnixListener,
    pub file: SocketFile,
}

/// A socket's file, removed when this is dropped (when the loop serving it ends).
pub struct SocketFile(pub std::path::PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Listens on `path`: its directory 0700, the socket 0600, a stale socket of a killed process of
/// the same id removed first.
pub fn bind_private(path: &std::path::Path) -> Result<PrivateSocket, String> {
    use std::os::unix::fs::PermissionsExt;
    let fail = |e: std::io::Error| format!("cannot listen on {}: {e}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path).map_err(fail)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    Ok(PrivateSocket { listener, file: SocketFile(path.to_path_buf()) })
}
