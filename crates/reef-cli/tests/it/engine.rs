//! The engine end to end: real `reef serve` processes on a real store file, the real LiteLLM
//! proxy (mocked providers), real child processes.

use crate::common::{sigkill, sigterm, wait_until, Env};
use crate::gateway::gateway;
use std::time::{Duration, Instant};

pub(crate) fn llm_env(e: &Env, extra_config: &str) -> Option<Vec<(String, String)>> {
    let g = gateway("engine test")?;
    // Lines before the first [table] of `extra_config` belong to [engine]. LiteLLM's mock answers
    // text and never calls a tool: these tests are of the one-answer executor, so their agents
    // are the default four without tools (with tools they run as REEF's loop: agent_loop.rs).
    let roster = if extra_config.contains("[[agents]]") { String::new() } else { one_answer_roster() };
    e.write_config(&format!(
        "[engine]\nlease_seconds = 2\nlitellm_config = {:?}\n{extra_config}\n{roster}",
        g.config.display().to_string()
    ));
    Some(vec![("REEF_LLM_BASE_URL".into(), g.url.clone()), ("REEF_LLM_API_KEY".into(), g.key.clone())])
}

/// The default agents as config, each without tools (one answer per task).
pub(crate) fn one_answer_roster() -> String {
    reef_core::domain::agent::default_agents()
        .iter()
        .map(|a| {
            format!(
                "[[agents]]\nname = {:?}\nrole = {:?}\ncapabilities = {:?}\nmodel_tier = {:?}\ndaily_cap_usd = {}\nmax_concurrent = {}\n",
                a.name,
                a.role,
                a.capabilities,
                a.model_tier.map(|t| t.as_str()).unwrap_or("cheap"),
                a.daily_cap_usd.dollars(),
                a.max_concurrent
            )
        })
        .collect()
}

pub(crate) fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

#[test]
fn llm_tasks_run_through_the_gateway_and_their_spend_is_recorded() {
    let e = Env::new();
    let Some(env) = llm_env(&e, "") else { return };
    e.ok(&["task", "add", "Summarise uptime-monitor pricing", "--type", "research"]);
    e.ok(&["task", "add", "Write release notes", "--agent", "rex", "--tier", "cheap"]);
    e.ok(&["task", "add", "Plan the launch", "--tier", "frontier", "--agent", "kev"]);
    let mut serve = e.serve("both", &pairs(&env));
    let done = wait_until(Duration::from_secs(60), || e.count("done") == 3);
    sigterm(&mut serve);
    assert!(
        done,
        "all three done: {:?}",
        e.tasks().iter().map(|t| (t["title"].clone(), t["status"].clone(), t["error"].clone())).collect::<Vec<_>>()
    );
    let tasks = e.tasks();
    let result = |title: &str| tasks.iter().find(|t| t["title"] == title).unwrap()["result"].as_str().unwrap().to_string();
    assert!(result("Write release notes").starts_with("Cheap answer"), "ran on the cheap tier");
    assert!(result("Plan the launch").starts_with("Frontier answer"));
    assert!(result("Summarise uptime-monitor pricing").starts_with("Local draft"), "research routes to Scout, who starts local");
    let s = e.json(&["status"]);
    let spent = |agent: &str| {
        s["caps_today"].as_array().unwrap().iter().find(|c| c["scope"].as_str().unwrap().starts_with(&format!("agent:{agent}:"))).unwrap()
            ["spent"]
            .as_i64()
            .unwrap()
    };
    // 10 prompt + 20 completion tokens (LiteLLM's mock) at the test prices.
    assert_eq!(spent("rex"), 50, "cheap: 10 × $0.000001 + 20 × $0.000002 = $0.00005");
    assert_eq!(spent("kev"), 5_000, "frontier: $0.005");
    assert_eq!(spent("scout"), 0, "local is free");
    let glob = s["caps_today"][0]["reserved"].as_i64().unwrap();
    assert_eq!(glob, 0, "every reservation was settled or released");
}

