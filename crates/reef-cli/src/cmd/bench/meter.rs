//! What the metered endpoint costs per LLM call: a chat call through `reef bridge`'s forwarder and
//! REEF's meter (admission, request shaping, usage read, the call recorded in the store) against
//! the same call straight to the same gateway — a local stand-in that answers at once, so the
//! figure is REEF's overhead alone — interleaved in the same run.

use super::{pct, Out};
use reef_core::config::{Config, Defaults};
use reef_core::engine::budget::Budget;
use reef_core::engine::exec::Job;
use reef_core::engine::meter::Meter;
use reef_core::factory::Factory;
use reef_core::rules::pricing::PriceBook;
use reef_core::*;
use reef_store::sqlite::SqliteStore;
use std::sync::Arc;
use std::time::Instant;

/// A gateway stand-in on 127.0.0.1: every request (keep-alive) gets one chat completion with usage.
fn gateway() -> anyhow::Result<u16> {
    let body = r#"{"id":"b","object":"chat.completion","model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#;
    let answer = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-litellm-response-cost: 0.000018\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let port = super::http_stand_in(move |_, _| answer.clone().into_bytes())?;
    Ok(port)
}

pub async fn meter(calls: usize, out: &Out) -> anyhow::Result<()> {
    let port = gateway()?;
    let dir = tempfile::tempdir()?;
    let d =
        Defaults { data_dir: dir.path().into(), machine_timezone: Some("UTC".into()), host: "bench".into(), cache_dir: dir.path().into() };
    let cfg = Config::resolve(None, &|_| None, &d)?;
    let ports = SqliteStore::open(&dir.path().join("reef.db"))?.ports();
    let f = Factory::new(ports, Arc::new(SystemClock), Arc::new(cfg));
    let prices = PriceBook::from_litellm_yaml(
        "model_list:\n  - model_name: bench\n    model_info: {input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}\n",
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let meter = Meter::new(Budget { factory: f.clone(), prices: Arc::new(prices) }, 64);
    let sock = reef_host::bind_private(&dir.path().join("run").join("llm.sock")).map_err(|e| anyhow::anyhow!(e))?;
    let path = sock.file.0.clone();
    let stop = tokio_util::sync::CancellationToken::new();
    let gw = format!("http://127.0.0.1:{port}");
    tokio::spawn(reef_host::meter::run(meter.clone(), gw.clone(), None, sock, stop.clone()));
    // The forwarder `reef bridge` runs inside a sandbox: loopback TCP to the endpoint's socket.
    let bridge = reef_host::bridge::listen(0, path, None).await?;
    let (task, _) = f.ports.tasks.create(NewTask::titled("bench"), f.now()).await?;
    let job = Job {
        idempotency_key: Job::idempotency_key_for(&task),
        task,
        agent: f.config.agents[0].clone(),
        tier: ModelTier::Cheap,
        attempt: 1,
        workdir: dir.path().into(),
        memories: vec![],
    };
    let pass = meter.open(&job, "bench", Usd::from_dollars(1_000_000.0), vec![]);
    let http = reqwest::Client::builder().no_proxy().build()?;
    let body = serde_json::json!({"model": "bench", "max_tokens": 16, "messages": [{"role": "user", "content": "Say ok."}]});
    let call = |base: String, key: &str| {
        let req = http.post(format!("{base}/v1/chat/completions")).bearer_auth(key).json(&body);
        async move {
            let t = Instant::now();
            let r = req.send().await?;
            anyhow::ensure!(r.status().is_success(), "HTTP {}", r.status());
            r.bytes().await?;
            Ok::<f64, anyhow::Error>(t.elapsed().as_secs_f64() * 1000.0)
        }
    };
    let metered_url = format!("http://{bridge}");
    // A warm-up of each, then both interleaved so they see the same machine.
    call(gw.clone(), "x").await?;
    call(metered_url.clone(), pass.credential.expose()).await?;
    let (mut bare, mut metered) = (vec![], vec![]);
    for _ in 0..calls.max(1) {
        bare.push(call(gw.clone(), "x").await?);
        metered.push(call(metered_url.clone(), pass.credential.expose()).await?);
    }
    pass.run.quiet(std::time::Duration::from_secs(10)).await;
    let books = pass.run.books();
    stop.cancel();
    let (b50, m50) = (pct(bare.clone(), 0.5), pct(metered.clone(), 0.5));
    let (b95, m95) = (pct(bare, 0.95), pct(metered, 0.95));
    let v = serde_json::json!({"calls": calls, "direct_ms_p50": b50, "direct_ms_p95": b95, "metered_ms_p50": m50, "metered_ms_p95": m95,
        "added_ms_p50": m50 - b50, "ratio_p50": m50 / b50, "metered_calls_counted": books.calls, "metered_spend": books.spent});
    out.print(&v, || {
        format!(
            "one chat call, {calls} each, interleaved (gateway: a local stand-in that answers at once)\n  \
             straight to the gateway            p50 {b50:.2} ms  p95 {b95:.2} ms\n  \
             bridge + REEF's meter + record     p50 {m50:.2} ms  p95 {m95:.2} ms\n  \
             the meter adds {:.2} ms per call (ratio {:.2}x); it counted {} calls, {}",
            m50 - b50,
            m50 / b50,
            books.calls,
            books.spent
        )
    });
    anyhow::ensure!(books.calls as usize == calls + 1, "the meter counted {} calls of {}", books.calls, calls + 1);
    Ok(())
}
