//! `MemoryIndex`: memory as the factory uses it — text in, text out — over the `Memory` port and
//! one `Embedder`. Invariant: the index has one identity (embedder + dimension), recorded in the
//! store's settings; vectors from any other embedder are refused, so a search never compares
//! vectors from two models. `reembed` is the one way to change it, and it resumes after a crash.

use crate::embed::Embedder;
use crate::{MemoryDoc, MemoryFilter, MemorySearch, Ports, StoreError, Timestamp};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The settings key that holds the index's identity; the stores read its `dimension` too.
/// The settings key of the index's identity.
pub const INDEX_KEY: &str = crate::settings::MEMORY_INDEX;
/// Documents per reembed step: one embedding call and one store write each.
const REEMBED_BATCH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexIdentity {
    pub embedder: String,
    pub dimension: usize,
    /// Set while `reembed` is rewriting the vectors (the embedder being replaced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reembedding_from: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error(
        "the memory index was built with {index} ({index_dim} dimensions) but this process embeds with {embedder} ({dim}); run `reef memory reembed` to switch the index to {embedder}"
    )]
    OtherEmbedder { index: String, index_dim: usize, embedder: String, dim: usize },
    #[error("embedding failed: {0}")]
    Embed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MemoryError {
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            MemoryError::OtherEmbedder { .. } => crate::ErrorCode::DimensionMismatch,
            MemoryError::Embed(_) => crate::ErrorCode::Unavailable,
            MemoryError::Store(e) => e.code(),
        }
    }
}

/// A memory to write: the text and where it came from.
#[derive(Debug, Clone)]
pub struct NewMemory {
    pub id: String,
    pub content: String,
    pub kind: String,
    pub agent: Option<String>,
    pub product: Option<String>,
    pub created_at: Timestamp,
    pub metadata: serde_json::Value,
}

/// Where a reembed stands, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReembedProgress {
    pub done: u64,
    pub total: u64,
    /// Documents already made by the target embedder (a resumed run skips them).
    pub skipped: u64,
}

#[derive(Clone)]
pub struct MemoryIndex {
    pub ports: Ports,
    pub embedder: Arc<dyn Embedder>,
}

impl MemoryIndex {
    pub fn new(ports: Ports, embedder: Arc<dyn Embedder>) -> Self {
        MemoryIndex { ports, embedder }
    }

    fn mine(&self) -> IndexIdentity {
        IndexIdentity { embedder: self.embedder.name().to_string(), dimension: self.embedder.dimension(), reembedding_from: None }
    }

    /// The recorded identity. A store written before identities existed (only the hashing
    /// embedder wrote memories then) is read as hashing with its vectors' dimension.
    pub async fn identity(&self) -> Result<Option<IndexIdentity>, MemoryError> {
        if let Some(v) = self.ports.settings.get(INDEX_KEY).await? {
            return serde_json::from_value(v).map(Some).map_err(|e| {
                MemoryError::Store(StoreError::Malformed { collection: "settings".into(), id: INDEX_KEY.into(), reason: e.to_string() })
            });
        }
        Ok(self.ports.memory.dimension().await?.map(|d| IndexIdentity { embedder: "hashing".into(), dimension: d, reembedding_from: None }))
    }

