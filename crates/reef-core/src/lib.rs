//! reef-core: REEF's domain model, the ports its stores implement, and the engines built on them.
//! It knows no host and no store: Tauri, MongoDB and SQLite live in other crates.
//!
//! Layers, each importing only from those before it (checked by `tests/it/layers.rs`; the map is
//! in `docs/architecture.md`):
//! 0. leaves — `time`, `money`, `error`, `secret`, `signature`, `embed`
//! 1. model — `domain`, `ports`, `rules` (policy, routing, prices, schedule arithmetic, webhook
//!    subscriptions), `settings` (the settings collection's keys), `books`, `memory`
//! 2. `config`
//! 3. `factory` — the operations (change + audit + event), live settings, controls, waits
//! 4. services — `toolbox`, `engine`, `links`, `stripe`, `sampler`

// 0. leaves
pub mod embed;
pub mod error;
pub mod money;
pub mod secret;
pub mod signature;
pub mod time;
// 1. model
pub mod books;
pub mod domain;
pub mod memory;
pub mod ports;
pub mod rules;
pub mod settings;
// 2.
pub mod config;
// 3.
pub mod factory;
// 4. services
pub mod engine;
pub mod links;
pub mod sampler;
pub mod stripe;
pub mod toolbox;

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
