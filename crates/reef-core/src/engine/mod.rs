//! The engine: what turns queued tasks into done work — routing, the approval gate, prices for
//! budget reservations, executors, workers and the dispatcher.

pub mod budget;
pub mod cli;
pub mod exec;
pub mod llm;
pub mod policy;
pub mod pricing;
pub mod routing;
