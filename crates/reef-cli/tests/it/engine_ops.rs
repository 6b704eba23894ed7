//! The engine's operations end to end, with real `reef serve` processes: schedules, review,
//! operator stop / resume and cap overrides, the demo, unreadable tasks, expiring approvals and
//! budget alerts, worktrees and sessions, memories and the graph, routing around a busy GPU, and
//! live agent edits.

use crate::common::{sigterm, wait_until, Env};
use crate::engine::{llm_env, pairs, pids_with};
use crate::gateway::gateway;
use std::time::Duration;

#[test]
fn schedules_run_each_slot_once_and_respect_pause_and_overlap() {
    let e = Env::new();
    e.write_config(
        "[engine]\nlease_seconds = 2\n\
         [[executors]]\nname = \"note\"\nkinds = [\"note\"]\ncommand = [\"echo\", \"noted\"]\n\
         [[executors]]\nname = \"hang\"\nkinds = [\"hang\"]\ncommand = [\"sh\", \"-c\", \"sleep 300 # reef-shutdown-marker\"]\n\
         [[schedules]]\nname = \"every-minute\"\ncron = \"* * * * *\"\ntitle = \"Heartbeat check\"\ntype = \"note\"\nagent = \"kev\"\n\
         [[schedules]]\nname = \"long\"\ncron = \"0 0 1 1 *\"\ntitle = \"Long job\"\ntype = \"hang\"\nagent = \"rex\"\n",
    );
    e.with_prices();
    let list = e.json(&["schedules"]);
    assert_eq!(list["schedules"].as_array().unwrap().len(), 2);
    assert!(list["schedules"][0]["next_run"].is_string());
    // Run now creates one run; a second while it still runs is skipped (overlap = skip).
    let first = e.json(&["schedule", "run", "long"]);
    assert!(first["_id"].is_string());
    let mut serve = e.serve("both", &[]);
    assert!(wait_until(Duration::from_secs(20), || e.count("running") == 1));
    let second = e.json(&["schedule", "run", "long"]);
    assert!(second["skipped"].is_string(), "overlap = skip refuses a second run while the first runs: {second}");
    // The every-minute schedule fires once per minute boundary: wait for its first run.
    let heartbeat = || e.tasks().into_iter().filter(|t| t["title"] == "Heartbeat check").count();
    assert!(wait_until(Duration::from_secs(75), || heartbeat() >= 1), "a run at the next minute");
    assert!(wait_until(Duration::from_secs(20), || e.tasks().iter().any(|t| t["title"] == "Heartbeat check" && t["status"] == "done")));
    e.ok(&["schedule", "pause", "every-minute"]);
    let listed = e.json(&["schedules"]);
    let minute = listed["schedules"].as_array().unwrap().iter().find(|s| s["name"] == "every-minute").cloned();
    assert_eq!(minute.as_ref().map(|s| s["paused"].clone()), Some(serde_json::json!(true)), "{listed}");
    // One run per slot: on a loaded machine the wait above may span a second minute boundary, so
    // the runs are counted against the slots the scheduler recorded, each of which must be new.
    let slots = || {
        let ran = e.json(&["events", "--subject", "schedule:every-minute", "--kind", "schedule.ran"]);
        ran["events"].as_array().unwrap().iter().map(|x| x["data"]["slot"].as_str().unwrap_or("").to_string()).collect::<Vec<_>>()
    };
    assert!(wait_until(Duration::from_secs(5), || slots().len() == heartbeat()), "one task per recorded slot: {:?}", slots());
    let seen = slots();
    let distinct: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "no slot ran twice: {seen:?}");
    // Shutting the engine down stops the running child and puts its task back in the queue.
    sigterm(&mut serve);
    let long = e.tasks().into_iter().find(|t| t["title"] == "Long job").unwrap();
    assert_eq!(long["status"], "pending", "{long}");
    assert_eq!(long["error"], "worker shut down");
    assert!(pids_with("reef-shutdown-marker").is_empty(), "no agent process outlives reef serve");
    let bad = e.cmd().args(["schedule", "run", "nope"]).output().unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("every-minute, long"));
}

