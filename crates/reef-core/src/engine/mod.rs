//! The engine: what turns queued tasks into done work — routing, the approval gate, prices for
//! budget reservations, executors, workers and the dispatcher.

pub mod budget;
pub mod cli;
pub mod control;
pub mod dispatcher;
pub mod exec;
pub mod llm;
pub mod policy;
pub mod pricing;
pub mod relay;
pub mod routing;
pub mod runtime;
pub mod worker;

/// Why a long-running engine loop ended.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] crate::StoreError),
    #[error("engine stopped: {0}")]
    Stopped(String),
}
pub mod analytics;
pub mod schedule;
