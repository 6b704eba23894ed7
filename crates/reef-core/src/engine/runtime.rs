//! `Engine`: what the dispatcher and workers share — the factory, the executors, the budget and
//! this process's identity.

use super::budget::Budget;
use super::cli_agent::CliExecutor;
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
    /// Where child pidfiles live.
    pub data_dir: PathBuf,
    /// How this host contains its CLI agents (and where their working directories live).
    pub containment: Arc<super::sandbox::Containment>,
    /// The socket contained agents reach REEF's MCP tools through; served by the host's loops.
    pub mcp_socket: Option<PathBuf>,
    /// The metered LLM endpoint and egress proxy contained agents reach; served by the host's loops.
    pub meter: Option<super::cli_agent::MeterLaunch>,
    /// Turns a task into a memory query; `None` runs tasks without memories.
    pub embedder: Option<Arc<dyn crate::embed::Embedder>>,
}

/// Splits text into chunks of about `max` characters at paragraph, line or word boundaries.
pub fn chunks(text: &str, max: usize) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    for word in text.split_inclusive(char::is_whitespace) {
        if cur.len() + word.len() > max && !cur.trim().is_empty() {
            out.push(cur.trim().to_string());
            cur.clear();
        }
        cur.push_str(word);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// At most this many memories (of ~1,200 characters) are kept of one task's result.
pub const MAX_RESULT_MEMORIES: usize = 8;

impl Engine {
    /// What finished work leaves behind: its result as memories (chunked, with agent, product,
    /// type and task), and the knowledge graph's record of who worked on what.
    pub async fn remember(&self, task: &Task, agent: &str, output: &str) -> crate::StoreResult<usize> {
        let f = &self.factory;
        let now = f.now();
        let mut written = 0;
        if let Some(index) = self.memory_index() {
            let items = chunks(output, 1200)
                .into_iter()
                // The gist, not the whole of it: an agent that prints megabytes must not make REEF
                // embed them all (minutes of CPU, and a shutdown that waits for it).
                .take(MAX_RESULT_MEMORIES)
                .enumerate()
                .map(|(i, text)| crate::memory::NewMemory {
                    id: format!("task:{}:{}:{i}", task.id, task.attempts),
                    content: text,
                    // Research is kept as research, so a search filtered by type finds it.
                    kind: if task.kind.as_deref() == Some("research") { "research" } else { "task_result" }.into(),
                    agent: Some(agent.into()),
                    product: task.product.clone(),
                    created_at: now,
                    metadata: serde_json::json!({"task_id": task.id, "task_type": task.kind, "title": task.title}),
                })
                .collect();
            match index.remember(items).await {
                Ok(n) => written = n,
                Err(crate::memory::MemoryError::Store(e)) => return Err(e),
                // Another embedder's index, or the model failed: the result is kept on the task,
                // and the work is not failed for want of a memory.
                Err(e) => tracing::warn!(task = %task.id, error = %e, "task result not written to memory"),
            }
        }
        let g = &f.ports.graph;
        let agent_id = format!("agent:{agent}");
        g.upsert_entity(crate::Entity {
            id: agent_id.clone(),
            kind: "agent".into(),
            name: agent.into(),
            properties: serde_json::json!({}),
        })
        .await?;
        let task_id = format!("task:{}", task.id);
        g.upsert_entity(crate::Entity {
            id: task_id.clone(),
            kind: "task".into(),
            name: task.title.clone(),
            // Its product, so the graph tool can keep one product's agents out of another's work.
            properties: serde_json::json!({"type": task.kind, "product": task.product}),
        })
        .await?;
        g.relate(crate::Relationship {
            from: agent_id.clone(),
            to: task_id.clone(),
            kind: "completed".into(),
            weight: 1.0,
            created_at: now,
        })
        .await?;
        if let Some(p) = &task.product {
            let product_id = format!("product:{p}");
            g.relate(crate::Relationship {
                from: task_id.clone(),
                to: product_id.clone(),
                kind: "for_product".into(),
                weight: 1.0,
                created_at: now,
            })
            .await?;
            g.relate(crate::Relationship { from: agent_id, to: product_id, kind: "worked_on".into(), weight: 0.5, created_at: now })
                .await?;
        }
        if let Some(repo) = &task.work_products.repository {
            let repo_id = format!("repo:{repo}");
            g.upsert_entity(crate::Entity {
                id: repo_id.clone(),
                kind: "repository".into(),
                name: repo.clone(),
                properties: serde_json::json!({}),
            })
            .await?;
            g.relate(crate::Relationship { from: task_id, to: repo_id, kind: "changed".into(), weight: 1.0, created_at: now }).await?;
        }
        Ok(written)
    }

    /// The memories most relevant to a task (its product's first), for the executor's prompt.
    /// A memory index made by another embedder is skipped, with a warning.
    pub async fn memories_for(&self, task: &Task, k: usize) -> Vec<String> {
        let Some(index) = self.memory_index().filter(|_| k > 0) else { return vec![] };
        let text = format!("{}\n{}", task.title, task.description);
        let q = match index.embed_query(&text).await {
            Ok(q) => q,
            Err(e) => {
                tracing::warn!(error = %e, "memory search for a task failed; running without memories");
                return vec![];
            }
        };
        let mut hits = vec![];
        if task.product.is_some() {
            let f = crate::MemoryFilter { product: task.product.clone(), ..Default::default() };
            match index.search_vector(&q, &f, k).await {
                Ok(r) => hits.extend(r.hits),
                Err(e) => {
                    tracing::warn!(error = %e, "memory search for a task failed; running without memories");
                    return vec![];
                }
            }
        }
        if hits.len() < k {
            if let Ok(r) = index.search_vector(&q, &crate::MemoryFilter::default(), k).await {
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

    fn memory_index(&self) -> Option<crate::memory::MemoryIndex> {
        self.embedder.as_ref().map(|e| crate::memory::MemoryIndex::new(self.factory.ports.clone(), e.clone()))
    }

    pub fn children_dir(&self) -> PathBuf {
        self.data_dir.join("children")
    }

    /// Outside the data dir, the id one safe path component: a foreign id never becomes a path.
    pub fn workdir(&self, task: &Task) -> PathBuf {
        self.containment.workdir(&task.id)
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

#[cfg(test)]
mod tests {
    #[test]
    fn chunks_break_at_words_and_keep_everything() {
        let text = "alpha beta gamma delta ".repeat(100);
        let c = super::chunks(&text, 100);
        assert!(c.iter().all(|p| p.len() <= 100), "{:?}", c.iter().map(|p| p.len()).max());
        assert_eq!(c.join(" ").split_whitespace().count(), 400);
        assert!(super::chunks("   ", 10).is_empty());
    }
}