#[test]
fn review_by_another_agent_approves_or_sends_back_with_feedback_up_to_the_round_limit() {
    for (reviewer_model, expect) in [("reviewer-approve", "done"), ("reviewer-revise", "needs_human")] {
        let e = Env::new();
        let Some(env) = llm_env(
            &e,
            &format!(
                "max_review_rounds = 2\n[llm.tiers]\nmid = {reviewer_model:?}\n\
                 [[executors]]\nname = \"builder\"\nkinds = [\"build\"]\ncommand = [\"sh\", \"-c\", \"echo built attempt $REEF_ATTEMPT\"]\n"
            ),
        ) else {
            return;
        };
        e.ok(&["task", "add", "Build the signup form", "--type", "build", "--agent", "rex", "--tier", "cheap", "--review"]);
        let mut serve = e.serve("both", &pairs(&env));
        let settled = wait_until(Duration::from_secs(60), || e.count(expect) == 1);
        sigterm(&mut serve);
        let t = e.tasks()[0].clone();
        assert!(settled, "{reviewer_model}: {t}");
        let comments = t["comments"].as_array().cloned().unwrap_or_default();
        assert!(comments.iter().all(|c| c["author"] == "agent:kev"), "Kev reviews Rex's work: {comments:?}");
        if expect == "done" {
            assert_eq!(comments.len(), 1);
            assert!(comments[0]["body"].as_str().unwrap().contains("approved"));
            assert_eq!(t["result"], "built attempt 1\n");
        } else {
            assert_eq!(comments.len(), 2, "two review rounds, then a person");
            assert!(comments[0]["body"].as_str().unwrap().contains("add a test for the empty form"));
            assert_eq!(t["attempts"], 2, "the feedback went back to the builder once");
            assert!(t["error"].as_str().unwrap().contains("after 2 rounds"));
        }
    }
}

