//! Commands by area. Each takes the state, calls core, maps errors; nothing else.

pub mod agents;
pub mod approvals;
pub mod events;
pub mod insight;
pub mod settings;
pub mod status;
pub mod tasks;
