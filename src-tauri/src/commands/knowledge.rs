//! Memory search and the knowledge graph.

use crate::dto::*;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use reef_core::*;
use tauri::State;

#[tauri::command]
#[specta::specta]
pub async fn search_memory(
    state: State<'_, AppState>,
    query: String,
    agent: Option<String>,
    product: Option<String>,
    kind: Option<String>,
    since: Option<String>,
    until: Option<String>,
) -> AppResult<MemorySearchDto> {
    let f = state.factory()?;
    if query.trim().is_empty() {
        return Err(AppError::invalid("type something to search for"));
    }
    if f.ports.memory.count().await? == 0 {
        return Ok(MemorySearchDto { method: "none".into(), embedder: String::new(), hits: vec![] });
    }
    let day = |s: Option<String>| s.filter(|s| !s.trim().is_empty()).map(|s| time::parse_when(&s).map_err(AppError::invalid)).transpose();
    let filter = MemoryFilter {
        agent: agent.filter(|s| !s.is_empty()),
        product: product.filter(|s| !s.is_empty()),
        kind: kind.filter(|s| !s.is_empty()),
        since: day(since)?,
        until: day(until)?,
        ..Default::default()
    };
    let embedder = state.embedder()?;
    let index = reef_core::memory::MemoryIndex::new(f.ports.clone(), embedder.clone());
    let r = index.search(&query, &filter, 20).await?;
    Ok(MemorySearchDto {
        method: serde_json::to_value(r.method).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(),
        embedder: embedder.name().to_string(),
        hits: r
            .hits
            .into_iter()
            .map(|h| MemoryHitDto {
                id: h.doc.id,
                content: h.doc.content,
                kind: h.doc.kind,
                agent: h.doc.agent,
                product: h.doc.product,
                created_at: time::fmt_ts(&h.doc.created_at),
                score: h.score as f64,
            })
            .collect(),
    })
}

#[tauri::command]
#[specta::specta]
pub async fn list_entities(state: State<'_, AppState>) -> AppResult<Vec<EntityDto>> {
    let f = state.factory()?;
    Ok(f.ports
        .graph
        .entities(None, 5000)
        .await?
        .items
        .into_iter()
        .map(|e| EntityDto { id: e.id, kind: e.kind, name: e.name, depth: 0 })
        .collect())
}

#[tauri::command]
#[specta::specta]
pub async fn traverse(state: State<'_, AppState>, start: String, depth: u32) -> AppResult<GraphDto> {
    let f = state.factory()?;
    let t = f.ports.graph.traverse(&start, depth.clamp(1, 6)).await?;
    Ok(GraphDto {
        nodes: t.nodes.into_iter().map(|(e, d)| EntityDto { id: e.id, kind: e.kind, name: e.name, depth: d }).collect(),
        edges: t.edges.into_iter().map(|r| EdgeDto { from: r.from, to: r.to, kind: r.kind, weight: r.weight }).collect(),
    })
}
