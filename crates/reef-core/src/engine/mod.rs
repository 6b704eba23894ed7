//! The engine: what turns queued tasks into done work — the dispatcher, workers, budgets around
//! every LLM call, the executors (REEF's own LLM call and agent loop, CLI agents), the webhook relay and
//! housekeeping (retention).

pub mod agent_files;
pub mod agent_loop;
pub mod analytics;
pub mod budget;
pub mod children;
pub mod cli_agent;
mod cli_spend;
pub mod delivery;
pub mod dispatcher;
pub mod exec;
pub mod housekeeping;
pub mod llm;
pub mod meter;
pub mod relay;
mod review;
pub mod runtime;
pub mod sandbox;
mod slots;
pub mod wire;
pub mod worker;
pub mod workspace;

/// Why a long-running engine loop ended.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] crate::StoreError),
    #[error("engine stopped: {0}")]
    Stopped(String),
}
