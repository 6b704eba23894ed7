//! What agents do through REEF's loop, run by a real `reef serve` through the real LiteLLM proxy
//! in front of the scripted tool-calling provider (a stand-in for the paid models that cannot be
//! called here; its scripts are in `agent_loop.rs`): work in their task's own directory, contained
//! (a hostile script tries every way out); Kev splits a goal, waits for Scout and Rex and
//! summarises; every step reaches Langfuse (a stand-in for its ingestion endpoint).

use crate::agent_loop::{agent, scripted, status};
use crate::common::*;
use crate::engine::pairs;
use serde_json::Value;
use std::time::Duration;

/// Run inside the sandbox: looks for any config.toml (REEF's data dir holds one) under /tmp, where
/// the test's data and work dirs live, and prints the environment's names.
pub(crate) const PROBE: &str = "python3 -c \"import os; found=[r for r,_,fs in os.walk('/tmp') if 'config.toml' in fs]; print('FOUND', found or 'NOTHING'); print('ENV', sorted(os.environ))\"";

#[test]
fn agents_work_in_their_own_directory_contained_and_the_trace_keeps_their_diffs() {
    let Some(s) = scripted() else { return };
    let e = Env::new();
    let mut config = format!("[engine]\nlease_seconds = 5\nlitellm_config = {:?}\n", s.gateway.config.display().to_string());
    config.push_str(&agent("builder", "build-script", &["read_file", "write_file", "edit_file", "run_command"]));
    e.write_config(&config);
    let status_json = e.json(&["status"]);
    assert_eq!(status_json["sandbox"]["usable"], true, "bubblewrap must work on this machine (scripts/test.sh installs it): {status_json}");
    let id = e.add_task("Write hello.py", &["--agent", "builder"]);
    let env = s.env();
    let mut serve = e.serve("both", &pairs(&env));
    let ended = wait_until(Duration::from_secs(120), || matches!(status(&e, &id).as_str(), "done" | "failed" | "needs_human"));
    sigterm(&mut serve);
    assert!(ended && status(&e, &id) == "done", "{}", e.ok(&["task", "show", &id]));
    // The file is where the task's directory is, as the last edit left it.
    let file = e.work.path().join(&id).join("hello.py");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "print('hello, REEF')\n");

    let steps = e.json(&["task", "trace", &id])["steps"].as_array().unwrap().clone();
    let call = |step: usize, i: usize| steps[step]["calls"][i].clone();
    let answer = |step: usize, i: usize| -> Value { serde_json::from_str(call(step, i)["answer"].as_str().unwrap()).unwrap() };
    // Writes and edits carry their diffs; the command's output is its answer.
    let d0 = call(0, 0)["diff"].as_str().unwrap().to_string();
    assert!(d0.contains("--- /dev/null") && d0.contains("+print('hello from the loop')"), "{d0}");
    assert_eq!(answer(1, 0)["exit_code"], 0, "{:?}", call(1, 0));
    assert!(answer(1, 0)["output"].as_str().unwrap().contains("hello from the loop"));
    let d2 = call(2, 0)["diff"].as_str().unwrap().to_string();
    assert!(d2.contains("-print('hello from the loop')") && d2.contains("+print('hello, REEF')"), "{d2}");
    // The attacks: paths out, a symlink out, .git, a shell, a path as program — refused; what a
    // command sees is the sandbox: no data dir, no key in its environment.
    let codes: Vec<String> = (0..8).map(|i| answer(3, i)["error"].as_str().unwrap_or("ok").to_string()).collect();
    assert_eq!(
        codes,
        ["outside_workspace", "outside_workspace", "ok", "outside_workspace", "git_internals", "not_allowed", "not_allowed", "ok"],
        "{:?}",
        steps[3]
    );
    assert!(e.work.path().join(&id).join("etc").is_symlink(), "the link was made inside the task's directory");
    assert!(!e.work.path().join(&id).join(".git").exists(), "nothing was written under .git");
    let probe = answer(3, 7)["output"].as_str().unwrap().to_string();
    assert!(probe.contains("FOUND NOTHING"), "the sandbox shows no REEF data dir: {probe}");
    assert!(probe.contains("REEF_TASK_ID") && !probe.contains("REEF_LLM_API_KEY") && !probe.contains("LITELLM"), "{probe}");
    assert!(answer(3, 5)["message"].as_str().unwrap().contains("python3"), "a refusal names what may run: {:?}", answer(3, 5));
    assert!(answer(4, 0)["output"].as_str().unwrap().contains("hello, REEF"));
    let slow = answer(4, 1);
    assert_eq!((slow["timed_out"].as_bool(), slow["exit_code"].is_null()), (Some(true), true), "{slow}");
    assert!(slow["seconds"].as_f64().unwrap() < 30.0, "killed at its limit: {slow}");
    // Every workspace call audited as the agent, the refusals as such.
    let audit = e.json(&["audit", "--subject", &id, "--action", "loop.", "--limit", "50"])["audit"].as_array().unwrap().clone();
    let actions: Vec<&str> = audit.iter().map(|a| a["action"].as_str().unwrap()).collect();
    for want in [
        "loop.write_file",
        "loop.edit_file",
        "loop.run_command",
        "loop.read_file.refused",
        "loop.write_file.refused",
        "loop.run_command.refused",
    ] {
        assert!(actions.contains(&want), "{want} audited: {actions:?}");
    }
    assert!(audit.iter().all(|a| a["actor"] == "agent:builder"), "{audit:?}");
    let text = e.ok(&["task", "trace", &id]);
    assert!(text.contains("+print('hello, REEF')"), "reef task trace shows the diff: {text}");
}

