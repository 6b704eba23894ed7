//! The `reef` binary as a user runs it: separate processes sharing one store file.

use crate::common::Env;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn watch_in_one_process_sees_a_task_added_by_another() {
    let e = Env::new();
    e.write_config("");
    e.ok(&["status"]); // creates and migrates the store
    let mut watch =
        e.cmd().args(["--json", "watch", "--collection", "tasks"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    let out = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The watcher starts from "now"; add tasks until one arrives (the first may predate it).
    let mut ids = vec![];
    let seen = (0..50).find_map(|i| {
        let t = e.json(&["task", "add", &format!("from another process {i}")]);
        ids.push(t["_id"].as_str().unwrap().to_string());
        rx.recv_timeout(Duration::from_millis(200)).ok()
    });
    let _ = watch.kill();
    let _ = watch.wait();
    let line = seen.expect("reef watch printed the change made by reef task add");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["collection"], "tasks");
    assert_eq!(v["op"], "insert");
    assert!(ids.contains(&v["id"].as_str().unwrap().to_string()));
}

#[test]
fn demo_then_status_show_every_state_and_spend_and_demo_is_idempotent() {
    let e = Env::new();
    let first = e.json(&["demo"]);
    assert!(first["tasks_created"].as_u64().unwrap() >= 13);
    let again = e.json(&["demo"]);
    assert_eq!(again["tasks_created"], 0, "a second demo adds nothing");
    let s = e.json(&["status"]);
    let states: Vec<&str> = s["tasks"].as_array().unwrap().iter().map(|p| p[0].as_str().unwrap()).collect();
    for st in [
        "backlog",
        "pending",
        "blocked",
        "claimed",
        "running",
        "review",
        "awaiting_approval",
        "needs_human",
        "paused",
        "done",
        "failed",
        "cancelled",
    ] {
        assert!(states.contains(&st), "demo has a task in {st}: {states:?}");
    }
    let caps = s["caps_today"].as_array().unwrap();
    let rex = caps.iter().find(|c| c["scope"].as_str().unwrap().starts_with("agent:rex:day:")).unwrap();
    assert_eq!(rex["cap"], 40_000_000, "Rex's cap is seed 000's $40");
    assert!(rex["spent"].as_i64().unwrap() > 0, "demo spend shows against the cap");
    assert_eq!(s["pending_approvals"], 3, "two demo requests and the demo change's merge");
}

#[test]
fn approve_moves_the_task_and_reject_needs_a_reason() {
    let e = Env::new();
    e.ok(&["demo"]);
    let list = e.json(&["approvals"]);
    let a = &list["approvals"][0];
    let (aid, tid) = (a["_id"].as_str().unwrap(), a["task_id"].as_str().unwrap());
    let out = e.cmd().args(["--json", "reject", aid]).output().unwrap();
    assert!(!out.status.success());
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["code"], "invalid");
    assert!(err["error"]["message"].as_str().unwrap().contains("--reason"));
    e.ok(&["approve", &aid[aid.len() - 12..]]);
    let t = e.json(&["task", "show", tid]);
    assert_eq!(t["task"]["status"], "pending", "an approved task goes back to the queue");
    let again = e.cmd().args(["approve", aid]).output().unwrap();
    assert!(!again.status.success(), "a decided approval cannot be decided twice");
}

#[test]
fn backup_restores_into_an_empty_store_and_refuses_a_full_one() {
    let a = Env::new();
    a.ok(&["demo"]);
    let file = a.dir.path().join("factory.reef.gz");
    a.ok(&["backup", file.to_str().unwrap()]);
    let b = Env::new();
    b.ok(&["restore", file.to_str().unwrap()]);
    assert_eq!(a.json(&["status"])["tasks"], b.json(&["status"])["tasks"], "same tasks per state after restore");
    let before = a.json(&["task", "list", "--limit", "100"]);
    let after = b.json(&["task", "list", "--limit", "100"]);
    assert_eq!(before["tasks"], after["tasks"], "tasks restored exactly");
    let refused = b.cmd().args(["restore", file.to_str().unwrap()]).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    std::fs::write(a.dir.path().join("junk.gz"), b"not an archive").unwrap();
    let junk = a.cmd().args(["restore", "--force", a.dir.path().join("junk.gz").to_str().unwrap()]).output().unwrap();
    assert!(!junk.status.success(), "a file that is not an archive is refused");
}

