//! Commands by area. Each takes the state, calls core, maps errors; nothing else.

pub mod agents;
pub mod approvals;
pub mod delivery;
pub mod doctor;
pub mod events;
pub mod hardware;
pub mod knowledge;
pub mod outbox;
pub mod schedules;
pub mod settings;
pub mod spend;
pub mod status;
pub mod tasks;
