//! `reef bench queue | vectors`: figures printed next to a baseline measured in the same run.
//! Run them on a release build: `cargo run --release -p reef-cli -- bench queue`.

use super::Out;
use clap::Subcommand;
use futures::StreamExt;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use reef_core::*;
use reef_store::sqlite::SqliteStore;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Claims/s with 16 workers (against 1 worker) and enqueue→claim latency on the embedded store.
    Queue {
        #[arg(long, default_value_t = 10_000)]
        tasks: usize,
        #[arg(long, default_value_t = 16)]
        workers: usize,
    },
    /// Enqueue → running latency through the whole engine (dispatcher routing + workers).
    Dispatch {
        #[arg(long, default_value_t = 500)]
        tasks: usize,
    },
    /// CPU time per hardware sample against a sampler that refreshes everything.
    Telemetry {
        #[arg(long, default_value_t = 200)]
        samples: u32,
    },
    /// Exact filtered search over N × 384 vectors (10 % filter) against sqlite-vec's default build.
    Vectors {
        #[arg(long, default_value_t = 100_000)]
        n: usize,
        #[arg(long, default_value_t = 384)]
        dim: usize,
        #[arg(long, default_value_t = 40)]
        queries: usize,
    },
    /// Memory search end to end (embed the query with the configured model + filtered search over
    /// N memories) against the same pipeline answered by sqlite-vec's default build.
    Memory {
        #[arg(long, default_value_t = 100_000)]
        n: usize,
        #[arg(long, default_value_t = 100)]
        queries: usize,
    },
    /// Graph traversal to depth 3 over N edges (recursive query) against a hop-by-hop traversal.
    Graph {
        #[arg(long, default_value_t = 100_000)]
        edges: usize,
        #[arg(long, default_value_t = 200)]
        queries: usize,
    },
}

pub async fn run(cmd: BenchCmd, out: &Out) -> anyhow::Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("note: this is a debug build; run benchmarks with --release for meaningful figures");
    }
    match cmd {
        BenchCmd::Queue { tasks, workers } => queue(tasks, workers, out).await,
        BenchCmd::Vectors { n, dim, queries } => vectors(n, dim, queries, out).await,
        BenchCmd::Dispatch { tasks } => dispatch(tasks, out).await,
        BenchCmd::Telemetry { samples } => telemetry(samples, out),
        BenchCmd::Memory { n, queries } => memory(n, queries, out).await,
        BenchCmd::Graph { edges, queries } => graph(edges, queries, out).await,
    }
}

fn fresh() -> anyhow::Result<(tempfile::TempDir, Ports, SqliteStore)> {
    let dir = tempfile::tempdir()?;
    let s = SqliteStore::open(&dir.path().join("bench.db"))?;
    Ok((dir, s.ports(), s))
}