#[test]
fn bad_config_names_the_key_and_secrets_never_print() {
    let e = Env::new();
    e.write_config("[caps]\nglobal_daily_usd = \"lots\"\n");
    let out = e.cmd().arg("status").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("global_daily_usd") && err.contains("config.toml"), "{err}");

    e.write_config("");
    let out = e.cmd().args(["config", "export"]).env("REEF_LLM_API_KEY", "sk-very-secret").output().unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("sk-very-secret"));
    let out =
        e.cmd().arg("status").env("REEF_MONGODB_URI", "mongodb://adam:hunter2@127.0.0.1:1/?serverSelectionTimeoutMS=300").output().unwrap();
    assert!(!out.status.success(), "no server there");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("adam:***@127.0.0.1"), "the error names the (redacted) server: {err}");
    assert!(!err.contains("hunter2"), "the password never prints: {err}");
}

#[test]
fn task_add_rejects_bad_arguments_clearly() {
    let e = Env::new();
    let out = e.cmd().args(["task", "add", "x", "--tier", "huge"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("huge"));
    let out = e.cmd().args(["task", "add", "x", "--agent", "nobody"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("kev, rex, scout, blaze"));
    let out = e.cmd().args(["task", "add", "   "]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("title is empty"));
    let big = "x".repeat(2000);
    let out = e.cmd().args(["task", "add", &big]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("limit is 1000"));
}

#[test]
fn memory_search_and_graph_show_work_on_the_demo() {
    let e = Env::new();
    e.ok(&["demo"]);
    let r = e.json(&["memory", "search", "stripe webhook signature", "-k", "3"]);
    assert_eq!(r["method"], "exact_scan", "the result says which search ran");
    assert!(r["hits"][0]["doc"]["content"].as_str().unwrap().contains("Stripe webhook signature"), "{r}");
    assert!(r["hits"][0]["score"].as_f64().unwrap() > r["hits"][2]["score"].as_f64().unwrap());
    let only_qf = e.json(&["memory", "search", "launch", "--product", "quickform"]);
    assert!(only_qf["hits"].as_array().unwrap().iter().all(|h| h["doc"]["product"] == "quickform"));
    let g = e.json(&["graph", "show", "agent:kev", "--depth", "1"]);
    let depths: Vec<u64> = g["nodes"].as_array().unwrap().iter().map(|n| n[1].as_u64().unwrap()).collect();
    assert!(depths.iter().all(|d| *d <= 1), "depth 1 stops at direct neighbours: {depths:?}");
    assert_eq!(g["nodes"].as_array().unwrap().len(), 4, "Kev and the three agents he delegates to");
    let bad = e.cmd().args(["graph", "show", "nobody"]).output().unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("entity nobody"));
}

#[test]
fn reembed_moves_the_demo_from_hashing_to_minilm_and_search_becomes_semantic() {
    let Some(model) = crate::common::model_dir() else { return };
    let e = Env::new();
    let model = model.to_str().unwrap();
    let run = |embedder: &str, args: &[&str]| {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        e.cmd().args(&a).env("REEF_EMBEDDER", embedder).env("REEF_EMBED_MODEL_DIR", model).output().unwrap()
    };
    assert!(run("hashing", &["demo"]).status.success());
    let st: serde_json::Value = serde_json::from_slice(&run("minilm", &["memory", "status"]).stdout).unwrap();
    assert_eq!(st["index"]["embedder"], "hashing");
    assert_eq!(st["configured"]["embedder"], "all-minilm-l6-v2");
    // The model cannot search vectors it did not make: a clear error, not nonsense scores.
    let out = run("minilm", &["memory", "search", "payments"]);
    assert!(!out.status.success());
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["code"], "dimension_mismatch", "{err}");
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(msg.contains("built with hashing") && msg.contains("reef memory reembed"), "{msg}");

    let out = run("minilm", &["memory", "reembed"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((r["embedder"].as_str(), r["done"].as_u64(), r["dimension"].as_u64()), (Some("all-minilm-l6-v2"), Some(10), Some(384)));
    // A second run finds nothing left to do.
    let again: serde_json::Value = serde_json::from_slice(&run("minilm", &["memory", "reembed"]).stdout).unwrap();
    assert_eq!(again["skipped"], 10);

    // No word in common with the memory it should find: only a real model gets this right.
    let q = "taking card payments inside a form";
    let hits: serde_json::Value = serde_json::from_slice(&run("minilm", &["memory", "search", q, "-k", "3"]).stdout).unwrap();
    let top = hits["hits"][0]["doc"]["content"].as_str().unwrap();
    assert!(top.contains("Stripe payments") || top.contains("Stripe webhook"), "top hit for {q:?}: {top}");
    // Now hashing is the stranger.
    assert!(!run("hashing", &["memory", "search", "payments"]).status.success());

    let out =
        run("minilm", &["memory", "remember", "Churned customers cite missing CSV export", "--product", "invoicely", "--type", "research"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let f: serde_json::Value = serde_json::from_slice(
        &run("minilm", &["memory", "search", "why do users cancel", "--type", "research", "--since", "2020-01-01"]).stdout,
    )
    .unwrap();
    assert!(f["hits"].as_array().unwrap().iter().all(|h| h["doc"]["type"] == "research"));
    assert!(f["hits"][0]["doc"]["content"].as_str().unwrap().contains("Churned"), "{f}");
    let bad = run("minilm", &["memory", "search", "x", "--since", "last tuesday"]);
    assert!(String::from_utf8_lossy(&bad.stdout).contains("--since \\\"last tuesday\\\" is not a date"), "{bad:?}");
}

#[test]
fn secrets_live_in_the_os_keyring_are_used_from_there_and_never_shown() {
    let e = Env::new();
    // No keyring at all: a clear message naming the way out, nothing written.
    let out = e
        .cmd()
        .args(["--json", "secret", "set", "REEF_LLM_API_KEY"])
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = feed(out, "sk-should-not-land\n");
    assert!(!out.status.success());
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["code"], "no_keyring", "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("environment"), "{err}");

    let Some(k) = crate::common::Keyring::start() else { return };
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut c = e.cmd();
        c.args(args).env("DBUS_SESSION_BUS_ADDRESS", &k.bus).env("REEF_KEYRING_SERVICE", "reef-it");
        match stdin {
            Some(s) => feed(c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap(), s),
            None => c.output().unwrap(),
        }
    };
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let source = |name: &str| {
        let v: serde_json::Value = serde_json::from_str(&ok(run(&["--json", "secret", "list"], None))).unwrap();
        v.as_array().unwrap().iter().find(|s| s["name"] == name).map(|s| s["source"].as_str().unwrap().to_string())
    };
    assert_eq!(source("REEF_MONGODB_URI").as_deref(), Some("unset"));
    // The store connection kept in the keyring is the one REEF opens.
    let uri = "mongodb://reef:pa55word@127.0.0.1:9/?serverSelectionTimeoutMS=300";
    ok(run(&["secret", "set", "REEF_MONGODB_URI"], Some(&format!("{uri}\n"))));
    let st = run(&["status"], None);
    let err = String::from_utf8_lossy(&st.stderr);
    assert!(!st.status.success() && err.contains("127.0.0.1:9"), "status went to the keyring's MongoDB: {err}");
    assert!(!err.contains("pa55word"), "the password never prints: {err}");
    // The environment wins over the keyring.
    let st = e
        .cmd()
        .args(["status"])
        .env("DBUS_SESSION_BUS_ADDRESS", &k.bus)
        .env("REEF_KEYRING_SERVICE", "reef-it")
        .env("REEF_MONGODB_URI", "mongodb://127.0.0.1:8/?serverSelectionTimeoutMS=300")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&st.stderr).contains("127.0.0.1:8"), "{}", String::from_utf8_lossy(&st.stderr));
    // A wrong URI in the keyring can be seen and removed without the store it names.
    assert_eq!(source("REEF_MONGODB_URI").as_deref(), Some("keyring"));
    ok(run(&["secret", "delete", "REEF_MONGODB_URI"], None));
    assert_eq!(source("REEF_MONGODB_URI").as_deref(), Some("unset"));
    ok(run(&["status"], None));

    // A product secret joins the list by name; its value appears nowhere in the store.
    ok(run(&["secret", "set", "stripe key", "--product", "habit-flow"], Some("rk_live_abc123\n")));
    assert_eq!(source("REEF_PRODUCT_HABIT_FLOW_STRIPE_KEY").as_deref(), Some("keyring"));
    let db = std::fs::read(e.dir.path().join("reef.db")).unwrap();
    assert!(!db.windows(13).any(|w| w == b"rk_live_abc12"), "the value is not in the store file");
    assert!(db.windows(34).any(|w| w == b"REEF_PRODUCT_HABIT_FLOW_STRIPE_KEY"), "its name is (for the list)");
    let bad = run(&["secret", "set", "lower_case"], Some("x\n"));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a secret name"));
}

fn feed(mut child: std::process::Child, input: &str) -> std::process::Output {
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn service_install_writes_a_user_unit_that_restarts_reef_serve_and_names_no_secret() {
    let e = Env::new();
    let home = tempfile::tempdir().unwrap();
    e.set_env("XDG_CONFIG_HOME", home.path().to_str().unwrap());
    e.set_env("REEF_LLM_API_KEY", "sk-live-must-not-be-in-the-unit");
    let out = e.json(&["service", "install", "--role", "worker"]);
    let path = home.path().join("systemd/user/reef.service");
    assert_eq!(out["unit"].as_str(), Some(path.to_str().unwrap()));
    let unit = std::fs::read_to_string(&path).unwrap();
    assert!(unit.contains(&format!("ExecStart={} serve --role worker", env!("CARGO_BIN_EXE_reef"))), "{unit}");
    assert!(unit.contains("Restart=on-failure") && unit.contains("WantedBy=default.target"), "{unit}");
    assert!(unit.contains(&format!("Environment=REEF_DATA_DIR={}", e.dir.path().display())), "{unit}");
    assert!(!unit.contains("sk-live"), "no secret in the unit: {unit}");
    // systemd's own check of the unit, where systemd is installed.
    match std::process::Command::new("systemd-analyze").arg("verify").arg(&path).output() {
        Ok(o) => assert!(o.status.success(), "systemd-analyze verify: {}", String::from_utf8_lossy(&o.stderr)),
        Err(_) => eprintln!("SKIPPED: systemd-analyze is not installed; the unit was checked by its text only"),
    }
    assert_eq!(e.json(&["service", "uninstall"])["removed"], true);
    assert!(!path.exists());
}

#[test]
fn status_says_what_needs_the_operator_and_ack_stops_counting_the_failures_so_far() {
    let e = Env::new();
    e.ok(&["demo"]);
    e.ok(&["pause", "rex", "--reason", "deploy freeze"]);
    let a = e.json(&["status"])["attention"].clone();
    assert_eq!((a["approvals"].as_u64(), a["needs_human"].as_u64(), a["failed"].as_u64()), (Some(3), Some(1), Some(1)), "{a}");
    let held = &a["held_agents"][0];
    assert_eq!(
        (held["agent"].as_str(), held["hold"].as_str(), held["reason"].as_str()),
        (Some("rex"), Some("pause"), Some("deploy freeze"))
    );
    assert!(a["dispatcher"].is_null(), "no engine runs here");
    // Every cap with the day's pace; the demo's spend all fell within the last hour.
    let factory = a["spend"].as_array().unwrap().iter().find(|o| o["agent"].is_null()).unwrap().clone();
    assert!(factory["per_hour"].as_i64().unwrap() > 0 && factory["projected"].as_i64() > factory["spent"].as_i64(), "{factory}");
    assert!(a["spend"].as_array().unwrap().iter().any(|o| o["agent"] == "rex"), "agents by name: {a}");
    let text = e.ok(&["status"]);
    assert!(text.contains("rex is on pause by operator:tester@testhost: deploy freeze"), "{text}");
    assert!(text.contains("3 approvals") && text.contains("1 failed task") && text.contains("no engine runs"), "{text}");
    e.ok(&["ack"]);
    let a = e.json(&["status"])["attention"].clone();
    assert_eq!(a["failed"], 0, "failures before the acknowledgement no longer count: {a}");
    assert!(a["acknowledged_at"].is_string());
    let audit = e.json(&["audit", "--action", "alerts."]);
    assert_eq!(audit["audit"][0]["actor"], "operator:tester@testhost", "{audit}");
}

#[test]
fn schedules_are_saved_listed_and_removed_from_the_command_line() {
    let e = Env::new();
    let bad = e.fails(&["schedule", "save", "pulse", "--cron", "every hour", "--title", "Check"]);
    assert!(bad.contains("\"every hour\" is not a cron expression"), "{bad}");
    let saved = e.json(&["schedule", "save", "pulse", "--cron", "*/30 * * * *", "--title", "Check the monitors", "--agent", "scout"]);
    assert!(saved["next_run"].as_str().is_some_and(|t| t.contains(":00:00.000Z") || t.contains(":30:00.000Z")), "{saved}");
    let list = e.json(&["schedules"]);
    let s = list["schedules"].as_array().unwrap().iter().find(|s| s["name"] == "pulse").cloned().unwrap();
    assert_eq!((s["cron"].as_str(), s["source"].as_str()), (Some("*/30 * * * *"), Some("store")));
    let run = e.json(&["schedule", "run", "pulse"]);
    assert_eq!((run["title"].as_str(), run["assigned_to"].as_str()), (Some("Check the monitors"), Some("scout")));
    e.ok(&["schedule", "rm", "pulse"]);
    assert!(e.json(&["schedules"])["schedules"].as_array().unwrap().is_empty());
    assert!(e.fails(&["schedule", "run", "pulse"]).contains("not found"));
}
