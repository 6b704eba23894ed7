//! `reef memory search` and `reef graph show`.

use super::Out;
use clap::Subcommand;
use reef_core::embed::HashingEmbedder;
use reef_core::factory::Factory;
use reef_core::*;

#[derive(Subcommand)]
pub enum MemoryCmd {
    /// Semantic search over memories, with scores and the search method.
    Search {
        query: String,
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        product: Option<String>,
        #[arg(long = "type")]
        kind: Option<String>,
        #[arg(long, short = 'k', default_value_t = 10)]
        limit: usize,
    },
}

#[derive(Subcommand)]
pub enum GraphCmd {
    /// What an entity is connected to, to a depth.
    Show {
        entity: String,
        #[arg(long, default_value_t = 2)]
        depth: u32,
    },
}

pub async fn memory(f: &Factory, c: MemoryCmd, out: &Out) -> anyhow::Result<()> {
    let MemoryCmd::Search { query, agent, product, kind, limit } = c;
    anyhow::ensure!(!query.trim().is_empty(), "give something to search for");
    let Some(dim) = f.ports.memory.dimension().await? else {
        out.print(&serde_json::json!({"hits": [], "method": null}), || "no memories yet (try `reef demo`)".into());
        return Ok(());
    };
    // The index's own embedder (hashing, until model embedders are configured).
    let q = HashingEmbedder { dim }.embed_one(&query);
    let r = f.ports.memory.search(&q, &MemoryFilter { agent, product, kind, ..Default::default() }, limit).await?;
    out.print(&r, || {
        let method = serde_json::to_value(r.method).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
        let mut s = format!("{} results · method: {method}\n", r.hits.len());
        for h in &r.hits {
            s.push_str(&format!(
                "{:>6.3}  [{}] {} · {} — {}\n",
                h.score,
                h.doc.kind,
                h.doc.agent.as_deref().unwrap_or("-"),
                h.doc.product.as_deref().unwrap_or("-"),
                h.doc.content
            ));
        }
        s
    });
    Ok(())
}

pub async fn graph(f: &Factory, c: GraphCmd, out: &Out) -> anyhow::Result<()> {
    let GraphCmd::Show { entity, depth } = c;
    anyhow::ensure!((1..=10).contains(&depth), "--depth must be between 1 and 10");
    let t = f.ports.graph.traverse(&entity, depth).await?;
    out.print(&t, || {
        let mut s = String::new();
        let mut nodes: Vec<_> = t.nodes.iter().collect();
        nodes.sort_by(|a, b| (a.1, &a.0.name).cmp(&(b.1, &b.0.name)));
        for (e, d) in nodes {
            s.push_str(&format!(
                "{}{} ({}){}\n",
                "  ".repeat(*d as usize),
                e.name,
                e.kind,
                if e.id == e.name { String::new() } else { format!("  [{}]", e.id) }
            ));
        }
        s.push_str(&format!("\n{} relationships:\n", t.edges.len()));
        for r in &t.edges {
            s.push_str(&format!("  {} —{} ({:.1})→ {}\n", r.from, r.kind, r.weight, r.to));
        }
        s
    });
    Ok(())
}