#[test]
fn a_failing_tier_escalates_to_the_next_and_a_dead_model_fails_with_the_reason() {
    let e = Env::new();
    // `cheap` is mapped to a model that always answers 500; `mid` works.
    let Some(env) = llm_env(&e, "[llm.tiers]\ncheap = \"broken\"\n") else { return };
    e.ok(&["task", "add", "Needs a better model", "--agent", "rex", "--tier", "cheap"]);
    let mut serve = e.serve("both", &pairs(&env));
    let ok = wait_until(Duration::from_secs(60), || e.count("done") == 1);
    sigterm(&mut serve);
    assert!(ok, "{:?}", e.tasks());
    let t = &e.tasks()[0];
    assert_eq!(t["model_tier"], "mid", "escalated one tier");
    assert!(t["result"].as_str().unwrap().starts_with("Mid answer"));
    assert_eq!(t["attempts"], 2);
    // Outcome analytics see both attempts: one failure on cheap, one success on mid.
    let rows = e.json(&["analytics"]);
    let row = |tier: &str| rows.as_array().unwrap().iter().find(|r| r["agent"] == "rex" && r["tier"] == tier).cloned().unwrap();
    assert_eq!((row("cheap")["attempts"].as_u64(), row("cheap")["successes"].as_u64()), (Some(1), Some(0)));
    assert_eq!((row("mid")["attempts"].as_u64(), row("mid")["successes"].as_u64()), (Some(1), Some(1)));
    assert!(row("mid")["cost"].as_i64().unwrap() > 0, "the successful call's cost is counted");
}

#[test]
fn approve_before_never_runs_before_approval_even_across_a_crash() {
    let e = Env::new();
    let effects = e.fx().join("effects.log");
    e.write_config(&format!(
        "[engine]\nlease_seconds = 1\n[[executors]]\nname = \"deployer\"\nkinds = [\"deploy\"]\ncommand = [\"sh\", \"-c\", \"echo $REEF_IDEMPOTENCY_KEY >> {}; echo deployed\"]\n{}",
        effects.display(),
        e.fx_writable()
    ));
    e.with_prices();
    let t = e.json(&["task", "add", "Deploy Invoicely", "--type", "deploy", "--agent", "rex", "--action-class", "production_deploy"]);
    let id = t["_id"].as_str().unwrap().to_string();
    let mut serve = e.serve("both", &[]);
    assert!(wait_until(Duration::from_secs(20), || e.count("awaiting_approval") == 1), "{:?}", e.tasks());
    sigkill(&mut serve);
    let mut serve = e.serve("both", &[]);
    // Give the restarted engine several lease periods: it must not run the task.
    let ran = wait_until(Duration::from_secs(4), || effects.exists());
    assert!(!ran, "the deploy ran without approval");
    assert_eq!(e.count("awaiting_approval"), 1);
    let a = e.json(&["approvals"])["approvals"][0]["_id"].as_str().unwrap().to_string();
    e.ok(&["approve", &a]);
    assert!(wait_until(Duration::from_secs(20), || e.count("done") == 1), "{:?}", e.tasks());
    sigterm(&mut serve);
    let log = std::fs::read_to_string(&effects).unwrap();
    assert_eq!(log.lines().collect::<Vec<_>>(), vec![format!("reef-task-{id}")], "deployed once, with the task's idempotency key");
}

