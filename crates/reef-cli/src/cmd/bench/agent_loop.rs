//! What REEF's agent loop costs per step on its own — reservation, the answer parsed and settled,
//! the step kept (twice), the tool call through the toolbox (policy, audit, its event), the next
//! request built — against the gateway call itself, measured in the same run. The gateway is a
//! local stand-in that answers each step with a tool call (after `--gateway-ms`), so the gaps
//! between its answer and the next request are REEF's alone.

use super::{pct, Out};
use reef_core::config::{Config, Defaults};
use reef_core::engine::budget::Budget;
use reef_core::engine::exec::{Executor, Job};
use reef_core::engine::llm::LlmExecutor;
use reef_core::factory::Factory;
use reef_core::rules::pricing::PriceBook;
use reef_core::*;
use reef_store::sqlite::SqliteStore;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When the stand-in got each request and when it had its answer ready.
type Marks = Arc<Mutex<Vec<(Instant, Instant)>>>;

/// A gateway stand-in: a `report_progress` call per step until the request holds `steps`
/// assistant messages, then `finish`; each answer `delay` after its request.
fn gateway(steps: usize, delay: Duration, marks: Marks) -> anyhow::Result<u16> {
    let port = super::http_stand_in(move |_, body| {
        let arrived = Instant::now();
        let played = String::from_utf8_lossy(body).matches("\"role\":\"assistant\"").count();
        let (name, args) = if played >= steps {
            ("finish", serde_json::json!({"result": "done"}))
        } else {
            ("report_progress", serde_json::json!({"message": format!("step {played}")}))
        };
        let answer = serde_json::json!({
            "id": "b", "object": "chat.completion", "created": 0, "model": "bench",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
                "tool_calls": [{"id": format!("c{played}"), "type": "function", "function": {"name": name, "arguments": args.to_string()}}]}}],
            "usage": {"prompt_tokens": 400, "completion_tokens": 20, "total_tokens": 420}
        })
        .to_string();
        std::thread::sleep(delay);
        marks.lock().unwrap_or_else(|p| p.into_inner()).push((arrived, Instant::now()));
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-litellm-response-cost: 0.00044\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        )
        .into_bytes()
    })?;
    Ok(port)
}

pub async fn agent_loop(steps: usize, runs: usize, gateway_ms: u64, out: &Out) -> anyhow::Result<()> {
    let steps = steps.clamp(1, 200);
    let marks: Marks = Arc::default();
    let port = gateway(steps, Duration::from_millis(gateway_ms), marks.clone())?;
    let dir = tempfile::tempdir()?;
    let d =
        Defaults { data_dir: dir.path().into(), machine_timezone: Some("UTC".into()), host: "bench".into(), cache_dir: dir.path().into() };
    let mut cfg = Config::resolve(None, &|_| None, &d)?;
    cfg.engine.agent_loop.max_steps = steps as u32 + 2;
    let ports = SqliteStore::open(&dir.path().join("reef.db"))?.ports();
    let f = Factory::new(ports, Arc::new(SystemClock), Arc::new(cfg));
    let prices = PriceBook::from_litellm_yaml(
        "model_list:\n  - model_name: bench\n    model_info: {input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}\n",
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let budget = Budget { factory: f.clone(), prices: Arc::new(prices) };
    let llm = LlmExecutor::new(&format!("http://127.0.0.1:{port}"), None, budget, 256, Duration::from_secs(60));
    let mut agent = f.config.agents[0].clone();
    agent.model = Some("bench".into());
    agent.tools = vec!["report_progress".into()];
    let (mut gaps, mut calls) = (vec![], vec![]);
    let mut wall = vec![];
    for r in 0..runs.max(1) + 1 {
        let (task, _) = f.ports.tasks.create(NewTask::titled(format!("bench loop {r}")), f.now()).await?;
        // Claimed as a worker claims it: the loop checks before every tool call that it holds it.
        let task = f
            .ports
            .tasks
            .claim("bench", &reef_core::ClaimFilter::default(), Duration::from_secs(3600), f.now())
            .await?
            .filter(|t| t.id == task.id);
        let task = task.ok_or_else(|| anyhow::anyhow!("the bench could not claim its own task"))?;
        let job = Job {
            idempotency_key: Job::idempotency_key_for(&task),
            attempt: task.attempts,
            task,
            agent: agent.clone(),
            tier: ModelTier::Cheap,
            workdir: dir.path().into(),
            memories: vec![],
        };
        marks.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let t = Instant::now();
        let done = llm.run(&job, tx, tokio_util::sync::CancellationToken::new()).await?;
        let took = t.elapsed();
        anyhow::ensure!(done.output == "done", "the loop ended with {:?}", done.output);
        if r == 0 {
            continue; // warm-up
        }
        wall.push(took.as_secs_f64() * 1000.0);
        let m = marks.lock().unwrap_or_else(|p| p.into_inner()).clone();
        anyhow::ensure!(m.len() == steps + 1, "{} gateway calls for {} steps", m.len(), steps + 1);
        for (i, (arrived, answered)) in m.iter().enumerate() {
            calls.push(answered.duration_since(*arrived).as_secs_f64() * 1000.0);
            if let Some((next, _)) = m.get(i + 1) {
                gaps.push(next.duration_since(*answered).as_secs_f64() * 1000.0);
            }
        }
    }
    let (g50, g99) = (pct(gaps.clone(), 0.5), pct(gaps.clone(), 0.99));
    let (c50, c99) = (pct(calls.clone(), 0.5), pct(calls, 0.99));
    let share = |gateway: f64| 100.0 * g50 / (g50 + gateway);
    let v = serde_json::json!({"steps_per_run": steps + 1, "runs": runs, "gateway_ms": gateway_ms,
        "reef_ms_per_step_p50": g50, "reef_ms_per_step_p99": g99, "gateway_ms_p50": c50, "gateway_ms_p99": c99,
        "reef_share_pct_vs_this_gateway": share(c50), "reef_share_pct_vs_a_1s_call": share(1000.0),
        "run_ms_p50": pct(wall, 0.5)});
    out.print(&v, || {
        format!(
            "{runs} runs of {} steps (a tool call each, then finish), against a gateway stand-in answering after {gateway_ms} ms\n  \
             REEF per step (answer settled, step kept twice, tool run and audited, next call reserved)  p50 {g50:.2} ms  p99 {g99:.2} ms\n  \
             the gateway call itself                                                                   p50 {c50:.2} ms  p99 {c99:.2} ms\n  \
             REEF's share of a step: {:.1} % against this gateway, {:.2} % against a 1 s model call",
            steps + 1,
            share(c50),
            share(1000.0)
        )
    });
    Ok(())
}
