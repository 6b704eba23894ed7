//! CLI runs end to end: the budget a run holds while it lives, and prompts too long for a
//! command line.

use crate::common::{sigterm, wait_until, Env};
use std::time::Duration;

#[test]
fn a_cli_run_without_a_soft_cap_holds_budget_renews_the_hold_and_its_spend_reaches_the_daily_caps() {
    let e = Env::new();
    let flag = e.fx().join("running");
    // Runs past the reservation's 2 s lifetime, then reports what it spent. With the host's network
    // (where it could reach a provider around REEF's meter) its report is what it is charged.
    let script = format!("touch {f}; sleep 5; echo '{{\"result\":\"ok\",\"total_cost_usd\":0.25}}'", f = flag.display());
    e.write_config(&format!(
        "[engine]\nlease_seconds = 3\nreservation_seconds = 2\n[[executors]]\nname = \"long\"\nkinds = [\"long\"]\ncommand = [\"sh\", \"-c\", {script:?}]\nnetwork = \"host\"\n{w}",
        w = e.fx_writable()
    ));
    e.with_prices();
    let id = e.add_task("Long run", &["--type", "long", "--agent", "rex"]);
    let mut serve = e.serve("both", &[]);
    let rex = |s: &serde_json::Value| {
        s["caps_today"].as_array().unwrap().iter().find(|c| c["scope"].as_str().unwrap().starts_with("agent:rex")).cloned().unwrap()
    };
    assert!(wait_until(Duration::from_secs(20), || flag.exists()), "the run started");
    let started = std::time::Instant::now();
    // Past the hold's first lifetime (and the dispatcher's expiry sweeps), it is still held.
    let mut held_late = false;
    while started.elapsed() < Duration::from_secs(4) {
        held_late = rex(&e.json(&["status"]))["reserved"].as_i64().unwrap() == 1_000_000;
        if !held_late {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(held_late, "the run's default $1 hold stayed in the agent's scope while it ran");
    assert!(wait_until(Duration::from_secs(20), || e.json(&["task", "show", &id])["task"]["status"] == "done"));
    sigterm(&mut serve);
    let s = e.json(&["status"]);
    let a = rex(&s);
    assert_eq!((a["spent"].as_i64(), a["reserved"].as_i64()), (Some(250_000), Some(0)), "settled at what it reported: {a}");
    let global = s["caps_today"].as_array().unwrap().iter().find(|c| c["scope"].as_str().unwrap().starts_with("global:")).cloned().unwrap();
    assert_eq!(global["spent"].as_i64(), Some(250_000), "the factory's daily cap sees it too: {global}");
}

#[test]
fn a_prompt_too_long_for_a_command_line_reaches_the_agent_by_file_or_stdin() {
    let e = Env::new();
    e.write_config(
        "[engine]\nlease_seconds = 2\nmax_attempts = 1\n\
         [[executors]]\nname = \"byfile\"\nkinds = [\"byfile\"]\ncommand = [\"sh\", \"-c\", \"wc -c < \\\"$1\\\"\", \"agent\", \"{prompt_file}\"]\n\
         [[executors]]\nname = \"bystdin\"\nkinds = [\"bystdin\"]\ncommand = [\"sh\", \"-c\", \"wc -c\"]\nprompt_on_stdin = true\n\
         [[executors]]\nname = \"byargv\"\nkinds = [\"byargv\"]\ncommand = [\"sh\", \"-c\", \"echo ran\", \"agent\", \"{prompt}\"]\n",
    );
    e.with_prices();
    // 200 KB of description: more than one command-line argument may hold (128 KiB).
    let description = "Spec line of the migration plan. ".repeat(6_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ids: Vec<String> = rt.block_on(async {
        let ports = reef_store::sqlite::SqliteStore::open(&e.dir.path().join("reef.db")).unwrap().ports();
        let mut ids = vec![];
        for kind in ["byfile", "bystdin", "byargv"] {
            let mut n = reef_core::NewTask::titled(format!("Long brief ({kind})"));
            n.description = description.clone();
            n.kind = Some(kind.into());
            n.assigned_to = Some("rex".into());
            ids.push(ports.tasks.create(n, reef_core::Clock::now(&reef_core::SystemClock)).await.unwrap().0.id);
        }
        ids
    });
    let mut serve = e.serve("both", &[]);
    let show = |id: &str| e.json(&["task", "show", id])["task"].clone();
    let ended = |id: &str| matches!(show(id)["status"].as_str(), Some("done" | "failed"));
    assert!(wait_until(Duration::from_secs(60), || ids.iter().all(|id| ended(id))), "{:?}", e.tasks());
    sigterm(&mut serve);
    for id in &ids[..2] {
        let t = show(id);
        let bytes: usize = t["result"].as_str().unwrap_or_default().trim().parse().unwrap_or(0);
        assert!(bytes > description.len(), "the whole prompt arrived ({bytes} bytes): {}", t["title"]);
    }
    let t = show(&ids[2]);
    assert_eq!(t["status"], "failed");
    assert!(t["error"].as_str().unwrap().contains("prompt_on_stdin"), "the refusal says how to fix it: {}", t["error"]);
    assert!(
        !e.dir.path().join("prompts").read_dir().map(|mut d| d.next().is_some()).unwrap_or(false),
        "prompt files are removed after the attempt"
    );
}