#[test]
fn never_auto_goes_to_a_person_and_bad_executors_fail_clearly() {
    let e = Env::new();
    e.write_config(
        "[engine]\nlease_seconds = 2\n[[executors]]\nname = \"ghost\"\nkinds = [\"ghost\"]\ncommand = [\"/nonexistent/agent-cli\", \"{prompt}\"]\n\
         [[executors]]\nname = \"firehose\"\nkinds = [\"firehose\"]\ncommand = [\"sh\", \"-c\", \"head -c 52428800 /dev/zero | tr '\\\\0' x; echo\"]\noutput_cap_bytes = 65536\n\
         [[executors]]\nname = \"silent\"\nkinds = [\"silent\"]\ncommand = [\"true\"]\n",
    );
    e.with_prices();
    e.ok(&["task", "add", "Rotate the Stripe key", "--type", "ghost", "--agent", "rex", "--action-class", "security_change"]);
    e.ok(&["task", "add", "Run a missing agent", "--type", "ghost", "--agent", "rex"]);
    e.ok(&["task", "add", "Print 50 MB", "--type", "firehose", "--agent", "scout"]);
    e.ok(&["task", "add", "Say nothing", "--type", "silent", "--agent", "blaze"]);
    let mut serve = e.serve("both", &[]);
    let settled = wait_until(Duration::from_secs(60), || {
        e.tasks().iter().all(|t| ["done", "failed", "needs_human"].contains(&t["status"].as_str().unwrap()))
    });
    sigterm(&mut serve);
    let tasks = e.tasks();
    assert!(settled, "{tasks:?}");
    let get = |title: &str| tasks.iter().find(|t| t["title"] == title).unwrap().clone();
    assert_eq!(get("Rotate the Stripe key")["status"], "needs_human", "security changes are never automatic");
    let missing = get("Run a missing agent");
    assert_eq!(missing["status"], "failed");
    assert!(missing["error"].as_str().unwrap().contains("not found"), "{missing}");
    let big = get("Print 50 MB");
    assert_eq!(big["status"], "done");
    assert!(big["result"].as_str().unwrap().len() < 70_000, "50 MB of output is capped to the executor's limit");
    assert!(big["result"].as_str().unwrap().contains("dropped by REEF"));
    let silent = get("Say nothing");
    assert_eq!(silent["status"], "failed", "an empty completion is a failure");
    assert!(silent["error"].as_str().unwrap().contains("empty completion"));
}

#[test]
fn a_gateway_answering_garbage_fails_the_task_and_the_engine_keeps_going() {
    let e = Env::new();
    // A fake gateway that answers every request with 200 and a body that is not JSON.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for s in listener.incoming().flatten() {
            let mut s = s;
            let mut buf = [0u8; 65536];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n<html>oops</ht>");
        }
    });
    e.write_config(&format!(
        "[engine]\nlease_seconds = 2\nmax_attempts = 1\nlitellm_config = {:?}\n",
        crate::common::root().join("tests/fixtures/litellm-test.yaml").display().to_string()
    ));
    e.ok(&["task", "add", "Ask the broken gateway", "--agent", "rex", "--tier", "cheap"]);
    let url = format!("http://127.0.0.1:{port}");
    let mut serve = e.serve("both", &[("REEF_LLM_BASE_URL", url.as_str())]);
    let failed = wait_until(Duration::from_secs(30), || e.count("failed") == 1);
    // Still alive and working: a later task is taken too.
    e.ok(&["task", "add", "Second try", "--agent", "rex", "--tier", "cheap"]);
    let second = wait_until(Duration::from_secs(30), || e.count("failed") == 2);
    let alive = serve.try_wait().unwrap().is_none();
    sigterm(&mut serve);
    assert!(failed && second, "{:?}", e.tasks());
    assert!(alive, "the engine survived garbage");
    let t = &e.tasks()[0];
    assert!(t["error"].as_str().unwrap().contains("not a chat completion"), "{t}");
}

#[test]
fn two_dispatchers_one_active_and_the_other_takes_over_within_the_lease() {
    let e = Env::new();
    e.write_config("[engine]\nlease_seconds = 2\n");
    e.with_prices();
    let mut a = e.serve("dispatcher", &[]);
    assert!(wait_until(Duration::from_secs(20), || e.json(&["status"])["dispatcher"].is_string()));
    let mut b = e.serve("dispatcher", &[]);
    std::thread::sleep(Duration::from_secs(3)); // b has had more than a lease period to try
    let holder = e.json(&["status"])["dispatcher"].as_str().unwrap().to_string();
    assert!(holder.contains(&format!(":{}:", a.id())), "the first stays active: {holder}");
    sigkill(&mut a);
    let killed_at = Instant::now();
    let took_over = wait_until(Duration::from_secs(10), || {
        e.json(&["status"])["dispatcher"].as_str().is_some_and(|h| h.contains(&format!(":{}:", b.id())))
    });
    let took = killed_at.elapsed();
    sigterm(&mut b);
    assert!(took_over, "the standby took over");
    assert!(took < Duration::from_secs(4), "within the lease (2 s) plus a renewal period: took {took:?}");
}

