//! The hostile-agent suite: scripted agents, started by one real `reef serve`, each trying one
//! escape — another product's secret, the gateway or a local service, spending past its hold,
//! drowning the feed, spilling a secret — plus the legitimate thing that must still work (a
//! prompt past argv's limit). Each attempt's outcome is judged from what REEF recorded, and the
//! suite prints a table of attempts and outcomes. (The sandbox's own walls: `containment::…`;
//! hostile ids and documents: `foreign::…`; a worker that loses its lease: `engine::…`.)

use crate::common::*;
use std::time::Duration;

const OWN: &str = "alpha-own-secret-value-1";
const OTHER: &str = "bravo-other-secret-value-2";

/// One executor per attempt; `args` follow the script (`{prompt_file}` for the huge prompt).
fn executor(name: &str, script: &str, args: &str) -> String {
    format!("[[executors]]\nname = {name:?}\nkinds = [{name:?}]\ncommand = [\"sh\", \"-c\", {script:?}{args}]\ntimeout_seconds = 120\n")
}

#[test]
fn hostile_agents_each_try_one_escape_and_every_attempt_fails() {
    let e = Env::new();
    let service = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = service.local_addr().unwrap().port();
    let reach = format!("python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), 2)'");
    // The real LiteLLM proxy (mocked providers) behind REEF's metered endpoint, where installed.
    let g = crate::gateway::gateway("the hostile suite's metered row");
    let prices = g.map(|g| format!("litellm_config = {:?}\n", g.config.display().to_string())).unwrap_or_default();
    let mut config =
        format!("[engine]\nworkers = 7\n{prices}[[agents]]\nname = \"rex\"\nrole = \"builder\"\ndaily_cap_usd = 40\nmax_concurrent = 7\n");
    config.push_str(&executor(
        "other_secret",
        // It knows what the other product's secret looks like, not its value.
        "if env | grep -q bravo-other; then echo reached; else echo blocked; fi; test -n \"$KEY\" && echo own-secret-present",
        "",
    ));
    config.push_str(&executor(
        "gateway_direct",
        &format!("if {reach}; then r=reached; else r=blocked; fi; echo \"{{\\\"cost_usd\\\": 0, \\\"result\\\": \\\"$r\\\"}}\""),
        "",
    ));
    // With the host's network, so its report counts (in a sealed sandbox only the meter does).
    config.push_str(&executor("outspend", "echo '{\"cost_usd\": 1000000, \"result\": \"spent a fortune, honest\"}'", ""));
    config.push_str("network = \"host\"\n");
    config.push_str(&executor("flood", "yes 'flooding the feed with one more line' | head -n 50000; echo flooded", ""));
    // In clear, and base64-encoded to slip past a plain match.
    config.push_str(&executor("spill", "echo \"the secret is $KEY\"; echo \"done: $KEY\"; printf 'key=%s' \"$KEY\" | base64", ""));
    config.push_str(&executor(
        "huge_prompt",
        "n=$(wc -c < \"$1\"); if [ \"$n\" -gt 204800 ]; then echo reached $n; else echo blocked $n; fi",
        ", \"agent\", \"{prompt_file}\"",
    ));
    if g.is_some() {
        // Calls the gateway through REEF's endpoint until refused, then reports $0.
        let script = "import json, os, urllib.request, urllib.error\nfor n in range(100):\n    r = urllib.request.Request(os.environ['OPENAI_BASE_URL'] + '/chat/completions', data=json.dumps({'model': 'frontier', 'messages': [{'role': 'user', 'content': 'hi'}]}).encode(), headers={'Authorization': 'Bearer ' + os.environ['OPENAI_API_KEY'], 'Content-Type': 'application/json'})\n    try:\n        urllib.request.urlopen(r, timeout=30).read()\n    except urllib.error.HTTPError:\n        break\nprint(json.dumps({'cost_usd': 0, 'result': 'free'}))\n";
        config.push_str(&format!(
            "[[executors]]\nname = \"metered_zero\"\nkinds = [\"metered_zero\"]\ncommand = [\"/usr/bin/python3\", \"-c\", {script:?}]\nsoft_cap_usd = 0.01\ntimeout_seconds = 120\n"
        ));
    }
    e.write_config(&config);
    if g.is_none() {
        e.with_prices();
    }

    // The tasks, product alpha's; the huge one's brief is 320 KiB (argv holds 128 KiB).
    let mut kinds = vec!["other_secret", "gateway_direct", "outspend", "flood", "spill", "huge_prompt"];
    if g.is_some() {
        kinds.push("metered_zero");
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ids: Vec<(&str, String)> = rt.block_on(async {
        let ports = reef_store::sqlite::SqliteStore::open(&e.dir.path().join("reef.db")).unwrap().ports();
        let mut ids = vec![];
        for kind in kinds {
            let mut n = reef_core::NewTask::titled(format!("Hostile: {kind}"));
            n.kind = Some(kind.into());
            n.assigned_to = Some("rex".into());
            n.product = Some("alpha".into());
            if kind == "huge_prompt" {
                n.description = "x".repeat(200 * 1024);
            }
            ids.push((kind, ports.tasks.create(n, reef_core::Clock::now(&reef_core::SystemClock)).await.unwrap().0.id));
        }
        ids
    });
    // Product secrets: alpha's reaches alpha's agents as KEY; bravo's must not.
    let mut env = vec![("REEF_SECRET_ALPHA_KEY", OWN), ("REEF_SECRET_BRAVO_KEY", OTHER)];
    if let Some(g) = g {
        env.extend([("REEF_LLM_BASE_URL", g.url.as_str()), ("REEF_LLM_API_KEY", g.key.as_str())]);
    }
    let mut serve = e.serve("both", &env);
    let settled = wait_until(Duration::from_secs(180), || {
        ids.iter()
            .all(|(_, id)| matches!(e.json(&["task", "show", id])["task"]["status"].as_str(), Some("done" | "failed" | "needs_human")))
    });
    let alive = serve.try_wait().unwrap().is_none();
    // Stopping is prompt too: nothing an agent printed keeps REEF busy (its result is embedded
    // into memory only up to MAX_RESULT_MEMORIES chunks).
    let t0 = std::time::Instant::now();
    sigterm(&mut serve);
    let stop = t0.elapsed();
    assert!(stop < Duration::from_secs(60), "reef serve took {stop:?} to stop");
    assert!(settled, "every hostile task settled: {:?}", e.tasks());
    assert!(alive, "reef serve survived every attempt");
    let task = |k: &str| e.json(&["task", "show", &ids.iter().find(|(n, _)| *n == k).unwrap().1]);
    let result = |k: &str| task(k)["task"]["result"].as_str().unwrap_or("").to_string();

    let mut rows: Vec<(&str, &str, String, String)> = vec![];
    // 1. Another product's secret: not in its environment (its own is).
    let r = result("other_secret");
    rows.push(("read another product's secret", "blocked", r.lines().next().unwrap_or("").into(), "its environment".into()));
    assert!(r.contains("own-secret-present"), "the product's own secret does reach it: {r}");
    // 2. The gateway (or any local service) directly, then report $0: no route out.
    rows.push(("call the gateway itself, report $0", "blocked", result("gateway_direct"), format!("a TCP connect to 127.0.0.1:{port}")));
    // 3. Spend past its hold by reporting a fortune: a report counts for at most 10x the hold.
    let status = e.json(&["status"]);
    let worst = status["caps_today"].as_array().unwrap().iter().filter_map(|c| c["spent"].as_f64()).fold(0.0, f64::max) / 1e6;
    rows.push((
        "outspend its reservation",
        "blocked",
        // The metered row's $0.01 shares the day with it.
        if worst <= 10.0 + if g.is_some() { 0.01 } else { 0.0 } + 1e-9 { "blocked".into() } else { "reached".into() },
        format!("reported $1,000,000; largest daily scope spent ${worst:.2}"),
    ));
    // 4. Drown the feed: the engine keeps going and the feed keeps a bounded share.
    let flood_id = &ids.iter().find(|(n, _)| *n == "flood").unwrap().1;
    let lines =
        e.json(&["events", "--subject", flood_id, "--kind", "task.output", "--limit", "1000000"])["events"].as_array().unwrap().len();
    let flooded = task("flood")["task"]["status"] == "done";
    rows.push((
        "flood events",
        "blocked",
        if flooded && lines < 50_000 { "blocked".into() } else { "reached".into() },
        format!("printed 50,000 lines; {lines} became events; the task finished"),
    ));
    // 5. Spill a secret: never stored in clear (so never sent), anywhere in the data dir.
    let mut clear = vec![];
    let encoded = {
        use base64::Engine;
        // The characters of `key=<secret>`'s encoding that hold the secret alone.
        let e = base64::engine::general_purpose::STANDARD.encode(format!("key={OWN}"));
        e[6..e.len() - 4].to_string()
    };
    for entry in std::fs::read_dir(e.dir.path()).unwrap().flatten() {
        if entry.path().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap();
            let has = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
            if has(OWN) || has(&encoded) {
                clear.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    let spilled = result("spill");
    rows.push((
        "print a secret, also base64-encoded",
        "blocked",
        if !clear.is_empty() || !spilled.contains("[redacted") || !spilled.contains(", encoded]") {
            "reached".into()
        } else {
            "blocked".into()
        },
        format!("the data dir's files, byte by byte (in clear in: {clear:?}); the result: {spilled:?}"),
    ));
    // 6. What must still work: a prompt too long for a command line arrives whole, by file.
    let r = result("huge_prompt");
    rows.push((
        "a prompt past argv's limit (must work)",
        "reached",
        r.split_whitespace().next().unwrap_or("").into(),
        format!("wc -c of the prompt file: {}", r.trim()),
    ));

    // 7. Spend through REEF's metered endpoint and report $0: stopped at its reservation by what
    // the meter counted.
    if g.is_some() {
        let t = task("metered_zero")["task"].clone();
        let stopped = t["status"] == "needs_human" && e.ok(&["task", "show", t["_id"].as_str().unwrap_or("")]).contains("metered by REEF");
        rows.push((
            "spend through the meter, report $0",
            "blocked",
            if stopped { "blocked".into() } else { "reached".into() },
            format!("status {}; a $0.01 reservation, each call $0.005 by the meter", t["status"]),
        ));
    } else {
        eprintln!("SKIPPED row 'spend through the meter, report $0': LiteLLM is not installed");
    }

    let mut table = format!("\n{:<40} {:<9} {:<9} {}\n", "ATTEMPT", "EXPECTED", "OUTCOME", "JUDGED BY");
    for (what, want, got, how) in &rows {
        table.push_str(&format!("{what:<40} {want:<9} {got:<9} {how}\n"));
    }
    eprintln!("{table}");
    for (what, want, got, _) in &rows {
        assert_eq!(got.as_str(), *want, "{what}:{table}");
    }
}
