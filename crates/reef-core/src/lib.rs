//! reef-core: REEF's domain model, the ports its stores implement, and the engines built on them.
//! It knows no host and no store: Tauri, MongoDB and SQLite live in other crates.
//!
//! Layers, each importing only from those before it (checked by `tests/it/layers.rs`; the map is
//! in `docs/architecture.md`):
//! 0. leaves — `time`, `money`, `error`, `secret`, `signature`, `embed`, `git`
//! 1. model — `domain`, `ports`, `rules` (policy, routing, prices, schedule arithmetic, webhook
//!    subscriptions), `settings` (the settings collection's keys), `books`, `memory`
//! 2. `config`
//! 3. `factory` — the operations (change + audit + event), live settings, controls, waits
//! 4. services — `toolbox`, `engine`, `links`, `stripe`, `sampler`, `doctor`

// 0. leaves
pub mod embed;
pub mod error;
pub mod git;
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
pub mod doctor;
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

/// Longest id REEF accepts on a task or approval another program wrote.
pub const MAX_ID_BYTES: usize = 128;

/// The collections whose ids REEF checks where documents enter: their ids name work dirs, links,
/// prompts and terminal lines, so a foreign one is quarantined instead of being used.
pub const CHECKED_ID_COLLECTIONS: [&str; 2] = [collections::TASKS, collections::APPROVALS];

/// Whether `id` may name a task or approval: 1 to [`MAX_ID_BYTES`] bytes of ASCII letters,
/// digits and `- _ . : @ +`, not starting with `.` or `-`. REEF's own ids (UUIDs) and MongoDB
/// ObjectIds pass; a `/`, `..`, a control or non-ASCII character, or a huge id does not, and the
/// reason says which byte was wrong.
pub fn check_id(id: &str) -> Result<(), String> {
    const RULE: &str = "ids are 1 to 128 ASCII letters, digits and - _ . : @ +, not starting with . or -";
    if id.is_empty() {
        return Err(format!("the id is empty ({RULE})"));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!("the id is {} bytes long ({RULE})", id.len()));
    }
    if id.starts_with(['.', '-']) {
        return Err(format!("the id {id:?} starts with {:?} ({RULE})", &id[..1]));
    }
    match id.char_indices().find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@' | '+'))) {
        Some((at, c)) => Err(format!("the id {id:?} has {c:?} at byte {at} ({RULE})")),
        None => Ok(()),
    }
}
