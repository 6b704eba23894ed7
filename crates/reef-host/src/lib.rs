//! reef-host: what every REEF host (the `reef` CLI, the desktop app) does around the core —
//! find and read the config with the environment's and the keyring's secrets, open the store,
//! build the engine, and start its loops. Hosts above this crate only parse, call and map errors.

pub mod engine;
pub mod loops;
pub mod setup;
pub mod vault;

pub use engine::{build_engine, mcp_launch};
pub use setup::{config_path, embedder, host_name, litellm_config_path, load_config, open_factory, HostError};
