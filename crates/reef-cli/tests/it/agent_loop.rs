//! REEF's own agent loop, run by a real `reef serve` through the real LiteLLM proxy in front of a
//! scripted tool-calling provider (`tests/support/scripted_provider.py`: it stands in for the paid
//! models that cannot be called here, answering each model name from a script). Proven: an agent
//! acts through tools (keeps a memory, splits off a subtask) and ends by `finish`; a looping agent,
//! one that never calls `finish` and one past its step limit are stopped, saying why; a tool that
//! needs a person parks the task and the next attempt continues from the transcript without asking
//! again; a run over its budget never makes its call; a REEF killed mid-loop is taken over and
//! repeats no tool effect, and a worker frozen past its lease makes none of its calls; sixteen
//! loops at once never pass their agent's cap; every step is kept and shown by `reef task trace`,
//! its cost in the ledger. (What agents do with the loop — files, commands, subtasks, Langfuse —
//! is in `agent_work.rs`, on the same scripted provider.)

use crate::common::*;
use crate::engine::pairs;
use crate::scripted::{call, start, Scripted};
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::Duration;

/// The scripts of every agent in this file, one model name each.
fn scripts() -> Value {
    json!({
        "plan-script": [
            {"call": [call("remember", json!({"content": "Uptime monitors sell at $9 a month; the buyers are indie SaaS founders"}))]},
            {"call": [call("create_task", json!({"title": "Research uptime-monitor pricing", "assigned_to": "scout"}))]},
            {"call": [call("finish", json!({"result": "Planned: one research task for Scout; the market note is in memory."}))]}
        ],
        // An agent handing off work that must not run unasked (policy.rs): a deploy with no
        // class, a class nobody listed, a deploy dressed as research.
        "sneak-script": [
            {"call": [
                call("create_task", json!({"title": "Deploy quietly (agent)", "kind": "deploy", "assigned_to": "rex"})),
                call("create_task", json!({"title": "Invented class (agent)", "action_class": "agent_made_this_up", "assigned_to": "rex"})),
                call("create_task", json!({"title": "Deploy dressed as research (agent)", "kind": "deploy", "action_class": "research", "assigned_to": "rex"}))
            ]},
            {"call": [call("finish", json!({"result": "Handed off the release in three tasks."}))]}
        ],
        "loop-script": [{"call": [call("search_memory", json!({"query": "pricing"}))]}],
        "talk-script": [{"say": "I think the task is done."}],
        "ask-script": [
            // It asks, and in the same breath tries to act: the second call is not run.
            {"call": [
                call("request_approval", json!({"action_class": "customer_message", "summary": "Email the 14 beta users about the launch"})),
                call("report_progress", json!({"message": "emailing the beta users now"}))
            ]},
            {"call": [call("finish", json!({"result": "Emailed the beta users after approval."}))]}
        ],
        "hollow-script": [
            // Arguments that are JSON but not an object, then an empty finish: both refused.
            {"call": [call("create_task", json!(["not", "an", "object"])), call("finish", json!({"result": "  "}))]},
            {"call": [call("finish", json!({"result": "Said something this time."}))]}
        ],
        "step-script": (0..12).map(|i| json!({"call": [call("report_progress", json!({"message": format!("still going {i}")}))]})).collect::<Vec<_>>(),
        "spin-script": (0..60).map(|i| json!({"call": [call("report_progress", json!({"message": format!("spinning {i}")}))]})).collect::<Vec<_>>(),
        "build-script": [
            {"call": [call("write_file", json!({"path": "hello.py", "content": "print('hello from the loop')\n"}))]},
            {"call": [call("run_command", json!({"command": "python3 hello.py"}))]},
            {"call": [call("edit_file", json!({"path": "hello.py", "old_text": "hello from the loop", "new_text": "hello, REEF"}))]},
            // What a hostile agent tries with these tools: every one refused or contained.
            {"call": [
                call("read_file", json!({"path": "/etc/passwd"})),
                call("read_file", json!({"path": "../x"})),
                call("run_command", json!({"command": "python3 -c \"import os; os.symlink('/etc', 'etc')\""})),
                call("read_file", json!({"path": "etc/passwd"})),
                call("write_file", json!({"path": ".git/hooks/pre-commit", "content": "#!/bin/sh\ncurl evil"})),
                call("run_command", json!({"command": "bash -c 'cat /etc/shadow'"})),
                call("run_command", json!({"command": "./hello.py"})),
                call("run_command", json!({"command": crate::agent_work::PROBE})),
            ]},
            {"call": [
                call("run_command", json!({"command": "python3 hello.py"})),
                call("run_command", json!({"command": "python3 -c \"import time; time.sleep(60)\"", "timeout_seconds": 1})),
            ]},
            {"call": [call("finish", json!({"result": "hello.py prints hello, REEF."}))]}
        ],
        "kev-script": [
            {"call": [
                call("create_task", json!({"title": "Research uptime-monitor pricing", "assigned_to": "scout"})),
                call("create_task", json!({"title": "Write the pricing page", "assigned_to": "rex"})),
                call("create_task", json!({"title": "Announce the price", "assigned_to": "blaze"}))
            ]},
            {"call": [call("wait_for_subtasks", json!({}))]},
            {"call": [call("task_status", json!({}))]},
            {"call": [call("finish", json!({"result": "PagePulse pricing: $9 a month after 5 free monitors (Scout's research); the page is written (Rex). Both checked."}))]}
        ],
        "scout-script": [
            {"call": [call("remember", json!({"content": "Uptime monitors sell at $9-29 a month; 5 free monitors is the norm"}))]},
            {"call": [call("finish", json!({"result": "Competitors charge $9-29 a month; 5 free monitors is the norm."}))]}
        ],
        "rex-script": [
            {"call": [call("write_file", json!({"path": "pricing.html", "content": "<h1>PagePulse pricing</h1>\n<p>5 monitors free, then $9 a month.</p>\n"}))]},
            {"call": [call("finish", json!({"result": "pricing.html written: 5 monitors free, then $9 a month."}))]}
        ],
        "note-script": [
            {"call": [call("remember", json!({"content": "Langfuse shows every step of this task"}))]},
            {"call": [call("finish", json!({"result": "Kept one note."}))]}
        ],
        "frozen-script": [
            // Answered 6 s late: the worker that asked is frozen meanwhile and loses the task.
            {"delay_ms": 6000, "call": [call("remember", json!({"content": "written by whoever holds the task"}))]},
            {"call": [call("finish", json!({"result": "Kept one note."}))]}
        ],
        "kill-script": [
            {"call": [call("remember", json!({"content": "the one note kept before the kill"}))]},
            // Answered 4 s late: REEF is killed while this call is in flight.
            {"delay_ms": 4000, "call": [call("finish", json!({"result": "Kept one note."}))]}
        ],
    })
}

