//! The engine: what turns queued tasks into done work — the dispatcher, workers, budgets around
//! every LLM call, the executors (REEF's own LLM call, CLI agents), and the webhook relay.

pub mod agent_files;
pub mod analytics;
pub mod budget;
pub mod children;
pub mod cli_agent;
pub mod dispatcher;
pub mod exec;
pub mod llm;
pub mod relay;
mod review;
pub mod runtime;
pub mod sandbox;
mod slots;
pub mod worker;

/// Why a long-running engine loop ended.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] crate::StoreError),
    #[error("engine stopped: {0}")]
    Stopped(String),
}
