//! Memory documents (text with an embedding) and the knowledge graph (entities, relationships).

use crate::time::{ts, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub content: String,
    /// e.g. `memory`, `task_result`, `research`, `note`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    pub embedding: Vec<f32>,
    #[serde(with = "ts")]
    pub created_at: Timestamp,
    #[serde(default)]
    pub metadata: serde_json::Value,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryFilter {
    pub agent: Option<String>,
    pub product: Option<String>,
    pub kind: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Only documents whose content contains this text (case-insensitive).
    pub text: Option<String>,
}

/// How a vector search was answered: callers (and the UI) are told which ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchMethod {
    /// Every candidate scored (exact).
    ExactScan,
    /// sqlite-vec's exact KNN.
    SqliteVec,
    /// MongoDB `$vectorSearch` over a search index (approximate).
    VectorSearchIndex,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryHit {
    pub doc: MemoryDoc,
    /// Cosine similarity in [-1, 1].
    pub score: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemorySearch {
    pub hits: Vec<MemoryHit>,
    pub method: SearchMethod,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// e.g. `product:quickform`, `agent:rex`, `task:<id>`.
    #[serde(rename = "_id")]
    pub id: String,
    /// agent, product, task, provider, repository, customer …
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub properties: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relationship {
    pub from: String,
    pub to: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub weight: f64,
    #[serde(with = "ts")]
    pub created_at: Timestamp,
}

/// What a traversal reached: each entity once, at the smallest depth it was found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Traversal {
    pub start: String,
    pub nodes: Vec<(Entity, u32)>,
    pub edges: Vec<Relationship>,
}