    /// Checks that this process's embedder is the index's, claiming an empty index for it.
    pub async fn check(&self) -> Result<(), MemoryError> {
        let mine = self.mine();
        match self.identity().await? {
            Some(id) if id.embedder == mine.embedder && id.dimension == mine.dimension => Ok(()),
            Some(id) => Err(MemoryError::OtherEmbedder {
                index: id.embedder,
                index_dim: id.dimension,
                embedder: mine.embedder,
                dim: mine.dimension,
            }),
            None => {
                let v = serde_json::to_value(&mine).map_err(|e| StoreError::Invalid(e.to_string()))?;
                if self.ports.settings.put_if_absent(INDEX_KEY, v).await? {
                    Ok(())
                } else {
                    // Another process claimed it between our read and write: check theirs.
                    Box::pin(self.check()).await
                }
            }
        }
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, MemoryError> {
        let v = self.embedder.embed(texts).await.map_err(MemoryError::Embed)?;
        if v.len() != texts.len() {
            return Err(MemoryError::Embed(format!("{} returned {} vectors for {} texts", self.embedder.name(), v.len(), texts.len())));
        }
        Ok(v)
    }

    /// Embeds and stores memories; returns how many were written.
    pub async fn remember(&self, items: Vec<NewMemory>) -> Result<usize, MemoryError> {
        if items.is_empty() {
            return Ok(0);
        }
        self.check().await?;
        let texts: Vec<String> = items.iter().map(|m| m.content.clone()).collect();
        let vectors = self.embed(&texts).await?;
        let name = self.embedder.name().to_string();
        let mut n = 0;
        for (m, v) in items.into_iter().zip(vectors) {
            let mut metadata = if m.metadata.is_object() { m.metadata } else { serde_json::json!({}) };
            metadata["embedder"] = serde_json::json!(name);
            self.ports
                .memory
                .put(MemoryDoc {
                    id: m.id,
                    content: m.content,
                    kind: m.kind,
                    agent: m.agent,
                    product: m.product,
                    embedding: v,
                    created_at: m.created_at,
                    metadata,
                })
                .await?;
            n += 1;
        }
        Ok(n)
    }

    /// Embeds the query and runs the filtered search.
    pub async fn search(&self, query: &str, filter: &MemoryFilter, k: usize) -> Result<MemorySearch, MemoryError> {
        let q = self.embed_query(query).await?;
        self.search_vector(&q, filter, k).await
    }

    /// The query's vector, after checking the index is this embedder's: embed once, then search
    /// with several filters.
    pub async fn embed_query(&self, query: &str) -> Result<Vec<f32>, MemoryError> {
        if let Some(id) = self.identity().await? {
            let mine = self.mine();
            if id.embedder != mine.embedder || id.dimension != mine.dimension {
                return Err(MemoryError::OtherEmbedder {
                    index: id.embedder,
                    index_dim: id.dimension,
                    embedder: mine.embedder,
                    dim: mine.dimension,
                });
            }
        }
        Ok(self.embed(&[query.to_string()]).await?.pop().unwrap_or_default())
    }

    /// A search with a vector from `embed_query`.
    pub async fn search_vector(&self, q: &[f32], filter: &MemoryFilter, k: usize) -> Result<MemorySearch, MemoryError> {
        Ok(self.ports.memory.search(q, filter, k).await?)
    }

    /// Re-embeds every memory with this process's embedder and makes it the index's identity.
    /// The identity switches first, so processes still on the old embedder stop writing; each
    /// document records its embedder, so a run killed half-way resumes where it stopped.
    pub async fn reembed(&self, mut progress: impl FnMut(ReembedProgress)) -> Result<ReembedProgress, MemoryError> {
        let mine = self.mine();
        let before = self.identity().await?;
        let from = before.as_ref().map(|b| b.reembedding_from.clone().unwrap_or_else(|| b.embedder.clone()));
        let pending = IndexIdentity { reembedding_from: from.filter(|f| *f != mine.embedder), ..mine.clone() };
        let settings = &self.ports.settings;
        settings.put(INDEX_KEY, serde_json::to_value(&pending).map_err(|e| StoreError::Invalid(e.to_string()))?).await?;
        let memory = &self.ports.memory;
        let total = memory.count().await?;
        let mut p = ReembedProgress { done: 0, total, skipped: 0 };
        progress(p);
        let mut after: Option<String> = None;
        loop {
            let page = memory.scan(after.as_deref(), REEMBED_BATCH).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            let todo: Vec<&MemoryDoc> = page
                .iter()
                .filter(|d| {
                    !(d.metadata.get("embedder").and_then(|e| e.as_str()) == Some(mine.embedder.as_str())
                        && d.embedding.len() == mine.dimension)
                })
                .collect();
            p.skipped += (page.len() - todo.len()) as u64;
            if !todo.is_empty() {
                let texts: Vec<String> = todo.iter().map(|d| d.content.clone()).collect();
                let vectors = self.embed(&texts).await?;
                let updates: Vec<(String, Vec<f32>)> = todo.iter().map(|d| d.id.clone()).zip(vectors).collect();
                memory.set_embeddings(updates, &mine.embedder).await?;
            }
            p.done += page.len() as u64;
            progress(p);
        }
        settings.put(INDEX_KEY, serde_json::to_value(&mine).map_err(|e| StoreError::Invalid(e.to_string()))?).await?;
        Ok(p)
    }
}