/// Writes `n` seed-shaped tasks of type `kind` for `agent` into an archive and restores it.
fn load_tasks(e: &Env, n: usize, kind: &str, agent: &str) -> Vec<String> {
    use std::io::Write;
    let path = e.dir.path().join("load.reef.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
    writeln!(gz, "{}", serde_json::json!({"reef_backup": 1})).unwrap();
    let mut ids = vec![];
    for i in 0..n {
        let id = format!("load-{i:05}");
        let doc = serde_json::json!({"_id": id, "title": format!("load {i}"), "status": "pending", "priority": (i % 3) as i64,
            "created_at": "2026-11-21T08:00:00.000Z", "assigned_to": agent, "type": kind, "attempts": 0});
        writeln!(gz, "{}", serde_json::json!({"c": "tasks", "d": doc})).unwrap();
        ids.push(id);
    }
    gz.finish().unwrap();
    e.ok(&["restore", "--force", path.to_str().unwrap()]);
    ids
}

pub(crate) fn pids_with(marker: &str) -> Vec<i32> {
    let mut v = vec![];
    for d in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = d.file_name().to_string_lossy().parse::<i32>() else { continue };
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(marker) {
                v.push(pid);
            }
        }
    }
    v
}

#[test]
fn serve_processes_killed_at_random_lose_nothing_and_repeat_no_outside_effect() {
    use rand::{Rng, SeedableRng};
    const N: usize = 1000;
    let e = Env::new();
    let fx = e.fx();
    std::fs::create_dir_all(&fx).unwrap();
    let marker = format!("reef-crash-{}", std::process::id());
    // A task in flight at several of the 12 kills uses up an attempt each time (a crashed attempt
    // counts; `an_agent_that_kills_its_worker_every_time…` proves that): this test is about loss
    // and repetition, so it allows enough attempts for every kill to land on one task.
    // The outside effect is one atomic step keyed on REEF's idempotency key (a receiver that
    // dedupes, as a real one would). If REEF handed a retry another key, the retry's effect would
    // land again under the new key: so effects == tasks although runs > tasks proves it did not.
    let script = format!(
        "echo $REEF_TASK_ID >> {d}/runs.log; mkdir -p {d}/effects/$REEF_IDEMPOTENCY_KEY; sleep 0.05; echo ok # {marker}",
        d = fx.display()
    );
    e.write_config(&format!(
        "[engine]\nlease_seconds = 2\nworkers = 6\nmax_attempts = 20\n[[agents]]\nname = \"rex\"\nrole = \"builder\"\ndaily_cap_usd = 40\nmax_concurrent = 8\n\
         [[executors]]\nname = \"effect\"\nkinds = [\"effect\"]\ncommand = [\"sh\", \"-c\", {script:?}]\n{w}",
        w = e.fx_writable()
    ));
    e.with_prices();
    let ids = load_tasks(&e, N, "effect", "rex");
    let mut procs: Vec<_> = (0..3).map(|_| e.serve("both", &[])).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let start = Instant::now();
    let mut kills = 0;
    while e.count("done") < N && start.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(rng.random_range(200..1200)));
        if kills < 12 {
            let i = rng.random_range(0..procs.len());
            sigkill(&mut procs[i]);
            kills += 1;
            procs[i] = e.serve("both", &[]);
        }
    }
    for p in &mut procs {
        sigterm(p);
    }
    let tasks = e.tasks();
    let done: Vec<&str> = tasks.iter().filter(|t| t["status"] == "done").map(|t| t["_id"].as_str().unwrap()).collect();
    assert_eq!(
        done.len(),
        N,
        "every task done after {kills} kills: {:?}",
        tasks.iter().filter(|t| t["status"] != "done").take(5).collect::<Vec<_>>()
    );
    assert_eq!(kills, 12, "the run lasted long enough to kill a process 12 times");
    // Completed once: one task.done event per task.
    let events = e.json(&["events", "--kind", "task.done", "--limit", "100000"]);
    let mut per_task = std::collections::HashMap::<String, usize>::new();
    for ev in events["events"].as_array().unwrap() {
        *per_task.entry(ev["subject"].as_str().unwrap().to_string()).or_default() += 1;
    }
    assert_eq!(per_task.len(), N);
    assert!(
        per_task.values().all(|n| *n == 1),
        "a task completed twice: {:?}",
        per_task.iter().filter(|(_, n)| **n > 1).take(3).collect::<Vec<_>>()
    );
    // Each outside effect once, under the task's key.
    let keys: std::collections::HashSet<String> =
        std::fs::read_dir(fx.join("effects")).unwrap().flatten().map(|d| d.file_name().to_string_lossy().to_string()).collect();
    assert_eq!(keys.len(), N, "one effect per task, under one key per task");
    for id in &ids {
        assert!(keys.contains(&format!("reef-task-{id}")), "task {id}'s effect happened under its key");
    }
    let runs = std::fs::read_to_string(fx.join("runs.log")).unwrap().lines().count();
    eprintln!("crash test: {N} tasks, {kills} SIGKILLs, {runs} executions (re-runs after crashes: {})", runs - N);
    assert!(wait_until(Duration::from_secs(5), || pids_with(&marker).is_empty()), "orphaned agent processes: {:?}", pids_with(&marker));
}

