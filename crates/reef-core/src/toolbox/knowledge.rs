//! Knowledge tools: search_memory, remember and graph_neighbors over the memory index and graph.
//! Invariant: an agent working on a product's task searches that product's memories only.

use super::args::*;
use super::*;

impl Toolbox {
    pub(super) fn index(&self) -> ToolResult<&MemoryIndex> {
        self.memory
            .as_ref()
            .ok_or_else(|| ToolError::Unavailable("this REEF has no embedder, so memory cannot be searched or written here".into()))
    }

    pub(super) async fn search(&self, c: &Caller, a: SearchArgs) -> ToolResult<Value> {
        check_text("query", &a.query, MAX_QUERY, true)?;
        for (field, v) in [("product", &a.product), ("kind", &a.kind)] {
            if let Some(v) = v {
                check_name(field, v, 64)?;
            }
        }
        let k = a.k.unwrap_or(5);
        if !(1..=20).contains(&k) {
            return Err(ToolError::Invalid(format!("k {k} is outside 1..20")));
        }
        // A task's agent searches its own product's memories, never another product's.
        let own = match c {
            Caller::Task { .. } => self.own(c).await?.product.clone(),
            Caller::Operator { .. } => None,
        };
        let product = match (own, a.product) {
            (Some(mine), Some(asked)) if asked != mine => {
                return Err(ToolError::OutOfScope(format!("this task is product {mine}'s: it searches {mine}'s memories, not {asked}'s")))
            }
            (Some(mine), _) => Some(mine),
            (None, asked) => asked,
        };
        let filter = MemoryFilter { product, kind: a.kind, ..Default::default() };
        let r = self.index()?.search(&a.query, &filter, k).await.map_err(memory_err)?;
        Ok(json!({
            "method": r.method,
            "hits": r.hits.iter().map(|h| json!({
                "id": h.doc.id, "score": h.score, "kind": h.doc.kind, "product": h.doc.product, "agent": h.doc.agent,
                "content": h.doc.content.chars().take(2000).collect::<String>(),
            })).collect::<Vec<_>>(),
        }))
    }

    pub(super) async fn remember(&self, c: &Caller, a: RememberArgs) -> ToolResult<Value> {
        check_text("content", &a.content, MAX_MEMORY, true)?;
        let kind = a.kind.unwrap_or_else(|| "note".into());
        check_name("kind", &kind, 32)?;
        let (task, product) = match c {
            Caller::Task { .. } => {
                let t = self.own(c).await?;
                (Some(t.id.clone()), t.product.clone())
            }
            Caller::Operator { .. } => (None, None),
        };
        let id = format!("mcp:{}:{}", task.as_deref().unwrap_or("operator"), &sha(&a.content)[..24]);
        let agent = match c {
            Caller::Task { agent, .. } => Some(agent.clone()),
            Caller::Operator { .. } => None,
        };
        let n = self
            .index()?
            .remember(vec![NewMemory {
                id: id.clone(),
                content: a.content,
                kind,
                agent,
                product,
                created_at: self.factory.now(),
                metadata: json!({"task_id": task, "source": "mcp", "by": c.actor()}),
            }])
            .await
            .map_err(memory_err)?;
        Ok(json!({"id": id, "written": n}))
    }

    pub(super) async fn graph(&self, a: GraphArgs) -> ToolResult<Value> {
        check_name("entity", &a.entity, 200)?;
        let depth = a.depth.unwrap_or(1);
        if !(1..=3).contains(&depth) {
            return Err(ToolError::Invalid(format!("depth {depth} is outside 1..3")));
        }
        let start = if a.entity.starts_with("entity:") { a.entity } else { format!("entity:{}", a.entity) };
        let t = self.factory.ports.graph.traverse(&start, depth).await?;
        Ok(json!({
            "start": t.start,
            "nodes": t.nodes.iter().take(200).map(|(e, d)| json!({"id": e.id, "type": e.kind, "name": e.name, "depth": d})).collect::<Vec<_>>(),
            "edges": t.edges.iter().take(400).map(|r| json!({"from": r.from, "to": r.to, "type": r.kind})).collect::<Vec<_>>(),
        }))
    }
}
