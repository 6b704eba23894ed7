//! Knowledge tools: search_memory, remember and graph_neighbors over the memory index and graph.
//! Invariant: an agent working on a task sees its own product's memories and graph only — a task
//! with no product sees only what belongs to no product.

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
        // A task's agent searches its own product's memories, never another product's; a task
        // with no product, only the memories of no product.
        let own = match c {
            Caller::Task { .. } => Some(self.own(c).await?.product.clone()),
            Caller::Operator { .. } => None,
        };
        let (product, productless) = match (own, a.product) {
            (Some(Some(mine)), Some(asked)) if asked != mine => {
                return Err(ToolError::OutOfScope(format!("this task is product {mine}'s: it searches {mine}'s memories, not {asked}'s")))
            }
            (Some(Some(mine)), _) => (Some(mine), false),
            (Some(None), Some(asked)) => {
                return Err(ToolError::OutOfScope(format!(
                    "this task has no product: it searches the memories of no product, not {asked}'s"
                )))
            }
            (Some(None), None) => (None, true),
            (None, asked) => (asked, false),
        };
        let filter = MemoryFilter { product, kind: a.kind, ..Default::default() };
        // The index filters by a product, not by its absence: ask for more and keep those of none.
        let want = if productless { (k * 5).min(100) } else { k };
        let mut r = self.index()?.search(&a.query, &filter, want).await.map_err(memory_err)?;
        if productless {
            r.hits.retain(|h| h.doc.product.is_none());
            r.hits.truncate(k);
        }
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

    pub(super) async fn graph(&self, c: &Caller, a: GraphArgs) -> ToolResult<Value> {
        check_name("entity", &a.entity, 200)?;
        let depth = a.depth.unwrap_or(1);
        if !(1..=3).contains(&depth) {
            return Err(ToolError::Invalid(format!("depth {depth} is outside 1..3")));
        }
        // Ids are `product:quickform`, `agent:rex`…; an `entity:` in front (as older docs wrote) is dropped.
        let start = a.entity.strip_prefix("entity:").unwrap_or(&a.entity).to_string();
        let mut t = self.factory.ports.graph.traverse(&start, depth).await?;
        if let Caller::Task { .. } = c {
            let mine = self.own(c).await?.product;
            scope_graph(&mut t, mine.as_deref())?;
        }
        Ok(json!({
            "start": t.start,
            "nodes": t.nodes.iter().take(200).map(|(e, d)| json!({"id": e.id, "type": e.kind, "name": e.name, "depth": d})).collect::<Vec<_>>(),
            "edges": t.edges.iter().take(400).map(|r| json!({"from": r.from, "to": r.to, "type": r.kind})).collect::<Vec<_>>(),
        }))
    }
}

/// Whether a graph node belongs to a product other than `mine` (any product, when `mine` is none):
/// another product itself, or a task done for one.
fn foreign(e: &crate::Entity, mine: Option<&str>) -> bool {
    let product = match e.id.strip_prefix("product:") {
        Some(p) => Some(p),
        None if e.kind == "task" => e.properties.get("product").and_then(Value::as_str),
        None => None,
    };
    product.is_some_and(|p| Some(p) != mine)
}

/// Cuts a traversal down to what the caller's product may see: no other product's nodes, and
/// nothing reached only through them (edges are followed both ways from the start).
fn scope_graph(t: &mut crate::Traversal, mine: Option<&str>) -> ToolResult<()> {
    use std::collections::{BTreeSet, VecDeque};
    let hidden: BTreeSet<String> = t.nodes.iter().filter(|(e, _)| foreign(e, mine)).map(|(e, _)| e.id.clone()).collect();
    if hidden.contains(&t.start) {
        return Err(ToolError::OutOfScope(format!("{} belongs to another product than this task's", t.start)));
    }
    let mut seen = BTreeSet::from([t.start.clone()]);
    let mut queue = VecDeque::from([t.start.clone()]);
    while let Some(n) = queue.pop_front() {
        for r in &t.edges {
            let next = if r.from == n {
                &r.to
            } else if r.to == n {
                &r.from
            } else {
                continue;
            };
            if !hidden.contains(next) && seen.insert(next.clone()) {
                queue.push_back(next.clone());
            }
        }
    }
    t.nodes.retain(|(e, _)| seen.contains(&e.id));
    t.edges.retain(|r| seen.contains(&r.from) && seen.contains(&r.to));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, kind: &str, product: Option<&str>) -> (crate::Entity, u32) {
        (crate::Entity { id: id.into(), kind: kind.into(), name: id.into(), properties: json!({"product": product}) }, 1)
    }
    fn edge(a: &str, b: &str) -> crate::Relationship {
        crate::Relationship { from: a.into(), to: b.into(), kind: "x".into(), weight: 1.0, created_at: Default::default() }
    }

    #[test]
    fn the_graph_shows_a_task_its_own_products_part_only() {
        let t = || crate::Traversal {
            start: "agent:rex".into(),
            nodes: vec![
                node("agent:rex", "agent", None),
                node("task:a1", "task", Some("alpha")),
                node("task:b1", "task", Some("bravo")),
                node("product:alpha", "product", None),
                node("product:bravo", "product", None),
                node("repo:bravo-secret", "repository", None),
                node("task:n1", "task", None),
            ],
            edges: vec![
                edge("agent:rex", "task:a1"),
                edge("task:a1", "product:alpha"),
                edge("agent:rex", "task:b1"),
                edge("task:b1", "product:bravo"),
                edge("task:b1", "repo:bravo-secret"),
                edge("agent:rex", "task:n1"),
            ],
        };
        let ids = |t: &crate::Traversal| t.nodes.iter().map(|(e, _)| e.id.clone()).collect::<Vec<_>>();
        let mut alpha = t();
        scope_graph(&mut alpha, Some("alpha")).unwrap();
        assert_eq!(
            ids(&alpha),
            ["agent:rex", "task:a1", "product:alpha", "task:n1"],
            "nothing of bravo's, nor what only bravo's task reaches"
        );
        assert!(alpha.edges.iter().all(|r| !r.to.contains("bravo") && !r.from.contains("bravo")));
        let mut none = t();
        scope_graph(&mut none, None).unwrap();
        assert_eq!(ids(&none), ["agent:rex", "task:n1"], "a task with no product sees only what belongs to none");
        let mut from_bravo = t();
        from_bravo.start = "product:bravo".into();
        assert!(matches!(scope_graph(&mut from_bravo, Some("alpha")), Err(ToolError::OutOfScope(_))));
    }
}