#[test]
fn a_contained_agent_dies_with_the_reef_that_started_it() {
    let e = Env::new();
    let flag = e.fx().join("started");
    let marker = format!("reef-contained-{}", std::process::id());
    let script = format!("touch {f}; sleep 300 # {marker}", f = flag.display());
    e.write_config(&format!(
        "[engine]\nlease_seconds = 2\n[[executors]]\nname = \"hang\"\nkinds = [\"hang\"]\ncommand = [\"sh\", \"-c\", {script:?}]\n{w}",
        w = e.fx_writable()
    ));
    e.with_prices();
    e.ok(&["task", "add", "Hang", "--type", "hang", "--agent", "rex"]);
    let mut serve = e.serve("both", &[]);
    assert!(wait_until(Duration::from_secs(20), || !pids_with(&marker).is_empty() && flag.exists()), "the agent started");
    sigkill(&mut serve);
    // bubblewrap's --die-with-parent: no orphan to reap, nothing running unsupervised meanwhile.
    assert!(wait_until(Duration::from_secs(5), || pids_with(&marker).is_empty()), "left running: {:?}", pids_with(&marker));
}

#[test]
fn a_worker_that_cannot_reach_the_store_stops_its_agent_before_the_lease_runs_out() {
    const LEASE_S: u64 = 6;
    let e = Env::new();
    let flag = e.fx().join("started");
    let marker = format!("reef-unfenced-{}", std::process::id());
    let script = format!("touch {f}; sleep 300 # {marker}", f = flag.display());
    e.write_config(&format!(
        "[engine]\nlease_seconds = {LEASE_S}\n[[executors]]\nname = \"hang\"\nkinds = [\"hang\"]\ncommand = [\"sh\", \"-c\", {script:?}]\n{w}",
        w = e.fx_writable()
    ));
    e.with_prices();
    e.ok(&["task", "add", "Run long", "--type", "hang", "--agent", "rex"]);
    let mut serve = e.serve("both", &[]);
    assert!(wait_until(Duration::from_secs(20), || !pids_with(&marker).is_empty() && flag.exists()), "the agent started");
    // Another program takes the store's write lock and keeps it: no renewal gets through (the
    // same as a store that cannot be reached). The last renewal was before this moment, so the
    // lease runs out within LEASE_S seconds of it.
    let db = e.dir.path().join("reef.db");
    let mut lock = std::process::Command::new("python3")
        .args(["-c", "import sqlite3, sys, time\nc = sqlite3.connect(sys.argv[1], isolation_level=None)\nc.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\ntime.sleep(60)"])
        .arg(&db)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(lock.stdout.as_mut().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "locked");
    let locked = Instant::now();
    let stopped = wait_until(Duration::from_secs(LEASE_S), || pids_with(&marker).is_empty());
    let took = locked.elapsed();
    let _ = lock.kill();
    let _ = lock.wait();
    sigterm(&mut serve);
    assert!(stopped, "the agent ran on past its lease while the store was out of reach: {:?}", pids_with(&marker));
    assert!(took < Duration::from_secs(LEASE_S), "stopped {took:?} after the lock; the lease ran out within {LEASE_S} s");
}