/// The scripted provider and a LiteLLM proxy in front of it, started once for this file's tests.
pub(crate) fn scripted() -> Option<&'static Scripted> {
    static S: OnceLock<Option<Scripted>> = OnceLock::new();
    S.get_or_init(|| start("the agent loop tests", &scripts())).as_ref()
}

pub(crate) fn agent(name: &str, model: &str, tools: &[&str]) -> String {
    format!(
        "[[agents]]\nname = {name:?}\nrole = {name:?}\ndaily_cap_usd = 5\nmax_concurrent = 2\nmodel = {model:?}\ntools = {:?}\n",
        tools.iter().map(|t| t.to_string()).collect::<Vec<_>>()
    )
}

pub(crate) fn status(e: &Env, id: &str) -> String {
    e.json(&["task", "show", id])["task"]["status"].as_str().unwrap_or("").to_string()
}

#[test]
fn agents_act_through_tools_until_finish_and_reef_stops_the_ones_that_loop_talk_or_run_on() {
    let Some(s) = scripted() else { return };
    let e = Env::new();
    let mut config = format!(
        "[engine]\nlease_seconds = 2\nmax_attempts = 2\nloop_max_steps = 6\nlitellm_config = {:?}\n",
        s.gateway.config.display().to_string()
    );
    config.push_str(&agent("planner", "plan-script", &["remember", "create_task", "search_memory"]));
    config.push_str(&agent("looper", "loop-script", &["search_memory"]));
    config.push_str(&agent("talker", "talk-script", &["search_memory"]));
    config.push_str(&agent("asker", "ask-script", &["request_approval"]));
    config.push_str(&agent("stepper", "step-script", &["report_progress"]));
    config.push_str(&agent("broke", "plan-script", &["remember"]));
    config.push_str(&agent("hollow", "hollow-script", &["create_task"]));
    // Scout takes the subtask the planner makes; it stays queued (no model for it here).
    config.push_str("[[agents]]\nname = \"scout\"\nrole = \"research\"\ndaily_cap_usd = 5\n");
    e.write_config(&config);
    e.ok(&["pause", "scout"]);
    let add = |title: &str, agent: &str, extra: &[&str]| e.add_task(title, &[&["--agent", agent], extra].concat());
    let plan = add("Plan the uptime-monitor launch", "planner", &["--product", "pingly"]);
    let looping = add("Find our pricing", "looper", &[]);
    let talking = add("Say when you are done", "talker", &[]);
    let asking = add("Email the beta users", "asker", &[]);
    let stepping = add("Keep reporting", "stepper", &[]);
    let broke = add("Plan with no money", "broke", &["--budget", "0.00001"]);
    let hollow = add("Finish with nothing", "hollow", &[]);
    let env = s.env();
    let mut serve = e.serve("both", &pairs(&env));
    let ended = |id: &str| matches!(status(&e, id).as_str(), "done" | "failed" | "needs_human" | "cancelled" | "awaiting_approval");
    let settled = wait_until(Duration::from_secs(120), || {
        [&plan, &looping, &talking, &asking, &stepping, &broke, &hollow].iter().all(|id| ended(id))
    });
    let show = |id: &str| e.ok(&["task", "show", id]);
    assert!(
        settled,
        "every task came to rest: {:?}",
        e.tasks().iter().map(|t| (t["title"].clone(), t["status"].clone())).collect::<Vec<_>>()
    );

    // The planner: a memory kept, a subtask made (its parent and product), done by `finish`.
    let t = e.json(&["task", "show", &plan])["task"].clone();
    assert_eq!(t["status"], "done", "{}", show(&plan));
    assert_eq!(t["result"], "Planned: one research task for Scout; the market note is in memory.");
    let subs: Vec<Value> = e.tasks().into_iter().filter(|x| x["parent_id"] == plan.as_str()).collect();
    assert_eq!(subs.len(), 1, "one subtask: {subs:?}");
    assert_eq!((subs[0]["title"].as_str(), subs[0]["product"].as_str()), (Some("Research uptime-monitor pricing"), Some("pingly")));
    let found = e.json(&["memory", "search", "uptime monitor price", "--product", "pingly"]);
    assert!(found.to_string().contains("$9 a month"), "the memory it kept is searchable: {found}");
    let trace = e.json(&["task", "trace", &plan]);
    let steps = trace["steps"].as_array().unwrap().clone();
    assert_eq!(steps.len(), 3, "{trace}");
    let names: Vec<&str> = steps.iter().map(|s| s["calls"][0]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["remember", "create_task", "finish"]);
    assert!(steps.iter().all(|s| s["calls"][0]["ok"] == true && s["model"] == "plan-script"), "{trace}");
    assert!(steps[1]["calls"][0]["answer"].as_str().unwrap().contains(subs[0]["_id"].as_str().unwrap()), "the tool's answer is kept");
    let traced: i64 = steps.iter().map(|s| s["cost"].as_i64().unwrap()).sum();
    let done = e.json(&["events", "--subject", &plan, "--kind", "task.done"])["events"][0].clone();
    assert!(traced > 0 && done["data"]["cost"].as_i64() == Some(traced), "the run's cost is its steps' cost: {traced} vs {done}");
    let audit = e.json(&["audit", "--subject", &plan, "--action", "mcp.", "--limit", "20"])["audit"].as_array().unwrap().clone();
    let audited: Vec<&str> = audit.iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert!(audited.contains(&"mcp.remember") && audited.contains(&"mcp.create_task"), "every tool call audited: {audited:?}");
    assert!(audit.iter().all(|a| a["actor"] == "agent:planner"));
    let text = e.ok(&["task", "trace", &plan]);
    eprintln!("reef task trace (the planner):\n{text}");
    assert!(text.contains("3 steps") && text.contains("calls create_task"), "{text}");
    // What the model was offered: its own tools and finish, nothing else.
    let requests: Vec<Value> = s.requests();
    let first = requests.iter().find(|r| r["model"] == "plan-script").unwrap();
    let offered: Vec<&str> = first["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert_eq!(offered, ["create_task", "search_memory", "remember", "finish"], "{offered:?}");
    assert!(first["max_tokens"].as_u64().is_some(), "every step carries the limit the backend honours: {first}");

    // The looper: the same call three times in a row, stopped for a person, the reason in its thread.
    let t = e.json(&["task", "show", &looping])["task"].clone();
    assert_eq!(t["status"], "needs_human", "{}", show(&looping));
    assert!(show(&looping).contains("same arguments 3 times"), "{}", show(&looping));
    assert!(t["comments"].to_string().contains("reef:loop"), "the reason is in its thread: {t}");
    assert_eq!(e.json(&["task", "trace", &looping])["steps"].as_array().unwrap().len(), 3);

    // The talker: text without finish is not done; nudged once, then left for a person (its own
    // misbehaviour never buys it a dearer model).
    let t = e.json(&["task", "show", &talking])["task"].clone();
    assert_eq!(t["status"], "needs_human", "{}", show(&talking));
    assert!(show(&talking).contains("ended twice without calling finish"), "{}", show(&talking));
    assert_eq!(t["attempts"], 1, "{t}");
    let steps = e.json(&["task", "trace", &talking])["steps"].as_array().unwrap().clone();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert!(steps[0]["note"].as_str().unwrap().contains("asked to call finish"));

    // A finish without a result is refused as a tool error; the model tries again.
    assert_eq!(status(&e, &hollow), "done", "{}", show(&hollow));
    assert_eq!(e.json(&["task", "show", &hollow])["task"]["result"], "Said something this time.");
    let steps = e.json(&["task", "trace", &hollow])["steps"].as_array().unwrap().clone();
    let oks: Vec<Option<bool>> = steps.iter().flat_map(|s| s["calls"].as_array().unwrap().iter().map(|c| c["ok"].as_bool())).collect();
    assert_eq!(oks, [Some(false), Some(false), Some(true)], "{steps:?}");
    assert!(steps[0]["calls"][0]["answer"].as_str().unwrap().contains("invalid"), "{steps:?}");

    // The stepper: stopped at the step limit.
    let t = e.json(&["task", "show", &stepping])["task"].clone();
    assert_eq!(t["status"], "needs_human", "{}", show(&stepping));
    assert!(show(&stepping).contains("6 steps"), "{}", show(&stepping));
    assert_eq!(e.json(&["task", "trace", &stepping])["steps"].as_array().unwrap().len(), 6);

    // No money: its first step's reservation is refused before any call leaves.
    assert_eq!(status(&e, &broke), "needs_human", "{}", show(&broke));
    assert!(e.json(&["task", "trace", &broke])["steps"].as_array().unwrap().is_empty());
    assert!(!requests.iter().any(|r| r["messages"].to_string().contains("Plan with no money")), "no call left for it");

    // The asker: parked for the approval; approved, the next attempt goes on from the transcript
    // (the approval is not asked again) and finishes.
    assert_eq!(status(&e, &asking), "awaiting_approval", "{}", show(&asking));
    let approvals = e.json(&["approvals"])["approvals"].as_array().unwrap().clone();
    let mine: Vec<&Value> = approvals.iter().filter(|a| a["task_id"] == asking.as_str()).collect();
    assert_eq!(mine.len(), 1, "{approvals:?}");
    e.ok(&["approve", mine[0]["_id"].as_str().unwrap(), "--reason", "go"]);
    assert!(wait_until(Duration::from_secs(60), || status(&e, &asking) == "done"), "{}", show(&asking));
    sigterm(&mut serve);
    assert_eq!(e.json(&["task", "show", &asking])["task"]["result"], "Emailed the beta users after approval.");
    let approvals = e.json(&["approvals", "--status", "all"])["approvals"].as_array().unwrap().clone();
    assert_eq!(approvals.iter().filter(|a| a["task_id"] == asking.as_str()).count(), 1, "asked once: {approvals:?}");
    let steps = e.json(&["task", "trace", &asking])["steps"].as_array().unwrap().clone();
    let shape: Vec<(u64, u64, &str)> = steps
        .iter()
        .map(|s| (s["attempt"].as_u64().unwrap(), s["step"].as_u64().unwrap(), s["calls"][0]["name"].as_str().unwrap()))
        .collect();
    assert_eq!(shape, [(1, 0, "request_approval"), (2, 1, "finish")], "{steps:?}");
    // What it tried to do in the same breath as asking was not done.
    let after_ask = &steps[0]["calls"][1];
    assert_eq!((after_ask["name"].as_str(), after_ask["ok"].as_bool()), (Some("report_progress"), Some(false)), "{steps:?}");
    assert!(after_ask["answer"].as_str().unwrap().contains("not run"), "{after_ask}");
    let progress = e.json(&["events", "--subject", &asking, "--kind", "task.progress"])["events"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(progress, 0, "no progress was reported by the call that was not run");
}

#[test]
fn a_reef_killed_mid_loop_resumes_from_the_transcript_and_repeats_no_tool_effect() {
    let Some(s) = scripted() else { return };
    let e = Env::new();
    let mut config =
        format!("[engine]\nlease_seconds = 2\nmax_attempts = 3\nlitellm_config = {:?}\n", s.gateway.config.display().to_string());
    config.push_str(&agent("keeper", "kill-script", &["remember"]));
    e.write_config(&config);
    let id = e.json(&["task", "add", "Keep one note, then finish", "--agent", "keeper", "--product", "killtest"])["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let env = s.env();
    let mut serve = e.serve("both", &pairs(&env));
    // Step 0 (remember) is answered and kept; step 1's model call is in flight (the provider
    // answers it 4 s late) when REEF is killed without warning.
    let kept_first = wait_until(Duration::from_secs(60), || {
        e.json(&["task", "trace", &id])["steps"].as_array().is_some_and(|s| s.iter().any(|x| x["step"] == 0 && x["answered"] == true))
    });
    assert!(kept_first, "step 0 was kept: {}", e.ok(&["task", "show", &id]));
    serve.kill().unwrap();
    let _ = serve.wait();
    // Another REEF takes the task over once the lease runs out, and goes on from the transcript.
    let mut serve = e.serve("both", &pairs(&env));
    let done = wait_until(Duration::from_secs(90), || status(&e, &id) == "done");
    sigterm(&mut serve);
    assert!(done, "{}", e.ok(&["task", "show", &id]));
    let remembered = e.json(&["audit", "--subject", &id, "--action", "mcp.remember"])["audit"].as_array().unwrap().clone();
    assert_eq!(remembered.len(), 1, "the note was written once, not again by the resumed run: {remembered:?}");
    let steps = e.json(&["task", "trace", &id])["steps"].as_array().unwrap().clone();
    let names: Vec<&str> = steps.iter().filter_map(|s| s["calls"][0]["name"].as_str()).collect();
    assert_eq!(names, ["remember", "finish"], "{steps:?}");
    assert!(steps[1]["attempt"].as_u64() > steps[0]["attempt"].as_u64(), "the finish came from a later attempt: {steps:?}");
}

#[test]
fn a_worker_frozen_past_its_lease_wakes_to_find_its_task_taken_over_and_runs_none_of_its_calls() {
    let Some(s) = scripted() else { return };
    let e = Env::new();
    let mut config =
        format!("[engine]\nlease_seconds = 2\nmax_attempts = 3\nlitellm_config = {:?}\n", s.gateway.config.display().to_string());
    config.push_str(&agent("keeper", "frozen-script", &["remember"]));
    e.write_config(&config);
    let id = e.json(&["task", "add", "Keep one note while frozen", "--agent", "keeper", "--product", "frozen"])["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let env = s.env();
    let mut first = e.serve("both", &pairs(&env));
    // Its model call is in flight (answered 6 s late) when the whole process is frozen.
    let asking =
        || s.requests().iter().any(|r| r["model"] == "frozen-script" && r["messages"].to_string().contains("Keep one note while frozen"));
    assert!(wait_until(Duration::from_secs(60), asking), "the first worker's call never left");
    let signal = |sig: &str, c: &std::process::Child| {
        assert!(std::process::Command::new("kill").args([sig, &c.id().to_string()]).status().unwrap().success());
    };
    signal("-STOP", &first);
    // Another REEF takes the task over once the lease runs out, and finishes it.
    let mut second = e.serve("both", &pairs(&env));
    let done = wait_until(Duration::from_secs(90), || status(&e, &id) == "done");
    assert!(done, "{}", e.ok(&["task", "show", &id]));
    // The frozen worker wakes with its model's answer waiting: it finds the task gone (its lease
    // renewal fails, or the fence before each tool call says so), makes none of its calls and
    // lets go of the step's reservation — held all the while it was frozen.
    signal("-CONT", &first);
    let reserved = || e.json(&["status"])["caps_today"][0]["reserved"].as_i64();
    let let_go = wait_until(Duration::from_secs(60), || reserved() == Some(0));
    sigterm(&mut second);
    sigterm(&mut first);
    assert!(let_go, "the woken worker released its hold: {:?}", e.json(&["status"])["caps_today"]);
    let steps = e.json(&["task", "trace", &id])["steps"].as_array().unwrap().clone();
    assert!(
        steps.iter().filter(|st| st["attempt"] == 1).all(|st| st["calls"].as_array().unwrap().iter().all(|c| c["ok"] == false)),
        "nothing the first worker was told after losing the task was done: {steps:?}"
    );
    let remembered = e.json(&["audit", "--subject", &id, "--action", "mcp.remember"])["audit"].as_array().unwrap().clone();
    assert_eq!(remembered.len(), 1, "the note was written once, by the worker that held the task: {remembered:?}");
    assert!(remembered[0]["actor"] == "agent:keeper");
    assert_eq!(e.json(&["task", "show", &id])["task"]["status"], "done", "the late worker changed nothing");
}

#[test]
fn sixteen_loops_at_once_never_pass_their_agents_cap() {
    let Some(s) = scripted() else { return };
    let e = Env::new();
    let mut config = format!(
        "[engine]\nlease_seconds = 5\nworkers = 16\nmax_attempts = 1\nloop_max_steps = 40\nlitellm_config = {:?}\n",
        s.gateway.config.display().to_string()
    );
    // Each step's worst case is about $0.002 (1,024 tokens out at $2/M, the prompt at $1/M); the
    // agent may spend $0.02 a day, far less than sixteen loops of forty steps would.
    config.push_str(
        "[[agents]]\nname = \"swarm\"\nrole = \"swarm\"\ndaily_cap_usd = 0.02\nmax_concurrent = 16\nmodel = \"spin-script\"\ntools = [\"report_progress\"]\n",
    );
    e.write_config(&config);
    let ids: Vec<String> = (0..16).map(|i| e.add_task(&format!("Spin {i}"), &["--agent", "swarm"])).collect();
    let env = s.env();
    let mut serve = e.serve("both", &pairs(&env));
    // Held at the cap, the agent takes no more work: its tasks wait (pending) and none runs.
    let held = || e.json(&["events", "--kind", "budget.cap_reached"])["events"].as_array().is_some_and(|v| !v.is_empty());
    let busy = |id: &String| matches!(status(&e, id).as_str(), "claimed" | "running");
    let settled = wait_until(Duration::from_secs(120), || held() && !ids.iter().any(busy));
    let caps = e.json(&["status"])["caps_today"].as_array().unwrap().clone();
    sigterm(&mut serve);
    assert!(settled, "{:?}", e.tasks().iter().map(|t| (t["title"].clone(), t["status"].clone())).collect::<Vec<_>>());
    let day = caps.iter().find(|c| c["scope"].as_str().is_some_and(|s| s.starts_with("agent:swarm:day"))).unwrap();
    let (spent, cap) = (day["spent"].as_i64().unwrap(), day["cap"].as_i64().unwrap());
    assert!(spent > 0 && spent <= cap, "spent {spent} of a cap of {cap} micro-dollars: {day}");
    let steps: usize = ids.iter().map(|id| e.json(&["task", "trace", id])["steps"].as_array().unwrap().len()).sum();
    assert!(steps < 16 * 40, "the cap, not the step limit, stopped them ({steps} steps)");
}

#[test]
fn a_step_answered_after_its_task_was_claimed_again_runs_none_of_its_calls() {
    // In one process, so nothing races the fence: the task is claimed again (as another worker
    // would once the lease ran out) while the model's answer is on its way.
    use reef_core::engine::{budget::Budget, exec::*, llm::LlmExecutor};
    use reef_core::rules::pricing::PriceBook;
    let Some(s) = scripted() else { return };
    let dir = tempfile::tempdir().unwrap();
    let defaults = crate::common::defaults_in(dir.path());
    let cfg = reef_core::config::Config::resolve(None, &|_| None, &defaults).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ports = reef_store::sqlite::SqliteStore::open(&dir.path().join("reef.db")).unwrap().ports();
        let f = reef_core::factory::Factory::new(ports, std::sync::Arc::new(reef_core::SystemClock), std::sync::Arc::new(cfg));
        let prices = PriceBook::from_litellm_yaml(&std::fs::read_to_string(&s.gateway.config).unwrap()).unwrap();
        let budget = Budget { factory: f.clone(), prices: std::sync::Arc::new(prices) };
        let exec = LlmExecutor::new(
            &s.gateway.url,
            Some(reef_core::secret::Secret::new(s.gateway.key.clone())),
            budget,
            256,
            Duration::from_secs(60),
        );
        let (task, _) = f.ports.tasks.create(reef_core::NewTask::titled("Keep a note, fenced"), f.now()).await.unwrap();
        let filter = reef_core::ClaimFilter::default();
        let held = f.ports.tasks.claim("w1", &filter, Duration::from_secs(1), f.now()).await.unwrap().unwrap();
        assert_eq!(held.id, task.id);
        let mut agent = f.config.agents[1].clone();
        agent.model = Some("frozen-script".into());
        agent.tools = vec!["remember".into()];
        let job = Job {
            idempotency_key: Job::idempotency_key_for(&held),
            attempt: held.attempts,
            task: held.clone(),
            agent,
            tier: reef_core::ModelTier::Cheap,
            workdir: dir.path().join("w"),
            memories: vec![],
        };
        let (tx, _rx) = tokio::sync::mpsc::channel(64);
        let run = tokio::spawn({
            let job = job.clone();
            async move { exec.run(&job, tx, tokio_util::sync::CancellationToken::new()).await.map(|s| s.output) }
        });
        // The model answers 6 s late; meanwhile the 1 s lease lapses and another worker claims it.
        let later = f.now() + chrono::Duration::seconds(5);
        let again = f.ports.tasks.claim("w2", &filter, Duration::from_secs(60), later).await.unwrap().unwrap();
        assert_eq!((again.id.as_str(), again.attempts), (task.id.as_str(), held.attempts + 1));
        let r = run.await.unwrap();
        assert!(matches!(r, Err(ExecError::Cancelled)), "the fenced attempt ends without a result: {r:?}");
        let steps = reef_core::engine::agent_loop::trace::steps(&f, &task.id).await.unwrap();
        assert_eq!(steps.len(), 1, "{steps:?}");
        let c = &steps[0].calls[0];
        assert!(!c.ok && c.answer.contains("no longer holds the task"), "{c:?}");
        let audited = f.ports.audit.list(Some(&task.id), 100).await.unwrap().items;
        assert!(
            !audited.iter().any(|a| a.action.starts_with("mcp.remember")),
            "no note was written by the attempt that lost the task: {audited:?}"
        );
    });
}