#[test]
fn a_goal_is_split_by_kev_worked_by_scout_and_rex_and_summarised_once_they_are_done() {
    let Some(s) = scripted() else { return };
    let e = Env::new();
    let mut config = format!("[engine]\nlease_seconds = 5\nlitellm_config = {:?}\n", s.gateway.config.display().to_string());
    config.push_str(&agent("kev", "kev-script", &["create_task", "wait_for_subtasks", "task_status"]));
    config.push_str(&agent("scout", "scout-script", &["remember"]));
    config.push_str(&agent("rex", "rex-script", &["write_file"]));
    // Blaze is paused: its announcement waits, and the operator cancels it while Kev waits.
    config.push_str(&agent("blaze", "scout-script", &["remember"]));
    e.write_config(&config);
    e.ok(&["pause", "blaze"]);
    let goal = e.json(&["task", "add", "Price PagePulse and put the price on its site", "--agent", "kev", "--product", "pagepulse"])["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let env = s.env();
    let mut serve = e.serve("both", &pairs(&env));
    let announce = || e.tasks().into_iter().find(|x| x["title"] == "Announce the price" && x["parent_id"] == goal.as_str());
    let waiting = wait_until(Duration::from_secs(120), || {
        status(&e, &goal) == "blocked" && e.tasks().iter().filter(|x| x["parent_id"] == goal.as_str() && x["status"] == "done").count() == 2
    });
    assert!(waiting, "Kev waits on its subtasks, two of them done: {:?}", e.tasks());
    // A subtask that ends without being done (cancelled here) still lets its parent go on.
    e.ok(&["cancel", announce().unwrap()["_id"].as_str().unwrap()]);
    let ended = wait_until(Duration::from_secs(120), || matches!(status(&e, &goal).as_str(), "done" | "failed" | "needs_human"));
    sigterm(&mut serve);
    assert!(ended && status(&e, &goal) == "done", "{}", e.ok(&["task", "show", &goal]));
    // The operator sees one result, on the goal.
    let t = e.json(&["task", "show", &goal])["task"].clone();
    assert!(t["result"].as_str().unwrap().starts_with("PagePulse pricing: $9 a month"), "{t}");
    // Kev split it: two subtasks of the goal, for Scout and Rex, each done with its own result.
    let subs: Vec<Value> = e.tasks().into_iter().filter(|x| x["parent_id"] == goal.as_str() && x["assigned_to"] != "blaze").collect();
    let mut who: Vec<(String, String)> =
        subs.iter().map(|x| (x["assigned_to"].as_str().unwrap().to_string(), x["status"].as_str().unwrap().to_string())).collect();
    who.sort();
    assert_eq!(who, [("rex".to_string(), "done".to_string()), ("scout".to_string(), "done".to_string())], "{subs:?}");
    assert!(subs.iter().all(|x| x["product"] == "pagepulse"), "the product is inherited: {subs:?}");
    let rex = subs.iter().find(|x| x["assigned_to"] == "rex").unwrap()["_id"].as_str().unwrap().to_string();
    assert!(e.work.path().join(&rex).join("pricing.html").is_file(), "Rex wrote its page in its own task's directory");
    // Kev waited (blocked on its subtasks, its attempt given back), then read their results
    // before it summarised: the task_status answer holds both.
    let waited = e.json(&["events", "--subject", &goal, "--kind", "task.waiting"])["events"].as_array().unwrap().len();
    assert_eq!(waited, 1, "it waited once");
    let steps = e.json(&["task", "trace", &goal])["steps"].as_array().unwrap().clone();
    let names: Vec<&str> = steps.iter().map(|s| s["calls"][0]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["create_task", "wait_for_subtasks", "task_status", "finish"], "{steps:?}");
    assert!(steps[1]["calls"][0]["answer"].as_str().unwrap().contains("\"waiting\":true"), "{:?}", steps[1]);
    let read = steps[2]["calls"][0]["answer"].as_str().unwrap();
    assert!(read.contains("Competitors charge $9-29") && read.contains("pricing.html written"), "Kev read both results: {read}");
    assert!(read.contains("cancelled"), "and saw the announcement was cancelled: {read}");
    assert!(t["attempts"].as_u64().unwrap() <= 2, "waiting used no attempt of its own: {t}");
}

#[test]
fn every_step_reaches_langfuse_as_a_generation_with_its_tool_calls_as_spans() {
    let Some(s) = scripted() else { return };
    let e = Env::new();
    // Langfuse's server cannot be installed here: a stand-in for its ingestion endpoint
    // (tests/support/langfuse_receiver.py) checks the keys and the batch as Langfuse does.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = e.dir.path().join("langfuse.jsonl");
    let mut rx = std::process::Command::new("python3")
        .arg(crate::common::root().join("tests/support/langfuse_receiver.py"))
        .args([port.to_string(), "pk-lf-test".into(), "sk-lf-test-0123456789".into(), out.display().to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()),
        "the stand-in did not start"
    );
    let mut config = format!("[engine]\nlease_seconds = 5\nlitellm_config = {:?}\n", s.gateway.config.display().to_string());
    config.push_str(&agent("noter", "note-script", &["remember"]));
    config.push_str(&format!(
        "[[webhooks]]\nname = \"langfuse\"\nurl = \"http://127.0.0.1:{port}/api/public/ingestion\"\nevents = [\"trace.step\", \"task.done\"]\n\
         template = \"langfuse\"\nsecret = \"REEF_LANGFUSE_KEYS\"\n"
    ));
    e.set_env("REEF_LANGFUSE_KEYS", "pk-lf-test:sk-lf-test-0123456789");
    e.write_config(&config);
    let id = e.add_task("Keep a note", &["--agent", "noter", "--product", "pingly"]);
    let env = s.env();
    let mut serve = e.serve("both", &pairs(&env));
    let got = || -> Vec<Value> {
        std::fs::read_to_string(&out).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    };
    let of = |kind: &str| -> Vec<Value> { got().into_iter().filter(|x| x["type"] == kind).map(|x| x["body"].clone()).collect() };
    let arrived = wait_until(Duration::from_secs(90), || {
        of("generation-create").len() >= 2 && of("trace-create").iter().any(|t| t["output"].is_object())
    });
    sigterm(&mut serve);
    let _ = rx.kill();
    let _ = rx.wait();
    assert!(arrived, "{:?} / {}", got(), e.ok(&["webhooks"]));
    // One trace: the task, closed with how it ended.
    assert!(of("trace-create").iter().all(|t| t["id"] == id.as_str()));
    // A generation per step (kept once, however often delivered), with the step's model, tokens
    // and cost as REEF counted them.
    let steps = e.json(&["task", "trace", &id])["steps"].as_array().unwrap().clone();
    let mut gens = of("generation-create");
    gens.sort_by_key(|g| g["id"].as_str().unwrap().to_string());
    gens.dedup_by_key(|g| g["id"].clone());
    assert_eq!(gens.len(), steps.len(), "{gens:?}");
    for (g, st) in gens.iter().zip(&steps) {
        assert_eq!(g["id"], format!("{id}:{}:{}", st["attempt"], st["step"]));
        assert_eq!((g["traceId"].as_str(), g["model"].as_str()), (Some(id.as_str()), Some("note-script")));
        assert_eq!(g["usageDetails"]["input"], st["prompt_tokens"]);
        let cost = st["cost"].as_i64().unwrap() as f64 / 1e6;
        assert!((g["costDetails"]["total"].as_f64().unwrap() - cost).abs() < 1e-9, "{g} vs {st}");
    }
    // Each tool call a span under its step's generation.
    let spans = of("span-create");
    let names: Vec<&str> = spans.iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"remember") && names.contains(&"finish"), "{names:?}");
    assert!(spans.iter().all(|x| gens.iter().any(|g| g["id"] == x["parentObservationId"])), "{spans:?}");
    let deliveries = e.json(&["webhooks"])["deliveries"].as_array().unwrap().clone();
    assert!(deliveries.iter().all(|d| d["ok"] == true), "Langfuse took every batch with the keys: {deliveries:?}");
}