#[test]
fn a_killed_worker_s_child_is_reaped_on_restart_and_its_task_comes_back_within_the_lease() {
    let e = Env::new();
    let flag = e.fx().join("second-run");
    let marker = format!("reef-orphan-{}", std::process::id());
    // First run hangs (long sleep in its own process group); the retry finishes at once. Reaping
    // is for agents REEF runs unsandboxed: a contained one dies with REEF (test above).
    let script = format!("if [ -f {f} ]; then echo finished; else touch {f}; sleep 300; fi # {marker}", f = flag.display());
    e.write_config(&format!(
        "[sandbox]\nmode = \"off\"\n[engine]\nlease_seconds = 2\n[[executors]]\nname = \"hang\"\nkinds = [\"hang\"]\ncommand = [\"sh\", \"-c\", {script:?}]\n"
    ));
    e.with_prices();
    e.ok(&["task", "add", "Hang once", "--type", "hang", "--agent", "rex"]);
    let mut serve = e.serve("both", &[]);
    assert!(wait_until(Duration::from_secs(20), || !pids_with(&marker).is_empty() && flag.exists()), "the agent started");
    sigkill(&mut serve);
    let orphans = pids_with(&marker);
    assert!(!orphans.is_empty(), "killing REEF left its child running (the case reaping is for)");
    let killed = Instant::now();
    let mut serve = e.serve("both", &[]);
    assert!(wait_until(Duration::from_secs(10), || pids_with(&marker).iter().all(|p| !orphans.contains(p))), "orphans reaped on restart");
    assert!(wait_until(Duration::from_secs(20), || e.count("done") == 1), "{:?}", e.tasks());
    let took = killed.elapsed();
    sigterm(&mut serve);
    assert!(took < Duration::from_secs(8), "re-dispatched within the lease (2 s) plus start-up: {took:?}");
    assert_eq!(e.tasks()[0]["attempts"], 2);
}

