//! reef-core: REEF's domain model, the ports its stores implement, and the engines built on them.
//! It knows no host and no store: Tauri, MongoDB and SQLite live in other crates.

pub mod books;
pub mod config;
pub mod domain;
pub mod embed;
pub mod engine;
pub mod error;
pub mod factory;
pub mod links;
pub mod live;
pub mod memory;
pub mod money;
pub mod ports;
pub mod sampler;
pub mod stripe;
pub mod time;
pub mod toolbox;
pub mod webhook;

pub use domain::agent::*;
pub use domain::approval::*;
pub use domain::event::*;
pub use domain::knowledge::*;
pub use domain::ledger::*;
pub use domain::revenue::*;
pub use domain::task::*;
pub use domain::telemetry::*;
pub use error::{ErrorCode, StoreError, StoreResult};
pub use money::Usd;
pub use ports::*;
pub use time::{Clock, ManualClock, SystemClock, Timestamp};

/// A new unique id: UUID v7, so ids sort roughly by creation time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