#[test]
fn operator_stop_returns_running_work_to_pending_and_resume_runs_it_again() {
    let e = Env::new();
    let flag = e.fx().join("ran-once");
    let script = format!("if [ -f {f} ]; then echo finished; else touch {f}; sleep 300; fi", f = flag.display());
    e.write_config(&format!(
        "[engine]\nlease_seconds = 2\n[[executors]]\nname = \"slow\"\nkinds = [\"slow\"]\ncommand = [\"sh\", \"-c\", {script:?}]\n{w}",
        w = e.fx_writable()
    ));
    e.with_prices();
    e.ok(&["task", "add", "Long build", "--type", "slow", "--agent", "rex"]);
    let mut serve = e.serve("both", &[]);
    assert!(wait_until(Duration::from_secs(20), || e.count("running") == 1));
    // "running" is set when the child is spawned; stop it only once its shell has really begun
    // (made the flag), or a stop that lands first leaves no flag and the rerun sleeps instead.
    assert!(wait_until(Duration::from_secs(20), || flag.exists()), "the agent's shell never started");
    e.ok(&["stop", "rex", "--reason", "hotfix first"]);
    assert!(wait_until(Duration::from_secs(10), || e.count("pending") == 1), "stopped work goes back to pending: {:?}", e.tasks());
    let t = &e.tasks()[0];
    assert_eq!(t["error"], "stopped by the operator");
    // Held while stopped: several lease periods pass without it running.
    assert!(!wait_until(Duration::from_secs(3), || e.count("running") == 1), "a stopped agent takes no work");
    e.ok(&["resume", "rex"]);
    assert!(wait_until(Duration::from_secs(20), || e.count("done") == 1), "{:?}", e.tasks());
    sigterm(&mut serve);
    let audit_actions: Vec<String> = e.json(&["events", "--kind", "control."])["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(audit_actions, vec!["control.resume", "control.stop"], "both decisions recorded");
}

#[test]
fn an_agent_at_its_cap_is_held_and_an_audited_override_releases_its_queue() {
    let e = Env::new();
    // Blaze's $10 cap against a CLI agent that reserves $6 a run: the second run does not fit.
    e.write_config(
        "[engine]\nlease_seconds = 2\n[caps]\ntask_default_usd = 100\n[[agents]]\nname = \"blaze\"\nrole = \"marketing\"\ndaily_cap_usd = 10\n\
         [[executors]]\nname = \"poster\"\nkinds = [\"post\"]\ncommand = [\"sh\", \"-c\", \"echo '{\\\"result\\\":\\\"posted\\\",\\\"total_cost_usd\\\":5}'\"]\nsoft_cap_usd = 6\nnetwork = \"host\"\n",
    );
    e.with_prices();
    e.ok(&["task", "add", "Post one", "--type", "post", "--agent", "blaze", "--priority", "2"]);
    e.ok(&["task", "add", "Post two", "--type", "post", "--agent", "blaze", "--priority", "1"]);
    let mut serve = e.serve("both", &[]);
    assert!(wait_until(Duration::from_secs(20), || e.count("done") == 1));
    assert!(wait_until(Duration::from_secs(10), || e.json(&["events", "--kind", "budget.cap_reached"])["events"]
        .as_array()
        .is_some_and(|a| !a.is_empty())));
    assert_eq!(e.count("pending"), 1, "the second task is held, not cancelled: {:?}", e.tasks());
    let blaze = e.json(&["status"])["caps_today"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["scope"].as_str().unwrap().starts_with("agent:blaze"))
        .unwrap()
        .clone();
    assert_eq!(blaze["spent"], 5_000_000, "the agent's reported cost was settled");
    let attempts = e.tasks().iter().find(|t| t["title"] == "Post two").unwrap()["attempts"].as_u64().unwrap();
    assert!(attempts <= 2, "a held task is not retried in a loop: {attempts} attempts");
    e.ok(&["cap", "override", "blaze", "--usd", "20", "--reason", "launch day"]);
    assert!(wait_until(Duration::from_secs(20), || e.count("done") == 2), "{:?}", e.tasks());
    // A task whose own budget cannot cover a run goes to a person with the fix, not the agent.
    e.ok(&["task", "add", "Post three", "--type", "post", "--agent", "blaze", "--budget", "1"]);
    assert!(wait_until(Duration::from_secs(20), || e.count("needs_human") == 1), "{:?}", e.tasks());
    sigterm(&mut serve);
    let t3 = e.tasks().into_iter().find(|t| t["title"] == "Post three").unwrap();
    assert!(t3["error"].as_str().unwrap().contains("--budget"), "{t3}");
    let ov = e.json(&["events", "--kind", "cap.override"]);
    assert_eq!(ov["events"][0]["data"]["reason"], "launch day");
}

#[test]
fn reef_serve_takes_the_demo_to_done_and_approved_work_runs_after_approval() {
    let e = Env::new();
    let Some(env) = llm_env(&e, "") else { return };
    e.ok(&["demo"]);
    let before = e.json(&["status"])["caps_today"][0]["spent"].as_i64().unwrap();
    let pending: Vec<String> =
        e.tasks().iter().filter(|t| t["status"] == "pending").map(|t| t["_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(pending.len(), 2);
    let mut serve = e.serve("both", &pairs(&env));
    let status_of = |id: &str| e.json(&["task", "show", id])["task"]["status"].as_str().unwrap().to_string();
    assert!(wait_until(Duration::from_secs(60), || pending.iter().all(|id| status_of(id) == "done")), "{:?}", e.tasks());
    let a =
        e.json(&["approvals"])["approvals"].as_array().unwrap().iter().find(|a| a["action_class"] == "production_deploy").unwrap().clone();
    e.ok(&["approve", a["_id"].as_str().unwrap()]);
    let deploy = a["task_id"].as_str().unwrap().to_string();
    assert!(wait_until(Duration::from_secs(60), || status_of(&deploy) == "done"), "the approved deploy ran: {}", status_of(&deploy));
    // Left: the demo's other request and its change's merge (no pipeline here, so never run).
    assert_eq!(e.json(&["approvals"])["approvals"].as_array().unwrap().len(), 2, "the approval covered the run: not asked again");
    sigterm(&mut serve);
    let after = e.json(&["status"])["caps_today"][0]["spent"].as_i64().unwrap();
    assert!(after > before, "the runs' spend shows in reef status ({before} → {after})");
}

#[test]
fn unreadable_tasks_are_reported_and_the_engine_keeps_working() {
    use std::io::Write;
    let e = Env::new();
    e.write_config("[engine]\nlease_seconds = 2\n[[executors]]\nname = \"note\"\nkinds = [\"note\"]\ncommand = [\"echo\", \"noted\"]\n");
    e.with_prices();
    // Another program writes a task REEF cannot read (priority as text, no title).
    let path = e.dir.path().join("bad.reef.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
    writeln!(gz, "{}", serde_json::json!({"reef_backup": 1})).unwrap();
    let bad = serde_json::json!({"_id": "bad-1", "status": "pending", "priority": "urgent", "created_at": "2026-11-21T08:00:00.000Z", "assigned_to": "rex", "type": "note"});
    writeln!(gz, "{}", serde_json::json!({"c": "tasks", "d": bad})).unwrap();
    gz.finish().unwrap();
    e.ok(&["restore", "--force", path.to_str().unwrap()]);
    e.ok(&["task", "add", "A readable task", "--type", "note", "--agent", "rex"]);
    let mut serve = e.serve("both", &[]);
    assert!(wait_until(Duration::from_secs(20), || e.count("done") == 1));
    let alive = serve.try_wait().unwrap().is_none();
    sigterm(&mut serve);
    assert!(alive);
    let listing = e.json(&["task", "list"]);
    let m = &listing["malformed"][0];
    assert_eq!(m["id"], "bad-1");
    assert!(m["reason"].as_str().unwrap().contains("priority") || m["reason"].as_str().unwrap().contains("title"), "{m}");
    let show = e.cmd().args(["task", "show", "bad-1"]).output().unwrap();
    assert!(String::from_utf8_lossy(&show.stderr).contains("bad-1"), "the error names the document");
}

#[test]
fn an_unanswered_approval_expires_cancels_its_task_and_budget_alerts_fire_once_per_threshold() {
    let e = Env::new();
    // Approvals expire after ~2 s; Kev's $1 cap against a CLI agent that reports $0.85 a run.
    e.write_config(
        "[engine]\nlease_seconds = 2\n[approvals]\nexpiry_hours = 0.0006\n\
         [[agents]]\nname = \"kev\"\nrole = \"orchestrator\"\ndaily_cap_usd = 1\n\
         [[executors]]\nname = \"spender\"\nkinds = [\"spend\"]\ncommand = [\"sh\", \"-c\", \"echo '{\\\"result\\\":\\\"ok\\\",\\\"total_cost_usd\\\":0.85}'\"]\nsoft_cap_usd = 0.9\nnetwork = \"host\"\n",
    );
    e.with_prices();
    e.ok(&["task", "add", "Email every customer", "--type", "spend", "--agent", "kev", "--action-class", "customer_message"]);
    e.ok(&["task", "add", "Spend most of the cap", "--type", "spend", "--agent", "kev"]);
    let mut serve = e.serve("both", &[]);
    let cancelled = wait_until(Duration::from_secs(30), || e.count("cancelled") == 1);
    let spent = wait_until(Duration::from_secs(30), || e.count("done") == 1);
    let alerts = || -> Vec<u64> {
        let ev =
            e.json(&["events", "--kind", "budget.alert", "--subject", e.json(&["status"])["caps_today"][1]["scope"].as_str().unwrap()]);
        let mut v: Vec<u64> = ev["events"].as_array().unwrap().iter().map(|x| x["data"]["threshold"].as_u64().unwrap()).collect();
        v.sort();
        v
    };
    let fired = wait_until(Duration::from_secs(20), || alerts() == vec![50, 80]);
    std::thread::sleep(Duration::from_secs(11)); // one more alert sweep: nothing new
    let again = alerts();
    sigterm(&mut serve);
    assert!(cancelled, "the expired request cancelled its task: {:?}", e.tasks());
    let t = e.tasks().into_iter().find(|t| t["title"] == "Email every customer").unwrap();
    assert!(t["error"].as_str().unwrap().contains("expired"), "{t}");
    assert!(e.json(&["events", "--kind", "approval.expired"])["events"][0]["data"]["alert"] == true);
    assert!(spent && fired, "85 % of Kev's cap raises the 50 % and 80 % alerts: {:?}", alerts());
    assert_eq!(again, vec![50, 80], "each threshold alerts once per period");
}

#[test]
fn a_task_naming_a_repository_works_in_its_own_worktree_and_a_retry_resumes_the_session() {
    let e = Env::new();
    let repo = e.fx().join("product-repo");
    let git = |args: &[&str]| crate::common::git_in(&repo, args);
    std::fs::create_dir_all(&repo).unwrap();
    git(&["init", "-q"]);
    std::fs::write(repo.join("README"), "product\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-qm", "init"]);
    // A stand-in for Claude Code: fails its first run (reporting a session), succeeds when resumed.
    let script = r#"if [ "$1" = "--resume" ]; then printf '{"result":"resumed %s on %s","session_id":"%s"}' "$2" "$(git rev-parse --abbrev-ref HEAD)" "$2"; else echo '{"session_id":"sess-42"}'; exit 1; fi"#;
    e.write_config(&format!(
        "[engine]\nlease_seconds = 2\n[[executors]]\nname = \"claude\"\nkinds = [\"build\"]\ncommand = [\"sh\", \"-c\", {script:?}, \"agent\"]\nresume_args = [\"--resume\", \"{{session_id}}\"]\n"
    ));
    e.with_prices();
    let t = e.json(&["task", "add", "Add the pricing page", "--type", "build", "--agent", "rex", "--repo", repo.to_str().unwrap()]);
    let id = t["_id"].as_str().unwrap().to_string();
    let mut serve = e.serve("both", &[]);
    let done = wait_until(Duration::from_secs(30), || e.count("done") == 1);
    sigterm(&mut serve);
    let t = e.json(&["task", "show", &id])["task"].clone();
    assert!(done, "{t}");
    let branch = format!("reef/{}", &id[id.len() - 12..]);
    assert_eq!(t["result"], format!("resumed sess-42 on {branch}"), "the retry resumed the session, inside the worktree");
    assert_eq!(t["work_products"]["branch"], branch);
    assert!(git(&["worktree", "list"]).contains(&branch), "a worktree of the product's repository");
    assert!(!git(&["rev-parse", "--abbrev-ref", "HEAD"]).starts_with("reef/"), "the main checkout stays on its own branch");
}

#[test]
fn the_agent_gets_the_task_s_memories_and_its_action_class_tool_lists() {
    let e = Env::new();
    let seen = e.fx().join("prompt.txt");
    // A stand-in CLI agent that, like Claude Code, refuses a tool its --disallowedTools names.
    let script = format!(
        r#"printf '%s' "$1" > {p}; if echo "$1" | grep -q 'Deploy' && echo "$3" | grep -q 'wrangler deploy'; then echo "refused: Bash(wrangler deploy) is not allowed" >&2; exit 3; fi; echo done"#,
        p = seen.display()
    );
    e.write_config(&format!(
        "[engine]\nlease_seconds = 2\nmax_attempts = 1\n[[executors]]\nname = \"claude\"\nkinds = [\"build\"]\n\
         command = [\"sh\", \"-c\", {script:?}, \"agent\", \"{{prompt}}\", \"--disallowedTools\", \"{{disallowed_tools}}\"]\n\
         disallowed_tools = {{ default = [\"Bash(wrangler deploy:*)\"], production_deploy = [] }}\n{w}",
        w = e.fx_writable()
    ));
    e.with_prices();
    e.ok(&["demo"]); // memories about QuickForm's Stripe webhooks, among others
    e.ok(&["task", "add", "Harden the Stripe webhook signature check", "--type", "build", "--agent", "rex", "--product", "quickform"]);
    e.ok(&["pause", "blaze"]); // keep the demo's other queued work out of the way
    let mut serve = e.serve("worker", &[]);
    let title_status = |title: &str| e.tasks().into_iter().find(|t| t["title"] == title).map(|t| t["status"].as_str().unwrap().to_string());
    assert!(wait_until(Duration::from_secs(30), || title_status("Harden the Stripe webhook signature check").as_deref() == Some("done")));
    let prompt = std::fs::read_to_string(&seen).unwrap();
    assert!(prompt.contains("Relevant memories"), "{prompt}");
    assert!(prompt.contains("Stripe webhook signature verification added"), "the product's Stripe memory is in the prompt: {prompt}");
    // A build task that sets out to deploy: the agent was told it may not.
    e.ok(&["task", "add", "Deploy QuickForm from the build task", "--type", "build", "--agent", "rex"]);
    assert!(wait_until(Duration::from_secs(30), || title_status("Deploy QuickForm from the build task").as_deref() == Some("failed")));
    sigterm(&mut serve);
    let t = e.tasks().into_iter().find(|t| t["title"] == "Deploy QuickForm from the build task").unwrap();
    assert!(t["error"].as_str().unwrap().contains("not allowed"), "{t}");
}

#[test]
fn work_skips_the_local_tier_while_the_local_gpu_is_busy() {
    use reef_core::engine::{budget::Budget, dispatcher, runtime::Engine};
    use reef_core::rules::pricing::PriceBook;
    let dir = tempfile::tempdir().unwrap();
    let defaults = crate::common::defaults_in(dir.path());
    let cfg = reef_core::config::Config::resolve(Some("[engine]\nlease_seconds = 2\n"), &|_| None, &defaults).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ports = reef_store::sqlite::SqliteStore::open(&dir.path().join("reef.db")).unwrap().ports();
        let f = reef_core::factory::Factory::new(ports, std::sync::Arc::new(reef_core::SystemClock), std::sync::Arc::new(cfg));
        let engine = std::sync::Arc::new(Engine {
            factory: f.clone(),
            budget: Budget { factory: f.clone(), prices: std::sync::Arc::new(PriceBook::default()) },
            llm: std::sync::Arc::new(reef_core::engine::llm::LlmExecutor::new(
                "http://127.0.0.1:9",
                None,
                Budget { factory: f.clone(), prices: Default::default() },
                10,
                Duration::from_secs(1),
            )),
            cli: vec![],
            id: "gpu-test".into(),
            data_dir: dir.path().into(),
            containment: std::sync::Arc::new(reef_core::engine::sandbox::Containment::off(dir.path().join("work"), dir.path().into())),
            mcp_socket: None,
            meter: None,
            embedder: None,
        });
        let stop = tokio_util::sync::CancellationToken::new();
        let d = tokio::spawn(dispatcher::run(engine, stop.clone()));
        let route_of = |title: &'static str| {
            let f = f.clone();
            async move {
                let mut n = reef_core::NewTask::titled(title);
                n.role = Some("research".into()); // Scout, who starts on the local tier
                let t = f.create_task(n, "test").await.unwrap();
                for _ in 0..100 {
                    let got = f.ports.tasks.get(&t.id).await.unwrap();
                    if let Some(tier) = got.model_tier {
                        return (got.assigned_to.unwrap(), tier);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                panic!("{title} was not routed");
            }
        };
        assert_eq!(route_of("idle GPU").await, ("scout".into(), reef_core::ModelTier::Local));
        let busy = reef_core::MetricSample {
            timestamp: f.now(),
            source: reef_core::MetricSource { host: "dreamteam".into(), metric: "gpu0.util_percent".into() },
            value: 98.0,
        };
        f.ports.metrics.record(&[busy]).await.unwrap();
        assert_eq!(
            route_of("busy GPU").await,
            ("scout".into(), reef_core::ModelTier::Cheap),
            "a busy local GPU sends new work one tier up"
        );
        // The task is routed before its event is appended: wait for the event itself.
        let mut note = serde_json::Value::Null;
        for _ in 0..100 {
            let q = reef_core::EventQuery { kind_prefix: Some("task.routed".into()), limit: 10, ..Default::default() };
            let ev = f.ports.events.recent(&q).await.unwrap();
            if let Some(e) = ev.items.iter().find(|e| e.data["tier"] == "cheap") {
                note = e.data["note"].clone();
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(note, "local GPU busy", "the routing event says why the tier went up");
        stop.cancel();
        let _ = d.await;
    });
}

#[test]
fn finished_work_becomes_memories_and_graph_edges() {
    let e = Env::new();
    e.write_config("[engine]\nlease_seconds = 2\n[[executors]]\nname = \"writer\"\nkinds = [\"research\"]\ncommand = [\"echo\", \"Uptime monitors price their free tier at five monitors; paid plans start at nine dollars.\"]\n");
    e.with_prices();
    let t = e.json(&["task", "add", "Research uptime monitor pricing", "--type", "research", "--agent", "scout", "--product", "pagepulse"]);
    let id = t["_id"].as_str().unwrap().to_string();
    let mut serve = e.serve("worker", &[]);
    assert!(wait_until(Duration::from_secs(20), || e.count("done") == 1));
    sigterm(&mut serve);
    let m = e.json(&["memory", "search", "uptime monitor free tier pricing", "--product", "pagepulse"]);
    let top = &m["hits"][0]["doc"];
    assert!(top["content"].as_str().unwrap().contains("free tier at five monitors"), "{m}");
    assert_eq!(top["type"], "research", "a research task's result is kept as research");
    assert_eq!(top["agent"], "scout");
    assert_eq!(top["metadata"]["task_id"], id);
    let g = e.json(&["graph", "show", "agent:scout", "--depth", "2"]);
    let edges: Vec<String> = g["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{}-{}-{}", r["from"].as_str().unwrap(), r["type"].as_str().unwrap(), r["to"].as_str().unwrap()))
        .collect();
    assert!(edges.contains(&format!("agent:scout-completed-task:{id}")), "{edges:?}");
    assert!(edges.contains(&"agent:scout-worked_on-product:pagepulse".to_string()), "{edges:?}");
}

#[test]
fn the_gateway_embedder_writes_and_searches_memory_through_the_real_proxy() {
    let e = Env::new();
    let Some(g) = gateway("gateway embedder test") else { return };
    // The fixture's `embed` model answers [0.1, 0.2, 0.3] (a mocked provider behind the real proxy).
    let run = |dim: usize, key: &str, args: &[&str]| {
        e.write_config(&format!("[memory]\nembedder = \"gateway\"\ngateway_dimension = {dim}\n"));
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        e.cmd().args(&a).env("REEF_LLM_BASE_URL", &g.url).env("REEF_LLM_API_KEY", key).output().unwrap()
    };
    let out = run(3, &g.key, &["memory", "remember", "Invoicely needs multi-currency invoices", "--product", "invoicely"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let st: serde_json::Value = serde_json::from_slice(&run(3, &g.key, &["memory", "status"]).stdout).unwrap();
    assert_eq!(st["index"], serde_json::json!({"embedder": "gateway:embed", "dimension": 3}));
    let hits: serde_json::Value = serde_json::from_slice(&run(3, &g.key, &["memory", "search", "currencies"]).stdout).unwrap();
    assert_eq!(hits["hits"][0]["doc"]["product"], "invoicely", "{hits}");

    // A model that answers another size than configured is caught before anything is stored.
    let out = run(768, &g.key, &["memory", "remember", "something else"]);
    let msg = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success() && msg.contains("built with gateway:embed (3 dimensions)"), "{msg}");
    // A wrong key: the gateway's refusal is reported (LiteLLM answers 400 "No connected db" for a
    // key that is not its master key and has no key database), the key itself never.
    let out = run(3, "sk-wrong-key-1234", &["memory", "search", "currencies"]);
    let msg = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success() && msg.contains("the gateway's embed embeddings: HTTP 4") && !msg.contains("sk-wrong-key-1234"), "{msg}");
    assert_eq!(e.json(&["memory", "status"])["count"], 1, "nothing was written by the failed calls");
}

#[test]
fn agent_edits_take_effect_in_a_running_engine_survive_restarts_roll_back_and_yield_to_a_changed_file() {
    let e = Env::new();
    let config = |cap: u32| {
        format!(
            "[engine]\nlease_seconds = 2\n[caps]\ntask_default_usd = 100\nglobal_daily_usd = {}\n[[agents]]\nname = \"blaze\"\nrole = \"marketing\"\ndaily_cap_usd = {cap}\n\
             [[executors]]\nname = \"poster\"\nkinds = [\"post\"]\ncommand = [\"sh\", \"-c\", \"echo '{{\\\"result\\\":\\\"posted\\\",\\\"total_cost_usd\\\":5}}'\"]\nsoft_cap_usd = 6\nnetwork = \"host\"\n",
            cap * 10
        )
    };
    e.write_config(&config(10));
    e.with_prices();
    let post = |title: &str| e.ok(&["task", "add", title, "--type", "post", "--agent", "blaze"]);
    let cap = || e.json(&["agent", "show", "blaze"])["daily_cap_usd"].as_i64().unwrap();
    let revisions = || e.json(&["agent", "revisions", "blaze"]).as_array().unwrap().clone();
    post("Post one");
    post("Post two");
    let mut serve = e.serve("both", &[]);
    assert!(wait_until(Duration::from_secs(20), || e.count("done") == 1));
    assert!(wait_until(Duration::from_secs(10), || e.json(&["events", "--kind", "budget.cap_reached"])["events"]
        .as_array()
        .is_some_and(|a| !a.is_empty())));
    assert_eq!(e.count("pending"), 1, "the second run does not fit the $10 cap: {:?}", e.tasks());

    // An edit from another process reaches the running engine: the held task runs.
    e.ok(&["agent", "edit", "blaze", "--daily-cap-usd", "20", "--reason", "launch week"]);
    assert!(wait_until(Duration::from_secs(20), || e.count("done") == 2), "{:?}", e.tasks());
    assert_eq!(cap(), 20_000_000);
    let revs = revisions();
    assert_eq!(revs.len(), 2, "the file's settings, then the edit: {revs:?}");
    assert_eq!(revs[0]["revision"], 2);
    assert_eq!(revs[0]["author"], "operator:tester@testhost");
    let audit = e.json(&["events", "--kind", "agent.revised"]);
    assert_eq!(audit["events"][0]["data"]["revision"], 2);

    // A policy change reaches it too.
    e.ok(&["policy", "set", "social_post", "approve_before"]);
    e.ok(&["task", "add", "Post three", "--type", "post", "--agent", "blaze", "--action-class", "social_post"]);
    assert!(wait_until(Duration::from_secs(20), || e.count("awaiting_approval") == 1), "{:?}", e.tasks());
    let gates = e.json(&["policy", "show"]);
    assert_eq!(gates["social_post"], "approve_before");
    e.ok(&["policy", "set", "social_post", "remove", "--yes"]);
    sigterm(&mut serve);

    // A restart does not put the file's $10 back.
    post("Post four");
    let mut serve = e.serve("both", &[]);
    assert!(wait_until(Duration::from_secs(20), || e.count("done") == 3), "{:?}", e.tasks());
    assert_eq!(cap(), 20_000_000, "the edit stands after a restart");
    assert_eq!(revisions().len(), 2);

    // Rollback is a new revision with the old settings.
    let r = e.json(&["agent", "rollback", "blaze", "1"]);
    assert_eq!(r["revision"], 3);
    assert_eq!(cap(), 10_000_000);
    sigterm(&mut serve);

    // Changing the file is the newest change: it wins at the next start — for what it changed.
    e.ok(&["policy", "set", "refund", "approve_before"]);
    e.write_config(&config(15));
    post("Post five");
    let mut serve = e.serve("both", &[]);
    assert!(wait_until(Duration::from_secs(20), || revisions().len() == 4), "{:?}", revisions());
    sigterm(&mut serve);
    assert_eq!(cap(), 15_000_000);
    assert!(revisions()[0]["author"].as_str().unwrap().starts_with("reef:"), "applied by the engine from the file");
    assert_eq!(e.json(&["status"])["caps_today"][0]["cap"], 150_000_000, "the file's new factory cap");
    assert_eq!(e.json(&["policy", "show"])["refund"], "approve_before", "a gate added in the window survives an unrelated file change");

    // Bad edits are refused, naming what was wrong, and change nothing.
    let bad = e.cmd().args(["agent", "edit", "blaze", "--daily-cap-usd=-3"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("negative"), "{}", String::from_utf8_lossy(&bad.stderr));
    let bad = e.cmd().args(["agent", "edit", "nobody", "--daily-cap-usd", "3"]).output().unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a configured agent"));
    assert_eq!(revisions().len(), 4);
}
