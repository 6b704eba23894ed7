//! `reef bench queue | dispatch`: claims through the workers' own store path, and enqueue →
//! running through the dispatcher and workers.

use super::*;

/// Claims and completes `n` queued tasks with `w` workers; returns (claims/s, double claims).
pub(super) async fn throughput(n: usize, w: usize) -> anyhow::Result<(f64, usize)> {
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
pub(super) async fn latency(n: usize, w: usize) -> anyhow::Result<Histogram<u64>> {
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

pub(super) async fn queue(n: usize, w: usize, out: &Out) -> anyhow::Result<()> {
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

/// An executor that succeeds at once: the benchmark measures REEF, not an agent.
pub(super) struct Instant0;

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

pub(super) async fn dispatch(n: usize, out: &Out) -> anyhow::Result<()> {
    use reef_core::engine::{budget::Budget, dispatcher, runtime::Engine, worker};
    use reef_core::rules::pricing::PriceBook;
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
        // The LLM executor only: no CLI agent runs, so nothing to contain.
        containment: Arc::new(reef_core::engine::sandbox::Containment::off(dir.path().join("work"), dir.path().into())),
        mcp_socket: None,
        meter: None,
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
