//! `reef memory search` and `reef graph show`.

use super::Out;
use clap::Subcommand;
use reef_core::factory::Factory;
use reef_core::memory::{MemoryIndex, NewMemory};
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
        /// Only memories made on or after this day (YYYY-MM-DD, UTC) or time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only memories made before this day or time.
        #[arg(long)]
        until: Option<String>,
        /// Only memories whose text contains this (case-insensitive).
        #[arg(long)]
        text: Option<String>,
        #[arg(long, short = 'k', default_value_t = 10)]
        limit: usize,
    },
    /// Write a memory (an agent's note, research); long text is chunked.
    Remember {
        content: String,
        #[arg(long)]
        agent: Option<String>,
        #[arg(long)]
        product: Option<String>,
        #[arg(long = "type", default_value = "note")]
        kind: String,
    },
    /// Re-embed every memory with the configured embedder (resumes if interrupted).
    Reembed,
    /// Which embedder made the index, and how many memories it holds.
    Status,
}

fn when(flag: &str, s: &str) -> anyhow::Result<Timestamp> {
    reef_core::time::parse_when(s).map_err(|e| anyhow::anyhow!("{flag} {e}"))
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
    let embedder = reef_host::embedder(&f.config)?;
    let index = MemoryIndex::new(f.ports.clone(), embedder.clone());
    match c {
        MemoryCmd::Search { query, agent, product, kind, since, until, text, limit } => {
            anyhow::ensure!(!query.trim().is_empty(), "give something to search for");
            anyhow::ensure!((1..=1000).contains(&limit), "-k must be between 1 and 1000");
            let since = since.map(|s| when("--since", &s)).transpose()?;
            let until = until.map(|s| when("--until", &s)).transpose()?;
            if f.ports.memory.count().await? == 0 {
                out.print(&serde_json::json!({"hits": [], "method": null}), || "no memories yet (try `reef demo`)".into());
                return Ok(());
            }
            let r = index.search(&query, &MemoryFilter { agent, product, kind, since, until, text }, limit).await?;
            out.print(&r, || {
                let method = serde_json::to_value(r.method).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
                let mut s = format!("{} results · method: {method} · embedder: {}\n", r.hits.len(), embedder.name());
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
        }
        MemoryCmd::Remember { content, agent, product, kind } => {
            anyhow::ensure!(!content.trim().is_empty(), "give the text to remember");
            let id = reef_core::new_id();
            let items: Vec<NewMemory> = reef_core::engine::runtime::chunks(&content, 1200)
                .into_iter()
                .enumerate()
                .map(|(i, text)| NewMemory {
                    id: format!("note:{id}:{i}"),
                    content: text,
                    kind: kind.clone(),
                    agent: agent.clone(),
                    product: product.clone(),
                    created_at: f.now(),
                    metadata: serde_json::json!({"source": "cli", "operator": f.config.operator}),
                })
                .collect();
            let n = index.remember(items).await?;
            out.print(&serde_json::json!({"written": n}), || format!("remembered in {n} chunk(s)"));
        }
        MemoryCmd::Reembed => {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_message(format!("re-embedding with {}", embedder.name()));
            let p = index
                .reembed(|p| {
                    bar.set_length(p.total);
                    bar.set_position(p.done);
                })
                .await?;
            bar.finish_and_clear();
            out.print(
                &serde_json::json!({"embedder": embedder.name(), "dimension": embedder.dimension(), "done": p.done, "skipped": p.skipped}),
                || {
                    format!(
                        "{} memories now embedded by {} ({} dimensions){}",
                        p.done,
                        embedder.name(),
                        embedder.dimension(),
                        if p.skipped > 0 { format!("; {} were already done by an earlier run", p.skipped) } else { String::new() }
                    )
                },
            );
        }
        MemoryCmd::Status => {
            let ident = index.identity().await?;
            let count = f.ports.memory.count().await?;
            let v = serde_json::json!({"index": ident, "count": count, "configured": {"embedder": embedder.name(), "dimension": embedder.dimension()}});
            out.print(&v, || {
                let idx = match &ident {
                    Some(i) => format!(
                        "{} ({} dimensions){}",
                        i.embedder,
                        i.dimension,
                        i.reembedding_from
                            .as_ref()
                            .map(|f| format!(", reembed from {f} unfinished: run `reef memory reembed`"))
                            .unwrap_or_default()
                    ),
                    None => "empty".into(),
                };
                let warn = match &ident {
                    Some(i) if i.embedder != embedder.name() => {
                        "\nthe configured embedder differs from the index's: run `reef memory reembed`"
                    }
                    _ => "",
                };
                format!(
                    "memories: {count}\nindex: {idx}\nconfigured embedder: {} ({} dimensions){warn}",
                    embedder.name(),
                    embedder.dimension()
                )
            });
        }
    }
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
