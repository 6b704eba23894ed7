//! `Engine`: what the dispatcher and workers share — the factory, the executors, the budget and
//! this process's identity.

use super::budget::Budget;
use super::cli::CliExecutor;
use super::exec::Executor;
use crate::factory::Factory;
use crate::Task;
use std::path::PathBuf;
use std::sync::Arc;

pub struct Engine {
    pub factory: Factory,
    pub budget: Budget,
    pub llm: Arc<dyn Executor>,
    pub cli: Vec<Arc<CliExecutor>>,
    /// `host:pid:random`: names this process in leases and logs.
    pub id: String,
    /// Where task working directories and child pidfiles live.
    pub data_dir: PathBuf,
}

impl Engine {
    pub fn children_dir(&self) -> PathBuf {
        self.data_dir.join("children")
    }

    pub fn workdir(&self, task: &Task) -> PathBuf {
        self.data_dir.join("work").join(&task.id)
    }

    /// A CLI executor configured for the task's type, else the LLM executor.
    pub fn executor_for(&self, task: &Task) -> Arc<dyn Executor> {
        task.kind
            .as_deref()
            .and_then(|k| self.cli.iter().find(|c| c.cfg.kinds.iter().any(|x| x == k)))
            .map(|c| c.clone() as Arc<dyn Executor>)
            .unwrap_or_else(|| self.llm.clone())
    }
}
