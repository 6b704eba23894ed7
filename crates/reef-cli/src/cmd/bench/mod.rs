//! `reef bench queue | vectors | … | meter | loop`: figures printed next to a baseline measured in
//! the same run.
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

mod agent_loop;
mod diff;
mod guarantees;
mod knowledge;
mod meter;
mod queue;
use knowledge::{graph, memory, vectors};
use queue::{dispatch, queue};

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
    /// An agent start inside bubblewrap against a bare spawn of the same command.
    Sandbox {
        #[arg(long, default_value_t = 100)]
        starts: usize,
    },
    /// A large change (5,000 files, 200k lines) recorded through REEF's mirror and its file list
    /// read back, against bare `git diff --numstat`; `--seed` keeps it as a task's change in the
    /// configured store (for `scripts/bench-diff.sh`, which times the window opening it).
    Diff {
        #[arg(long, default_value_t = 5_000)]
        files: usize,
        #[arg(long, default_value_t = 40)]
        lines: usize,
        #[arg(long, default_value_t = 7)]
        runs: usize,
        #[arg(long)]
        seed: bool,
    },
    /// Webhook events delivered in log order by the relay against bare posts to the same receiver.
    Events {
        #[arg(long, default_value_t = 2_000)]
        events: usize,
    },
    /// A chat call through the bridge and REEF's metered endpoint against the same call straight
    /// to the same gateway (a local stand-in).
    Meter {
        #[arg(long, default_value_t = 500)]
        calls: usize,
    },
    /// REEF's own cost per agent-loop step (reservation, settlement, the step kept, the tool run
    /// and audited) against the gateway call itself (a local stand-in).
    Loop {
        /// Tool-calling steps per run (then one `finish`).
        #[arg(long, default_value_t = 20)]
        steps: usize,
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// How long the stand-in gateway takes to answer each call.
        #[arg(long, default_value_t = 0)]
        gateway_ms: u64,
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
        BenchCmd::Sandbox { starts } => guarantees::sandbox_start(starts, out),
        BenchCmd::Events { events } => guarantees::events(events, out).await,
        BenchCmd::Diff { files, lines, runs, seed } => diff::diff(files, lines, runs, seed, out).await,
        BenchCmd::Meter { calls } => meter::meter(calls, out).await,
        BenchCmd::Loop { steps, runs, gateway_ms } => agent_loop::agent_loop(steps, runs, gateway_ms, out).await,
    }
}

pub(super) fn fresh() -> anyhow::Result<(tempfile::TempDir, Ports, SqliteStore)> {
    let dir = tempfile::tempdir()?;
    let s = SqliteStore::open(&dir.path().join("bench.db"))?;
    Ok((dir, s.ports(), s))
}

/// An HTTP/1.1 stand-in on 127.0.0.1, keep-alive, a thread per connection: `answer` gets each
/// request's header lines (lower-cased) and body and returns the bytes to send back.
pub(super) fn http_stand_in(answer: impl Fn(&[String], &[u8]) -> Vec<u8> + Send + Sync + 'static) -> anyhow::Result<u16> {
    use std::io::{BufRead, Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = l.local_addr()?.port();
    let answer = std::sync::Arc::new(answer);
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let answer = answer.clone();
            std::thread::spawn(move || {
                let Ok(c) = s.try_clone() else { return };
                let (mut r, mut w) = (std::io::BufReader::new(c), s);
                loop {
                    let mut headers = vec![];
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        headers.push(line.to_ascii_lowercase());
                    }
                    let len =
                        headers.iter().find_map(|h| h.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).is_err() || w.write_all(&answer(&headers, &body)).is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(port)
}

pub(super) fn pct(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// Completes a claimed task the way a worker with nothing to do would.
pub(super) async fn complete(p: &Ports, t: &Task) -> StoreResult<()> {
    let tok = t.lease.as_ref().map(|l| l.token.clone()).unwrap_or_default();
    let ok = Outcome::Succeeded { result: String::new(), work_products: Default::default(), review: false };
    p.tasks.finish(&t.id, &tok, ok, SystemClock.now()).await.map(|_| ())
}

pub(super) fn cpu_time() -> Duration {
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