/// Claims and completes `n` queued tasks with `w` workers; returns (claims/s, double claims).
async fn throughput(n: usize, w: usize) -> anyhow::Result<(f64, usize)> {
    let (_dir, p, _) = fresh()?;
    let now = SystemClock.now();
    for i in 0..n {
        let mut t = NewTask::titled(format!("bench {i}"));
        t.priority = (i % 5) as i64;
        p.tasks.create(t, now).await?;
    }
    let seen = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let start = Instant::now();
    let mut hs = vec![];
    for k in 0..w {
        let (p, seen) = (p.clone(), seen.clone());
        hs.push(tokio::spawn(async move {
            let me = format!("w{k}");
            while let Some(t) = p.tasks.claim(&me, &ClaimFilter::default(), Duration::from_secs(30), SystemClock.now()).await? {
                complete(&p, &t).await?;
                seen.lock().map_err(|_| StoreError::Backend("lock".into()))?.push(t.id);
            }
            Ok::<_, StoreError>(())
        }));
    }
    for h in hs {
        h.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    let seen = seen.lock().map_err(|_| anyhow::anyhow!("lock poisoned"))?;
    let unique: HashSet<_> = seen.iter().collect();
    anyhow::ensure!(seen.len() == n, "{} claims for {n} tasks", seen.len());
    Ok((n as f64 / secs, seen.len() - unique.len()))
}

/// Enqueue → claim latency with `w` idle workers woken by the store's watch.
async fn latency(n: usize, w: usize) -> anyhow::Result<Histogram<u64>> {
    let (_dir, p, _) = fresh()?;
    let wake = Arc::new(tokio::sync::Notify::new());
    let mut changes = p.changes.watch(None).await?;
    let w2 = wake.clone();
    let pump = tokio::spawn(async move {
        while let Some(Ok(_)) = changes.next().await {
            w2.notify_waiters();
        }
    });
    let enq: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut hs = vec![];
    for k in 0..w {
        let (p, wake, enq, hist, done) = (p.clone(), wake.clone(), enq.clone(), hist.clone(), done.clone());
        hs.push(tokio::spawn(async move {
            let me = format!("w{k}");
            while done.load(std::sync::atomic::Ordering::SeqCst) < n {
                let notified = wake.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                match p.tasks.claim(&me, &ClaimFilter::default(), Duration::from_secs(30), SystemClock.now()).await? {
                    Some(t) => {
                        let at = Instant::now();
                        // Finish it, as a worker would, so its lease never expires into a second claim.
                        complete(&p, &t).await?;
                        let started = loop {
                            if let Some(s) = enq.lock().ok().and_then(|m| m.get(&t.id).copied()) {
                                break s;
                            }
                            tokio::task::yield_now().await;
                        };
                        if let Ok(mut h) = hist.lock() {
                            let _ = h.record((at - started).as_micros() as u64);
                        }
                        done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    None => {
                        let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
                    }
                }
            }
            Ok::<_, StoreError>(())
        }));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for i in 0..n {
        let started = Instant::now();
        let (t, _) = p.tasks.create(NewTask::titled(format!("lat {i}")), SystemClock.now()).await?;
        enq.lock().map_err(|_| anyhow::anyhow!("lock"))?.insert(t.id, started);
        tokio::time::sleep(Duration::from_micros(rng.random_range(500..2500))).await;
    }
    for h in hs {
        h.await??;
    }
    pump.abort();
    let h = hist.lock().map_err(|_| anyhow::anyhow!("lock"))?.clone();
    Ok(h)
}

async fn queue(n: usize, w: usize, out: &Out) -> anyhow::Result<()> {
    eprintln!("bench queue: {n} tasks, 1 worker (baseline) then {w} workers, embedded store on a temp file …");
    let (base, _) = throughput(n, 1).await?;
    let (many, doubles) = throughput(n, w).await?;
    eprintln!("bench queue: enqueue→claim latency over 2000 tasks with {w} idle workers …");
    let h = latency(2000, w).await?;
    let (p50, p99) = (h.value_at_quantile(0.5) as f64 / 1000.0, h.value_at_quantile(0.99) as f64 / 1000.0);
    let v = serde_json::json!({
        "tasks": n, "workers": w,
        "claims_per_s_baseline_1_worker": base, "claims_per_s": many, "ratio_vs_baseline": many / base,
        "double_claims": doubles, "enqueue_to_claim_ms": {"p50": p50, "p99": p99},
        "targets": {"claims_per_s": 2000, "p50_ms": 20, "double_claims": 0},
    });
    out.print(&v, || {
        format!(
            "claims/s   {many:>9.0} with {w} workers   (baseline 1 worker: {base:.0}/s; ratio {:.2}x)   target ≥ 2000 {}\n\
             double claims  {doubles}   target 0 {}\n\
             enqueue→claim  p50 {p50:.2} ms  p99 {p99:.2} ms   target p50 ≤ 20 ms {}",
            many / base,
            if many >= 2000.0 { "✓" } else { "✗" },
            if doubles == 0 { "✓" } else { "✗" },
            if p50 <= 20.0 { "✓" } else { "✗" },
        )
    });
    Ok(())
}

fn unit(rng: &mut impl Rng, dim: usize) -> Vec<f32> {
    let v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

fn pct(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * q).round() as usize]
}

async fn vectors(n: usize, dim: usize, queries: usize, out: &Out) -> anyhow::Result<()> {
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
fn corpus() -> Vec<String> {
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

async fn memory(n: usize, queries: usize, out: &Out) -> anyhow::Result<()> {
    let (dir, p, store) = fresh()?;
    let defaults = reef_core::config::Defaults {
        data_dir: dir.path().into(),
        machine_timezone: Some("UTC".into()),
        host: "bench".into(),
        cache_dir: directories::ProjectDirs::from("dev", "reef", "reef").map(|d| d.cache_dir().to_path_buf()).unwrap_or_default(),
    };
    let env = |k: &str| std::env::var(k).ok();
    let cfg = reef_core::config::Config::resolve(None, &env, &defaults)?;
    let embedder = reef_store::host::embedder(&cfg)?;
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

async fn graph(edges: usize, queries: usize, out: &Out) -> anyhow::Result<()> {
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

/// An executor that succeeds at once: the benchmark measures REEF, not an agent.
struct Instant0;

#[async_trait::async_trait]
impl reef_core::engine::exec::Executor for Instant0 {
    fn name(&self) -> &str {
        "instant"
    }
    async fn run(
        &self,
        _job: &reef_core::engine::exec::Job,
        _p: reef_core::engine::exec::ProgressTx,
        _c: tokio_util::sync::CancellationToken,
    ) -> Result<reef_core::engine::exec::ExecSuccess, reef_core::engine::exec::ExecError> {
        Ok(reef_core::engine::exec::ExecSuccess { output: "ok".into(), work_products: Default::default(), cost: Usd::ZERO })
    }
}

async fn dispatch(n: usize, out: &Out) -> anyhow::Result<()> {
    use reef_core::engine::{budget::Budget, dispatcher, pricing::PriceBook, runtime::Engine, worker};
    eprintln!("bench dispatch: baseline = the store alone (enqueue→claim, 16 idle claimers) …");
    let base = latency(n.min(2000), 16).await?;
    eprintln!("bench dispatch: {n} unassigned tasks through dispatcher routing and workers …");
    let (dir, p, _) = fresh()?;
    let defaults = reef_core::config::Defaults {
        data_dir: dir.path().into(),
        machine_timezone: Some("UTC".into()),
        host: "bench".into(),
        cache_dir: dir.path().into(),
    };
    let cfg = reef_core::config::Config::resolve(
        Some("[engine]\nworkers = 16\n[[agents]]\nname = \"scout\"\nrole = \"research\"\ndaily_cap_usd = 15\nmax_concurrent = 16\n"),
        &|_| None,
        &defaults,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let f = reef_core::factory::Factory::new(p, Arc::new(SystemClock), Arc::new(cfg));
    let engine = Arc::new(Engine {
        factory: f.clone(),
        budget: Budget { factory: f.clone(), prices: Arc::new(PriceBook::default()) },
        llm: Arc::new(Instant0),
        cli: vec![],
        id: "bench".into(),
        data_dir: dir.path().into(),
        embedder: None,
    });
    let stop = tokio_util::sync::CancellationToken::new();
    let d = tokio::spawn(dispatcher::run(engine.clone(), stop.clone()));
    let w = tokio::spawn(worker::run(engine.clone(), stop.clone()));
    // Wait until the dispatcher is active before timing anything.
    while f.ports.leases.holder(dispatcher::LEASE_NAME, f.now()).await?.is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let enq: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let mut changes = f.ports.changes.watch(None).await?;
    let (f2, enq2, hist2) = (f.clone(), enq.clone(), hist.clone());
    let seen = tokio::spawn(async move {
        let mut done = HashSet::new();
        while done.len() < n {
            let Some(Ok(c)) = changes.next().await else { break };
            if c.collection != "tasks" || done.contains(&c.id) {
                continue;
            }
            if let Ok(t) = f2.ports.tasks.get(&c.id).await {
                if matches!(t.status, TaskStatus::Running | TaskStatus::Done) {
                    let at = Instant::now();
                    if let Some(s) = enq2.lock().ok().and_then(|m| m.get(&c.id).copied()) {
                        if let Ok(mut h) = hist2.lock() {
                            let _ = h.record((at - s).as_micros() as u64);
                        }
                        done.insert(c.id);
                    }
                }
            }
        }
    });
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for i in 0..n {
        let mut t = NewTask::titled(format!("dispatch {i}"));
        t.role = Some("research".into());
        let started = Instant::now();
        let t = f.create_task(t, "bench").await?;
        enq.lock().map_err(|_| anyhow::anyhow!("lock"))?.insert(t.id, started);
        tokio::time::sleep(Duration::from_micros(rng.random_range(1000..5000))).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(60), seen).await;
    stop.cancel();
    let _ = d.await;
    let _ = w.await;
    let h = hist.lock().map_err(|_| anyhow::anyhow!("lock"))?.clone();
    let (p50, p99) = (h.value_at_quantile(0.5) as f64 / 1000.0, h.value_at_quantile(0.99) as f64 / 1000.0);
    let (b50, b99) = (base.value_at_quantile(0.5) as f64 / 1000.0, base.value_at_quantile(0.99) as f64 / 1000.0);
    let v = serde_json::json!({
        "tasks": n, "measured": h.len(),
        "enqueue_to_running_ms": {"p50": p50, "p99": p99},
        "baseline_store_enqueue_to_claim_ms": {"p50": b50, "p99": b99},
        "ratio_p50": p50 / b50, "target_p50_ms": 50,
    });
    out.print(&v, || {
        format!(
            "enqueue→running through the engine ({} of {n} tasks, routed by the dispatcher)\n\
             engine      p50 {p50:>7.2} ms  p99 {p99:>7.2} ms   target p50 ≤ 50 ms {}\n\
             store alone p50 {b50:>7.2} ms  p99 {b99:>7.2} ms   (baseline: enqueue→claim)\n\
             ratio {:.1}x of baseline",
            h.len(),
            if p50 <= 50.0 { "✓" } else { "✗" },
            p50 / b50
        )
    });
    Ok(())
}

/// Completes a claimed task the way a worker with nothing to do would.
async fn complete(p: &Ports, t: &Task) -> StoreResult<()> {
    let tok = t.lease.as_ref().map(|l| l.token.clone()).unwrap_or_default();
    let ok = Outcome::Succeeded { result: String::new(), work_products: Default::default(), review: false };
    p.tasks.finish(&t.id, &tok, ok, SystemClock.now()).await.map(|_| ())
}

fn cpu_time() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| {
            let (a, b) = (u.user_time(), u.system_time());
            Duration::from_micros((a.tv_sec() * 1_000_000 + a.tv_usec() + b.tv_sec() * 1_000_000 + b.tv_usec()).max(0) as u64)
        })
        .unwrap_or_default()
}

fn telemetry(n: u32, out: &Out) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut s = reef_core::sampler::Sampler::new("bench", dir.path()).map_err(anyhow::Error::msg)?;
    s.prime();
    std::thread::sleep(Duration::from_millis(250));
    let t0 = cpu_time();
    let mut count = 0usize;
    for _ in 0..n {
        count += s.sample(SystemClock.now()).len();
    }
    let ours = (cpu_time() - t0).as_secs_f64() * 1000.0 / n as f64;
    // Baseline: what a naive sampler does — a fresh System with everything refreshed each time.
    let t0 = cpu_time();
    for _ in 0..n.min(50) {
        let mut sys = sysinfo::System::new_all().map_err(|e| anyhow::anyhow!("{e}"))?;
        sys.refresh_all();
        let _ = sysinfo::Disks::new_with_refreshed_list();
    }
    let naive = (cpu_time() - t0).as_secs_f64() * 1000.0 / n.min(50) as f64;
    let v = serde_json::json!({"samples": n, "metrics_per_sample": count / n as usize, "cpu_ms_per_sample": ours, "baseline_refresh_everything_ms": naive, "ratio": ours / naive, "target_ms_per_minute": 10});
    out.print(&v, || {
        format!(
            "hardware sample: {ours:.3} ms CPU each ({} metrics), one per minute   target ≤ 10 ms {}\n\
             baseline (new System, refresh everything): {naive:.3} ms   ratio {:.3}x",
            count / n as usize,
            if ours <= 10.0 { "✓" } else { "✗" },
            ours / naive
        )
    });
    Ok(())
}
