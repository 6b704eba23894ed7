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
    /// Turns a task into a memory query; `None` runs tasks without memories.
    pub embedder: Option<Arc<dyn crate::embed::Embedder>>,
}

impl Engine {
    /// The memories most relevant to a task (its product's first), for the executor's prompt.
    /// A memory index made by another embedder (other dimension) is skipped, with a warning.
    pub async fn memories_for(&self, task: &Task, k: usize) -> Vec<String> {
        let Some(emb) = &self.embedder else { return vec![] };
        let text = format!("{}\n{}", task.title, task.description);
        let Ok(mut v) = emb.embed(&[text]).await else { return vec![] };
        let Some(q) = v.pop() else { return vec![] };
        let m = &self.factory.ports.memory;
        let mut hits = vec![];
        if task.product.is_some() {
            let f = crate::MemoryFilter { product: task.product.clone(), ..Default::default() };
            match m.search(&q, &f, k).await {
                Ok(r) => hits.extend(r.hits),
                Err(e) => {
                    tracing::warn!(error = %e, "memory search for a task failed; running without memories");
                    return vec![];
                }
            }
        }
        if hits.len() < k {
            if let Ok(r) = m.search(&q, &crate::MemoryFilter::default(), k).await {
                for h in r.hits {
                    if hits.len() < k && !hits.iter().any(|x| x.doc.id == h.doc.id) {
                        hits.push(h);
                    }
                }
            }
        }
        // Unrelated text scores near zero; do not hand it to the model as if it mattered.
        hits.into_iter().filter(|h| h.score > 0.1).map(|h| h.doc.content).collect()
    }

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
