//! The factory's domain: the documents REEF keeps and the rules that belong to them alone.

pub mod agent;
pub mod approval;
pub mod change;
pub mod event;
pub mod knowledge;
pub mod ledger;
pub mod revenue;
pub mod task;
pub mod telemetry;
