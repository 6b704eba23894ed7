//! `reef bench vectors | memory | graph`: memory search and graph traversal against baselines
//! measured in the same run.

use super::*;

pub(super) fn unit(rng: &mut impl Rng, dim: usize) -> Vec<f32> {
    let v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

pub(super) async fn vectors(n: usize, dim: usize, queries: usize, out: &Out) -> anyhow::Result<()> {
    let (_dir, p, store) = fresh()?;
    eprintln!("bench vectors: loading {n} × {dim} vectors …");
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let now = reef_core::time::fmt_ts(&SystemClock.now());
    let mut batch = Vec::with_capacity(5000);
    for i in 0..n {
        batch.push(serde_json::json!({"_id": format!("m{i}"), "content": format!("memory {i}"), "type": "memory", "product": format!("p{}", i % 10), "embedding": unit(&mut rng, dim), "created_at": now, "metadata": {}}));
        if batch.len() == 5000 || i + 1 == n {
            p.archive.import("memory", std::mem::take(&mut batch)).await?;
        }
    }
    let filter = MemoryFilter { product: Some("p3".into()), ..Default::default() };
    let (mut ours, mut theirs, mut same) = (vec![], vec![], 0);
    // One warm-up of each, so both start with a warm page cache.
    let q0 = unit(&mut rng, dim);
    p.memory.search(&q0, &filter, 10).await?;
    store.search_with_sqlite_vec(&q0, &filter, 10).await?;
    for _ in 0..queries {
        let q = unit(&mut rng, dim);
        let t = Instant::now();
        let a = p.memory.search(&q, &filter, 10).await?;
        ours.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let b = store.search_with_sqlite_vec(&q, &filter, 10).await?;
        theirs.push(t.elapsed().as_secs_f64() * 1000.0);
        let ia: Vec<&str> = a.hits.iter().map(|h| h.doc.id.as_str()).collect();
        let ib: Vec<&str> = b.iter().map(|(id, _)| id.as_str()).collect();
        same += (ia == ib) as usize;
    }
    let (o50, o99, t50, t99) = (pct(ours.clone(), 0.5), pct(ours, 0.99), pct(theirs.clone(), 0.5), pct(theirs, 0.99));
    let v = serde_json::json!({
        "n": n, "dim": dim, "filter": "product = p3 (10 %)", "queries": queries,
        "exact_scan_ms": {"p50": o50, "p99": o99}, "sqlite_vec_default_ms": {"p50": t50, "p99": t99},
        "ratio_p50": o50 / t50, "same_top10": same, "target_ratio": 0.5,
    });
    out.print(&v, || {
        format!(
            "filtered exact search, {n} × {dim}, 10 % filter, top-10, {queries} queries\n\
             REEF exact scan          p50 {o50:>7.2} ms  p99 {o99:>7.2} ms\n\
             sqlite-vec default build p50 {t50:>7.2} ms  p99 {t99:>7.2} ms   (baseline)\n\
             ratio {:.2}x of baseline (target ≤ 0.5x {})   same top-10 in {same}/{queries} queries",
            o50 / t50,
            if o50 / t50 <= 0.5 { "✓" } else { "✗" }
        )
    });
    Ok(())
}

/// Sentences shaped like the factory's memories, for a realistic spread of embeddings.
pub(super) fn corpus() -> Vec<String> {
    let subjects = [
        "QuickForm",
        "Invoicely",
        "PagePulse",
        "the landing page",
        "the Stripe integration",
        "the onboarding email",
        "the checkout",
        "the API",
        "the pricing page",
        "the docs site",
        "the uptime checker",
        "the mobile layout",
        "the signup flow",
        "the dashboard",
        "the billing webhook",
        "the launch thread",
    ];
    let verbs = [
        "deployed",
        "fixed a bug in",
        "measured conversion on",
        "rewrote",
        "load-tested",
        "researched competitors of",
        "wrote copy for",
        "reviewed",
        "added analytics to",
        "cut the bundle size of",
        "translated",
        "A/B tested",
    ];
    let outcomes = [
        "with a 12% lift",
        "and p95 fell to 300 ms",
        "but users churned",
        "after two review rounds",
        "ahead of the launch",
        "for freelancers",
        "on Cloudflare Workers",
        "behind a feature flag",
    ];
    let mut out = vec![];
    for (i, s) in subjects.iter().enumerate() {
        for (j, v) in verbs.iter().enumerate() {
            out.push(format!("Rex {v} {s} {}", outcomes[(i + j) % outcomes.len()]));
        }
    }
    out
}

pub(super) async fn memory(n: usize, queries: usize, out: &Out) -> anyhow::Result<()> {
    let (dir, p, store) = fresh()?;
    let defaults = reef_core::config::Defaults {
        data_dir: dir.path().into(),
        machine_timezone: Some("UTC".into()),
        host: "bench".into(),
        cache_dir: directories::ProjectDirs::from("dev", "reef", "reef").map(|d| d.cache_dir().to_path_buf()).unwrap_or_default(),
    };
    let env = |k: &str| std::env::var(k).ok();
    let cfg = reef_core::config::Config::resolve(None, &env, &defaults)?;
    let embedder = reef_host::embedder(&cfg)?;
    let texts = corpus();
    eprintln!("bench memory: embedding a {}-sentence corpus with {} …", texts.len(), embedder.name());
    let base = embedder.embed(&texts).await.map_err(anyhow::Error::msg)?;
    let dim = embedder.dimension();
    eprintln!("bench memory: loading {n} memories ({dim} dims: corpus vectors with noise) …");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let now = reef_core::time::fmt_ts(&SystemClock.now());
    let mut batch = Vec::with_capacity(5000);
    for i in 0..n {
        let b = &base[i % base.len()];
        let noise = unit(&mut rng, dim);
        let v: Vec<f32> = b.iter().zip(&noise).map(|(x, e)| x + 0.35 * e).collect();
        batch.push(serde_json::json!({"_id": format!("m{i}"), "content": texts[i % texts.len()], "type": "task_result", "product": format!("p{}", i % 10), "embedding": v, "created_at": now, "metadata": {"embedder": embedder.name()}}));
        if batch.len() == 5000 || i + 1 == n {
            p.archive.import("memory", std::mem::take(&mut batch)).await?;
        }
    }
    p.settings.put(reef_core::memory::INDEX_KEY, serde_json::json!({"embedder": embedder.name(), "dimension": dim})).await?;
    let index = reef_core::memory::MemoryIndex::new(p.clone(), embedder.clone());
    let filter = MemoryFilter { product: Some("p3".into()), ..Default::default() };
    let questions = [
        "what happened with checkout conversion",
        "is the billing webhook reliable",
        "how fast is the API",
        "did freelancers like the invoices",
        "launch results on social media",
        "what did we learn about pricing",
    ];
    // Warm-up: loads the model and the page cache for both paths.
    index.search(questions[0], &filter, 10).await?;
    let (mut ours, mut theirs, mut embed_only) = (vec![], vec![], vec![]);
    for i in 0..queries {
        let q = questions[i % questions.len()];
        let t = Instant::now();
        let r = index.search(q, &filter, 10).await?;
        ours.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(r.hits.len() == 10, "the search found {} hits", r.hits.len());
        let t = Instant::now();
        let v = embedder.embed(&[q.to_string()]).await.map_err(anyhow::Error::msg)?.remove(0);
        embed_only.push(t.elapsed().as_secs_f64() * 1000.0);
        store.search_with_sqlite_vec(&v, &filter, 10).await?;
        theirs.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (o50, o99, t50, t99, e50) =
        (pct(ours.clone(), 0.5), pct(ours, 0.99), pct(theirs.clone(), 0.5), pct(theirs, 0.99), pct(embed_only, 0.5));
    let v = serde_json::json!({
        "n": n, "dim": dim, "embedder": embedder.name(), "filter": "product = p3 (10 %)", "queries": queries,
        "end_to_end_ms": {"p50": o50, "p99": o99}, "baseline_sqlite_vec_end_to_end_ms": {"p50": t50, "p99": t99},
        "embed_query_p50_ms": e50, "ratio_p50": o50 / t50,
    });
    out.print(&v, || {
        format!(
            "memory search end to end: embed the query ({}) + top-10 over {n} memories, 10 % filter, {queries} queries\n\
             REEF (MemoryIndex)                     p50 {o50:>7.2} ms  p99 {o99:>7.2} ms\n\
             same embed + sqlite-vec default build  p50 {t50:>7.2} ms  p99 {t99:>7.2} ms   (baseline)\n\
             embedding the query alone              p50 {e50:>7.2} ms\n\
             ratio {:.2}x of baseline",
            embedder.name(),
            o50 / t50
        )
    });
    Ok(())
}

pub(super) async fn graph(edges: usize, queries: usize, out: &Out) -> anyhow::Result<()> {
    let (_dir, p, _) = fresh()?;
    // About five outgoing edges per entity, skewed so some entities are hubs, as in a real graph.
    let nodes = (edges / 5).max(10);
    eprintln!("bench graph: {nodes} entities, {edges} relationships …");
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let now = reef_core::time::fmt_ts(&SystemClock.now());
    let kinds = ["agent", "product", "task", "provider", "repository", "customer"];
    let mut batch = vec![];
    for i in 0..nodes {
        batch.push(
            serde_json::json!({"_id": format!("n{i}"), "type": kinds[i % kinds.len()], "name": format!("node {i}"), "properties": {}}),
        );
        if batch.len() == 5000 || i + 1 == nodes {
            p.archive.import("entities", std::mem::take(&mut batch)).await?;
        }
    }
    let mut seen = std::collections::HashSet::new();
    while seen.len() < edges {
        let from = rng.random_range(0..nodes);
        // Squaring a uniform draw favours low ids: a few hubs, many leaves, and cycles.
        let r: f64 = rng.random();
        let to = ((r * r) * nodes as f64) as usize;
        if from == to || !seen.insert((from, to)) {
            continue;
        }
        let (f, t) = (format!("n{from}"), format!("n{to}"));
        batch.push(
            serde_json::json!({"_id": format!("{f}|links|{t}"), "from": f, "to": t, "type": "links", "weight": 0.5, "created_at": now}),
        );
        if batch.len() == 5000 {
            p.archive.import("relationships", std::mem::take(&mut batch)).await?;
        }
    }
    if !batch.is_empty() {
        p.archive.import("relationships", batch).await?;
    }
    let starts: Vec<String> = (0..queries).map(|_| format!("n{}", rng.random_range(0..nodes))).collect();
    p.graph.traverse(&starts[0], 3).await?;
    let (mut ours, mut theirs, mut reached) = (vec![], vec![], 0usize);
    for s in &starts {
        let t = Instant::now();
        let a = p.graph.traverse(s, 3).await?;
        ours.push(t.elapsed().as_secs_f64() * 1000.0);
        // Baseline: hop by hop, one query per entity on the frontier (what a store without
        // recursive queries has to do).
        let t = Instant::now();
        let mut visited: std::collections::HashSet<String> = [s.clone()].into();
        let mut frontier = vec![s.clone()];
        for _ in 0..3 {
            let mut next = vec![];
            for n in &frontier {
                for (e, _) in p.graph.traverse(n, 1).await?.nodes {
                    if visited.insert(e.id.clone()) {
                        next.push(e.id);
                    }
                }
            }
            frontier = next;
        }
        theirs.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(visited.len() == a.nodes.len(), "the two traversals disagree from {s}: {} vs {}", visited.len(), a.nodes.len());
        reached += a.nodes.len();
    }
    let (o50, o95, t50, t95) = (pct(ours.clone(), 0.5), pct(ours, 0.95), pct(theirs.clone(), 0.5), pct(theirs, 0.95));
    let v = serde_json::json!({
        "entities": nodes, "edges": edges, "depth": 3, "queries": queries, "mean_reached": reached as f64 / queries as f64,
        "recursive_ms": {"p50": o50, "p95": o95}, "hop_by_hop_ms": {"p50": t50, "p95": t95}, "ratio_p95": o95 / t95, "target_p95_ms": 20.0,
    });
    out.print(&v, || {
        format!(
            "graph traversal to depth 3: {nodes} entities, {edges} relationships, {queries} random starts (mean {:.0} entities reached)\n\
             REEF recursive query   p50 {o50:>7.2} ms  p95 {o95:>7.2} ms   (target p95 ≤ 20 ms {})\n\
             hop-by-hop traversal   p50 {t50:>7.2} ms  p95 {t95:>7.2} ms   (baseline)\n\
             ratio {:.2}x of baseline at p95",
            reached as f64 / queries as f64,
            if o95 <= 20.0 { "✓" } else { "✗" },
            o95 / t95
        )
    });
    Ok(())
}