#[test]
fn a_backend_that_answers_past_the_token_limit_is_settled_at_its_real_cost_and_raised() {
    use reef_core::engine::{budget::Budget, exec::*, llm::LlmExecutor};
    use reef_core::rules::pricing::PriceBook;
    let Some(g) = gateway("token-limit overshoot test") else { return };
    let dir = tempfile::tempdir().unwrap();
    let defaults = crate::common::defaults_in(dir.path());
    let cfg = reef_core::config::Config::resolve(Some("[caps]\nglobal_daily_usd = 5\n"), &|_| None, &defaults).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ports = reef_store::sqlite::SqliteStore::open(&dir.path().join("reef.db")).unwrap().ports();
        let f = reef_core::factory::Factory::new(ports, std::sync::Arc::new(reef_core::SystemClock), std::sync::Arc::new(cfg));
        let prices = PriceBook::from_litellm_yaml(&std::fs::read_to_string(&g.config).unwrap()).unwrap();
        let budget = Budget { factory: f.clone(), prices: std::sync::Arc::new(prices) };
        // The real LiteLLM proxy; its mocked provider (a stand-in for a paid model) always
        // answers 20 completion tokens, past the limit of 10 REEF sends.
        let exec = LlmExecutor::new(&g.url, Some(reef_core::secret::Secret::new(g.key.clone())), budget, 10, Duration::from_secs(60));
        let (task, _) = f.ports.tasks.create(reef_core::NewTask::titled("say hi"), f.now()).await.unwrap();
        let job = Job {
            idempotency_key: Job::idempotency_key_for(&task),
            task: task.clone(),
            // One answer (the mock calls no tool): the default Rex without its tools.
            agent: reef_core::domain::agent::AgentConfig { tools: vec![], ..f.config.agents[1].clone() },
            tier: reef_core::ModelTier::Cheap,
            attempt: 1,
            workdir: std::env::temp_dir(),
            memories: vec![],
        };
        let (tx, _rx) = tokio::sync::mpsc::channel(8);
        let s = exec.run(&job, tx, tokio_util::sync::CancellationToken::new()).await.expect("the call itself succeeds");
        let events = f
            .ports
            .events
            .recent(&reef_core::EventQuery { kind_prefix: Some("budget.overshoot".into()), limit: 10, ..Default::default() })
            .await
            .unwrap()
            .items;
        assert_eq!(events.len(), 1, "one overshoot raised: {events:?}");
        let d = &events[0].data;
        assert_eq!(
            (d["limit_tokens"].as_u64(), d["completion_tokens"].as_u64(), d["alert"].as_bool()),
            (Some(10), Some(20), Some(true)),
            "{d}"
        );
        let caps = f.caps_today().await.unwrap();
        assert_eq!(caps[0].spent, s.cost, "settled at the real cost");
        assert_eq!(caps[0].reserved, reef_core::Usd::ZERO, "nothing left held");
    });
}

#[test]
fn sixty_four_concurrent_calls_with_a_pricier_fallback_never_pass_the_cap() {
    use reef_core::engine::{budget::Budget, exec::*, llm::LlmExecutor};
    use reef_core::rules::pricing::PriceBook;
    let Some(g) = gateway("budget test") else { return };
    let dir = tempfile::tempdir().unwrap();
    let defaults = crate::common::defaults_in(dir.path());
    // `flaky` always fails over to `frontier`, 100x its price: reservations must assume frontier.
    let text = "[caps]\nglobal_daily_usd = 0.05\n[engine]\nllm_max_tokens = 20\n\
                [[agents]]\nname = \"rex\"\nrole = \"builder\"\ndaily_cap_usd = 40\nmodel = \"flaky\"\n";
    let cfg = reef_core::config::Config::resolve(Some(text), &|_| None, &defaults).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ports = reef_store::sqlite::SqliteStore::open(&dir.path().join("reef.db")).unwrap().ports();
        let f = reef_core::factory::Factory::new(ports, std::sync::Arc::new(reef_core::SystemClock), std::sync::Arc::new(cfg));
        let prices = PriceBook::from_litellm_yaml(&std::fs::read_to_string(&g.config).unwrap()).unwrap();
        let budget = Budget { factory: f.clone(), prices: std::sync::Arc::new(prices) };
        let exec = std::sync::Arc::new(LlmExecutor::new(
            &g.url,
            Some(reef_core::secret::Secret::new(g.key.clone())),
            budget,
            20,
            Duration::from_secs(60),
        ));
        let (task, _) = f.ports.tasks.create(reef_core::NewTask::titled("price check"), f.now()).await.unwrap();
        let agent = f.config.agents[0].clone();
        let mut hs = vec![];
        for _ in 0..64 {
            let (exec, task, agent) = (exec.clone(), task.clone(), agent.clone());
            hs.push(tokio::spawn(async move {
                let job = Job {
                    idempotency_key: Job::idempotency_key_for(&task),
                    task,
                    agent,
                    tier: reef_core::ModelTier::Cheap,
                    attempt: 1,
                    workdir: std::env::temp_dir(),
                    memories: vec![],
                };
                let (tx, _rx) = tokio::sync::mpsc::channel(1);
                exec.run(&job, tx, tokio_util::sync::CancellationToken::new()).await
            }));
        }
        let (mut ok, mut refused) = (0, 0);
        for h in hs {
            match h.await.unwrap() {
                Ok(s) => {
                    assert!(s.output.starts_with("Frontier answer"), "fell back to frontier");
                    ok += 1
                }
                Err(ExecError::BudgetRefused { .. }) => refused += 1,
                Err(other) => panic!("unexpected {other}"),
            }
        }
        let caps = f.caps_today().await.unwrap();
        let global = &caps[0];
        assert!(global.spent <= global.cap, "spent {} passed the cap {}", global.spent, global.cap);
        assert_eq!(global.reserved, reef_core::Usd::ZERO, "nothing left held");
        let calls = f
            .ports
            .ledger
            .spend(reef_core::SpendGroup::Agent, f.now() - chrono::Duration::hours(1), f.now() + chrono::Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(calls[0].cost, global.spent, "the ledger agrees with the recorded calls");
        assert_eq!(global.spent, reef_core::Usd::from_dollars(0.005) * ok as i64, "each call settled at its real (fallback) cost");
        assert!(ok >= 5 && refused > 0, "some calls fit, the rest were refused: {ok} ok, {refused} refused");
    });
}

