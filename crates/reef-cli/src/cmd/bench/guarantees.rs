//! What the guarantees cost: an agent start inside bubblewrap against a bare spawn of the same
//! command, and the webhook relay's in-order delivery rate against a bare HTTP post loop to the
//! same receiver — each baseline measured in the same run.

use super::{pct, Out};
use reef_core::config::{Config, Defaults};
use reef_core::engine::relay;
use reef_core::engine::sandbox::{self, Binds, Network};
use reef_core::factory::Factory;
use reef_core::*;
use reef_store::sqlite::SqliteStore;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Starts of `sh -c true`, bare and contained, interleaved so both see the same machine.
pub fn sandbox_start(starts: usize, out: &Out) -> anyhow::Result<()> {
    let bwrap = sandbox::find_bwrap().ok_or_else(|| anyhow::anyhow!("bubblewrap is not installed (Debian: apt-get install bubblewrap)"))?;
    sandbox::probe(&bwrap).map_err(|e| anyhow::anyhow!("{e}"))?;
    let tmp = tempfile::tempdir()?;
    let (data, work) = (tmp.path().join("data"), tmp.path().join("work"));
    std::fs::create_dir_all(&data)?;
    std::fs::create_dir_all(&work)?;
    let argv = vec!["sh".to_string(), "-c".to_string(), "true".to_string()];
    let binds = Binds { read_only: sandbox::command_paths(&argv, std::env::var("PATH").ok().as_deref()), ..Default::default() };
    let wrapped = sandbox::wrap(&bwrap, &argv, &work, &binds, Network::None, &data).map_err(|e| anyhow::anyhow!("{e}"))?;
    let run = |a: &[String]| -> anyhow::Result<f64> {
        let t = Instant::now();
        let st = std::process::Command::new(&a[0]).args(&a[1..]).current_dir(&work).status()?;
        anyhow::ensure!(st.success(), "{} exited with {st}", a[0]);
        Ok(t.elapsed().as_secs_f64() * 1000.0)
    };
    let (mut bare, mut contained) = (vec![], vec![]);
    for _ in 0..starts.max(1) {
        bare.push(run(&argv)?);
        contained.push(run(&wrapped)?);
    }
    let (b50, c50) = (pct(bare.clone(), 0.5), pct(contained.clone(), 0.5));
    let (b95, c95) = (pct(bare, 0.95), pct(contained, 0.95));
    let v = serde_json::json!({"starts": starts, "bare_ms_p50": b50, "bare_ms_p95": b95, "bubblewrap_ms_p50": c50, "bubblewrap_ms_p95": c95,
        "added_ms_p50": c50 - b50, "ratio_p50": c50 / b50});
    out.print(&v, || {
        format!(
            "agent start (sh -c true), {starts} each, interleaved\n  bare spawn      p50 {b50:.2} ms  p95 {b95:.2} ms\n  in bubblewrap   p50 {c50:.2} ms  p95 {c95:.2} ms\n  \
             the sandbox adds {:.2} ms per start (ratio {:.2}x)",
            c50 - b50,
            c50 / b50
        )
    });
    Ok(())
}

/// Event ids in the order a receiver got them.
type Arrivals = Arc<std::sync::Mutex<Vec<String>>>;

/// A receiver on 127.0.0.1 that answers 200 to everything and counts what it was sent, in order.
fn receiver() -> anyhow::Result<(u16, Arc<AtomicUsize>, Arrivals)> {
    let (n, order) = (Arc::new(AtomicUsize::new(0)), Arc::new(std::sync::Mutex::new(Vec::new())));
    let (n2, o2) = (n.clone(), order.clone());
    let port = super::http_stand_in(move |headers, _body| {
        n2.fetch_add(1, Ordering::SeqCst);
        if let Some(id) = headers.iter().find_map(|h| h.strip_prefix("x-reef-event-id:")) {
            o2.lock().unwrap_or_else(|p| p.into_inner()).push(id.trim().to_string());
        }
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()
    })?;
    Ok((port, n, order))
}

/// `events` approval events delivered in log order by the relay, against posting the same number
/// of same-sized bodies to the same receiver with the same HTTP client.
pub async fn events(events: usize, out: &Out) -> anyhow::Result<()> {
    let (port, got, order) = receiver()?;
    let dir = tempfile::tempdir()?;
    let d =
        Defaults { data_dir: dir.path().into(), machine_timezone: Some("UTC".into()), host: "bench".into(), cache_dir: dir.path().into() };
    let toml = format!(
        "[[webhooks]]\nname = \"bench\"\nurl = \"http://127.0.0.1:{port}/hook\"\nevents = [\"approval.requested\"]\nsecret = \"REEF_WEBHOOK_BENCH_SECRET\"\n"
    );
    let cfg = Config::resolve(Some(&toml), &|k| (k == "REEF_WEBHOOK_BENCH_SECRET").then(|| "whsec_bench_secret_value".to_string()), &d)?;
    let ports = SqliteStore::open(&dir.path().join("reef.db"))?.ports();
    let f = Factory::new(ports, Arc::new(SystemClock), Arc::new(cfg));
    let http = reqwest::Client::new();
    let sub = f.config.webhooks[0].clone();
    let links = reef_core::links::maker(&f);
    // The subscription starts at the log's end, then the events are written: one in ten wanted,
    // the rest agent output it passes over (the mix a running factory writes).
    relay::pass(&f, &http, &sub, links.as_ref()).await?;
    let mut wanted = vec![];
    for i in 0..events * 10 {
        let kind = if i % 10 == 0 { "approval.requested" } else { "task.output" };
        let ev = Event {
            id: new_id(),
            kind: kind.into(),
            at: f.now(),
            actor: "bench".into(),
            subject: Some("t".into()),
            data: serde_json::json!({"i": i}),
        };
        if i % 10 == 0 {
            wanted.push(ev.id.clone());
        }
        f.ports.events.append(ev).await?;
    }
    let t = Instant::now();
    while got.load(Ordering::SeqCst) < events {
        let p = relay::pass(&f, &http, &sub, links.as_ref()).await?;
        if p.delivered == 0 && p.retry_in.is_some() {
            anyhow::bail!("the receiver refused a delivery");
        }
    }
    let relay_s = t.elapsed().as_secs_f64();
    let in_order = *order.lock().unwrap_or_else(|p| p.into_inner()) == wanted;
    // Baseline: the same number of posts of a body the same size, one after another.
    let body = vec![b'x'; 600];
    let before = got.load(Ordering::SeqCst);
    let t = Instant::now();
    for _ in 0..events {
        http.post(format!("http://127.0.0.1:{port}/hook")).body(body.clone()).send().await?.error_for_status()?;
    }
    let bare_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(got.load(Ordering::SeqCst) - before == events, "the baseline posts did not all arrive");
    let (relay_rate, bare_rate) = (events as f64 / relay_s, events as f64 / bare_s);
    let v = serde_json::json!({"events": events, "written": events * 10, "relay_per_s": relay_rate, "in_order": in_order,
        "baseline_bare_posts_per_s": bare_rate, "ratio": relay_rate / bare_rate});
    out.print(&v, || {
        format!(
            "webhook relay: {events} wanted events among {} written, delivered in log order: {}\n  relay        {relay_rate:.0} events/s (signed, cursor saved after each)\n  \
             bare posts   {bare_rate:.0} posts/s (same receiver, same client)\n  ratio {:.2}x",
            events * 10,
            if in_order { "yes" } else { "NO" },
            relay_rate / bare_rate
        )
    });
    anyhow::ensure!(in_order, "the relay delivered out of order");
    Ok(())
}