#[test]
fn a_reservation_held_by_a_killed_worker_is_released_when_it_expires() {
    let e = Env::new();
    e.write_config(
        "[engine]\nlease_seconds = 2\nreservation_seconds = 3\n\
         [[executors]]\nname = \"slow\"\nkinds = [\"slow\"]\ncommand = [\"sleep\", \"300\"]\nsoft_cap_usd = 2\n",
    );
    e.with_prices();
    e.ok(&["task", "add", "Slow CLI agent", "--type", "slow", "--agent", "rex"]);
    let reserved = |e: &Env| e.json(&["status"])["caps_today"][0]["reserved"].as_i64().unwrap();
    let mut serve = e.serve("both", &[]);
    assert!(wait_until(Duration::from_secs(20), || reserved(&e) == 2_000_000), "the soft cap is reserved up front");
    sigkill(&mut serve);
    e.ok(&["stop", "rex", "--reason", "test: keep the task from running again"]);
    let mut serve = e.serve("dispatcher", &[]);
    assert!(wait_until(Duration::from_secs(15), || reserved(&e) == 0), "the dead worker's reservation expired and was released");
    sigterm(&mut serve);
}

#[test]
fn an_agent_that_kills_its_worker_every_time_is_given_up_after_its_attempts() {
    let e = Env::new();
    let runs = e.fx().join("runs");
    // Unsandboxed on purpose (contained, it could not see its worker to kill it): each run kills
    // the REEF that started it, so no attempt ever reaches an outcome.
    let script = format!("echo run >> {r}; kill -9 $PPID; sleep 30", r = runs.display());
    e.write_config(&format!(
        "[sandbox]\nmode = \"off\"\n[engine]\nlease_seconds = 1\nmax_attempts = 2\n\
         [[executors]]\nname = \"killer\"\nkinds = [\"kill\"]\ncommand = [\"sh\", \"-c\", {script:?}]\n"
    ));
    e.with_prices();
    let id = e.add_task("Kill the worker", &["--type", "kill", "--agent", "rex"]);
    let status = || e.json(&["task", "show", &id])["task"].clone();
    for _ in 0..6 {
        if status()["status"] == "failed" {
            break;
        }
        let mut serve = e.serve("both", &[]);
        // Either the agent kills it, or it gives the task up and keeps running.
        let ended = wait_until(Duration::from_secs(15), || serve.try_wait().unwrap().is_some() || status()["status"] == "failed");
        assert!(ended, "{}", status());
        let _ = serve.kill();
        let _ = serve.wait();
    }
    let t = status();
    assert_eq!(t["status"], "failed", "{t}");
    assert!(t["error"].as_str().unwrap().contains("ended without an outcome"), "{t}");
    let n = std::fs::read_to_string(&runs).unwrap().lines().count();
    assert_eq!(n, 2, "it ran exactly its two attempts, not forever");
}
