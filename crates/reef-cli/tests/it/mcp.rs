//! REEF's MCP server driven by a client nobody here wrote: the official MCP TypeScript SDK
//! (npm `@modelcontextprotocol/sdk`, installed in tests/mcp by scripts/test.sh), over stdio — as
//! the CLI agent a real `reef serve` starts, and as `reef mcp` with an issued token — and over
//! streamable HTTP on `reef serve`'s address.

use crate::common::*;
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

/// tests/mcp with the SDK installed, or `None` (after saying SKIPPED) where npm could not fetch it.
pub(crate) fn sdk() -> Option<std::path::PathBuf> {
    let dir = root().join("tests/mcp");
    if dir.join("node_modules/@modelcontextprotocol/sdk/package.json").exists() {
        return Some(dir);
    }
    assert!(std::env::var("REEF_REQUIRE_MCP_SDK").is_err(), "REEF_REQUIRE_MCP_SDK is set but {} has no SDK installed", dir.display());
    eprintln!("SKIPPED: the MCP TypeScript SDK is not installed in {} (run: cd tests/mcp && npm install)", dir.display());
    None
}

/// Runs the SDK client with `args`; returns its per-step results.
pub(crate) fn client(e: &Env, sdk: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Vec<Value> {
    let mut c = Command::new("node");
    c.arg(sdk.join("client.mjs")).args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    // `stdio` mode starts `reef mcp` with this environment: the test's store and config.
    c.env("REEF_DATA_DIR", e.dir.path())
        .env("REEF_WORK_DIR", e.work.path())
        .env("REEF_CONFIG", e.dir.path().join("config.toml"))
        .env("HOSTNAME", "testhost");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "client {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("client printed: {}", String::from_utf8_lossy(&out.stdout)));
    v["results"].as_array().cloned().unwrap()
}

/// A factory whose `launch` tasks are run by the SDK agent script (tests/mcp/client.mjs `agent`) and
/// whose `draft` subtasks by `echo`; the agent logs what it saw to the returned file. `extra` is
/// more config (before the executors).
fn agent_factory(sdk: &std::path::Path, extra: &str) -> (Env, std::path::PathBuf) {
    let e = Env::new();
    // The agent runs contained: its log goes to a directory the config makes writable for it,
    // outside REEF's data dir.
    let logs = e.work.path().join("agent-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let out = logs.join("agent.log");
    e.write_config(&format!(
        "[engine]\nlease_seconds = 2\n[memory]\nembedder = \"hashing\"\n{extra}\
         [[executors]]\nname = \"claude\"\nkinds = [\"launch\"]\ncommand = [\"node\", {:?}, \"agent\", {marker:?}]\n\
         pass_env = [\"REEF_TEST_OUT\", \"REEF_TEST_STUBBORN\", \"REEF_TEST_ASK\"]\ntimeout_seconds = 300\nwritable = [{:?}]\n\
         [[executors]]\nname = \"drafter\"\nkinds = [\"draft\"]\ncommand = [\"echo\", \"drafted\"]\n",
        sdk.join("client.mjs").display().to_string(),
        logs.display().to_string(),
        marker = agent_marker(&e)
    ));
    e.with_prices();
    e.set_env("REEF_TEST_OUT", out.to_str().unwrap());
    (e, out)
}

/// A word on this factory's agent command line, to find its processes from outside (inside its
/// sandbox the agent's own pid is not the host's).
fn agent_marker(e: &Env) -> String {
    format!("reef-agent-{}", e.dir.path().file_name().unwrap().to_string_lossy())
}

fn refused(r: &Value, code: &str) {
    assert_eq!(r["ok"], false, "expected a refusal, got {r}");
    assert_eq!(r["value"]["code"], code, "{r}");
}

fn tool_names(r: &Value) -> Vec<String> {
    r["value"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect()
}

fn task_json(e: &Env, id: &str) -> Value {
    e.json(&["task", "show", id])["task"].clone()
}

fn add(e: &Env, args: &[&str]) -> String {
    e.add_task(args[0], &args[1..])
}

#[test]
fn an_agent_reef_starts_splits_its_task_asks_for_approval_over_stdio_and_resumes_with_the_answer() {
    let Some(sdk) = sdk() else { return };
    let (e, out) = agent_factory(&sdk, "");
    e.ok(&["memory", "remember", "Invoicely customers answer short, friendly launch emails with one link", "--product", "invoicely"]);
    let id = add(&e, &["Launch Invoicely", "--type", "launch", "--agent", "kev", "--product", "invoicely", "--budget", "2"]);
    let mut serve = e.serve("both", &[]);

    assert!(wait_until(Duration::from_secs(60), || task_json(&e, &id)["status"] == "awaiting_approval"), "{:?}", e.tasks());
    let log: Vec<Value> = std::fs::read_to_string(&out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let tools: Vec<&str> = log[0]["tools"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    for t in [
        "create_task",
        "task_status",
        "add_comment",
        "search_memory",
        "remember",
        "graph_neighbors",
        "request_approval",
        "ask_operator",
        "report_progress",
    ] {
        assert!(tools.contains(&t), "{t} missing from {tools:?}");
    }
    assert!(!tools.contains(&"decide_approval"), "an agent's token never lists the operator's tools: {tools:?}");
    assert_eq!(log[0]["status"], "running", "the agent sees its own task, running");
    let asked = &log[1];
    assert!(asked["hits"][0].as_str().unwrap().contains("short, friendly"), "search_memory found the seeded memory: {asked}");

    // The subtask: the parent's product, a budget out of the parent's, run by its own agent.
    let sub_id = asked["sub"]["task_id"].as_str().unwrap();
    let sub = task_json(&e, sub_id);
    assert_eq!(sub["parent_id"], id.as_str());
    assert_eq!(sub["product"], "invoicely", "a subtask inherits its parent's product");
    assert_eq!(sub["budget_usd"], 250_000, "$0.25 in micro-dollars: {sub}");
    assert!(wait_until(Duration::from_secs(30), || task_json(&e, sub_id)["status"] == "done"), "{:?}", task_json(&e, sub_id));

    // The approval is in the store, asked in-task, and the task released its lease.
    let approvals = e.json(&["approvals"])["approvals"].as_array().cloned().unwrap();
    assert_eq!(approvals.len(), 1, "{approvals:?}");
    let a = &approvals[0];
    assert_eq!(
        (a["status"].as_str(), a["action_class"].as_str(), a["in_task"].as_bool()),
        (Some("pending"), Some("customer_message"), Some(true))
    );
    assert_eq!(a["requested_by"], "agent:kev");
    assert_eq!(asked["ticket"]["ticket"], a["_id"], "the ticket the agent got is the request");
    assert!(task_json(&e, &id)["lease"].is_null(), "parked without a lease");
    let leftover: Vec<_> = std::fs::read_dir(e.dir.path().join("mcp")).map(|d| d.flatten().map(|f| f.path()).collect()).unwrap_or_default();
    assert!(leftover.is_empty(), "the attempt's MCP config (with its token) is removed: {leftover:?}");

    // Every call is in the audit log, attributed to the agent on its task.
    let audit = e.json(&["audit", "--subject", &id, "--action", "mcp.", "--limit", "100"])["audit"].as_array().cloned().unwrap();
    let actions: Vec<&str> = audit.iter().map(|x| x["action"].as_str().unwrap()).collect();
    for t in ["mcp.task_status", "mcp.create_task", "mcp.search_memory", "mcp.report_progress", "mcp.request_approval"] {
        assert!(actions.contains(&t), "{t} not audited: {actions:?}");
    }
    assert!(audit.iter().all(|x| x["actor"] == "agent:kev"), "{audit:?}");

    // The operator approves; the task runs again and its agent reads the decision.
    e.ok(&["approve", a["_id"].as_str().unwrap(), "--reason", "go ahead"]);
    assert!(wait_until(Duration::from_secs(60), || task_json(&e, &id)["status"] == "done"), "{:?}", task_json(&e, &id));
    let t = task_json(&e, &id);
    assert_eq!(t["result"], "sent the launch email after approval");
    let log = std::fs::read_to_string(&out).unwrap();
    let resumed: Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert!(resumed["comments"][0].as_str().unwrap().contains("customer_message approved by operator:tester"), "{resumed}");
    sigterm(&mut serve);
}

#[test]
fn an_agent_that_keeps_working_after_asking_is_stopped_after_the_grace_and_its_task_parked() {
    let Some(sdk) = sdk() else { return };
    let (e, out) = agent_factory(&sdk, "[mcp]\npark_grace_secs = 1\n");
    e.set_env("REEF_TEST_STUBBORN", "1");
    let id = add(&e, &["Launch Invoicely", "--type", "launch", "--agent", "kev", "--product", "invoicely"]);
    let mut serve = e.serve("both", &[]);
    assert!(wait_until(Duration::from_secs(60), || task_json(&e, &id)["status"] == "awaiting_approval"), "{:?}", e.tasks());
    let log = std::fs::read_to_string(&out).unwrap();
    assert!(log.lines().any(|l| l.contains("\"asked\"")), "{log}");
    assert!(
        wait_until(Duration::from_secs(10), || crate::engine::pids_with(&agent_marker(&e)).is_empty()),
        "the agent that would not stop was stopped: {:?} still run",
        crate::engine::pids_with(&agent_marker(&e))
    );
    assert!(task_json(&e, &id)["lease"].is_null());
    assert_eq!(e.json(&["approvals"])["approvals"][0]["status"], "pending");
    sigterm(&mut serve);
}

#[test]
fn reef_killed_after_the_agent_asked_resumes_once_with_the_decision_and_does_the_work_once() {
    let Some(sdk) = sdk() else { return };
    let (e, out) = agent_factory(&sdk, "");
    let id = add(&e, &["Launch Invoicely", "--type", "launch", "--agent", "kev", "--product", "invoicely"]);
    // The agent asks, then keeps going (within the grace) when REEF is killed.
    let mut serve = e.serve("both", &[("REEF_TEST_STUBBORN", "1")]);
    assert!(wait_until(Duration::from_secs(60), || std::fs::read_to_string(&out).is_ok_and(|l| l.contains("\"asked\""))));
    sigkill(&mut serve);
    assert_eq!(task_json(&e, &id)["status"], "running", "killed before the attempt ended");
    // Decided while no REEF holds the task: the decision waits in the thread.
    let a = e.json(&["approvals"])["approvals"][0]["_id"].as_str().unwrap().to_string();
    e.ok(&["approve", &a, "--reason", "go"]);
    let mut serve = e.serve("both", &[]);
    assert!(wait_until(Duration::from_secs(60), || task_json(&e, &id)["status"] == "done"), "{:?}", task_json(&e, &id));
    sigterm(&mut serve);
    let starts = std::fs::read_to_string(&out).unwrap().lines().filter(|l| l.contains("\"start\"")).count();
    assert_eq!(starts, 2, "asked once, then ran once more with the decision (the first attempt's wait is not applied to the second)");
    assert_eq!(task_json(&e, &id)["result"], "sent the launch email after approval");
    let subs = e.tasks().into_iter().filter(|t| t["parent_id"] == id.as_str()).count();
    assert_eq!(subs, 1, "the subtask was made once");
}

#[test]
fn an_answer_given_while_the_agent_is_still_finishing_sends_the_task_straight_back() {
    let Some(sdk) = sdk() else { return };
    let (e, out) = agent_factory(&sdk, "");
    e.set_env("REEF_TEST_ASK", "10");
    let id = add(&e, &["Launch Invoicely", "--type", "launch", "--agent", "kev"]);
    let mut serve = e.serve("both", &[]);
    assert!(wait_until(Duration::from_secs(60), || std::fs::read_to_string(&out).is_ok_and(|l| l.contains("\"asked\""))));
    assert_eq!(task_json(&e, &id)["status"], "running", "the agent is still wrapping up");
    e.ok(&["answer", &id, "Thursday"]);
    assert!(wait_until(Duration::from_secs(60), || task_json(&e, &id)["status"] == "done"), "{:?}", task_json(&e, &id));
    sigterm(&mut serve);
    assert_eq!(task_json(&e, &id)["result"], "went with the operator's answer: Thursday");
    let starts = std::fs::read_to_string(&out).unwrap().lines().filter(|l| l.contains("\"start\"")).count();
    assert_eq!(starts, 2, "asked once, resumed once with the answer");
}

#[test]
fn over_http_and_stdio_calls_are_scoped_to_their_task_budgeted_policed_and_audited() {
    let Some(sdk) = sdk() else { return };
    let e = Env::new();
    let port = free_port();
    let op_token = "openclaw-0123456789abcdef0123456789";
    e.write_config(&format!(
        "[engine]\nlease_seconds = 2\n[serve]\nlisten = \"127.0.0.1:{port}\"\n[memory]\nembedder = \"hashing\"\n[mcp]\noperators = [\"openclaw\"]\nmax_subtasks = 3\n"
    ));
    e.with_prices();
    e.set_env("REEF_MCP_OPERATOR_OPENCLAW", op_token);
    e.ok(&["memory", "remember", "The pricing page converts best with three tiers", "--product", "quickform"]);
    e.ok(&["memory", "remember", "Invoicely's unreleased pricing page tiers: confidential", "--product", "invoicely"]);
    let a = add(&e, &["Ship the pricing page", "--agent", "kev", "--product", "quickform", "--budget", "1"]);
    let b = add(&e, &["Someone else's task", "--agent", "rex", "--product", "invoicely"]);
    let deploy = add(&e, &["Deploy QuickForm", "--agent", "rex", "--product", "quickform", "--action-class", "production_deploy"]);
    let token_a = e.ok(&["mcp", "token", &a]).trim().to_string();
    let token_deploy = e.ok(&["mcp", "token", &deploy]).trim().to_string();
    assert!(token_a.starts_with("reef_mcp_"));
    // Only the HTTP endpoint: no worker runs (or fails) these tasks under the test.
    let mut serve = e.serve("dispatcher", &[]);
    let url = format!("http://127.0.0.1:{port}/mcp");
    assert!(wait_until(Duration::from_secs(20), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()));

    let steps = json!([
        {"list_tools": true},
        {"tool": "create_task", "args": {"title": "Write the tier copy", "budget_usd": 0.4}},
        {"tool": "create_task", "args": {"title": "Write the tier copy", "budget_usd": 0.4}},
        {"tool": "create_task", "args": {"title": "Buy ads", "budget_usd": 5}},
        {"tool": "create_task", "args": {"title": "Other product", "product": "invoicely"}},
        {"tool": "task_status", "args": {"task_id": b}},
        {"tool": "add_comment", "args": {"task_id": b, "body": "psst"}},
        {"tool": "search_memory", "args": {"query": "pricing page tiers"}},
        {"tool": "request_approval", "args": {"action_class": "legal", "summary": "Sign the reseller contract"}},
        {"tool": "create_task", "args": {"title": "x", "budget": 1}},
        {"tool": "add_comment", "args": {"body": "a\u{0}b"}},
        {"tool": "decide_approval", "args": {"approval_id": "x", "decision": "approve"}},
        {"tool": "request_approval", "args": {"action_class": "public_post", "summary": "Post the launch on X"}},
        {"read": "reef://task"},
        {"read": "reef://caps"},
        {"tool": "search_memory", "args": {"query": "pricing page tiers", "product": "invoicely"}},
        {"tool": "search_memory", "args": {"query": "Invoicely unreleased pricing page tiers confidential", "k": 20}},
        {"tool": "create_task", "args": {"title": "Wait for my parent", "budget_usd": 0.1, "depends_on": [a]}},
        {"tool": "wait_for_subtasks", "args": {}},
        {"tool": "create_task", "args": {"title": "Half of what is left"}},
    ]);
    let r = client(&e, &sdk, &["http", &url, &token_a, &steps.to_string()], &[]);
    let tools = tool_names(&r[0]);
    assert!(tools.contains(&"request_approval".to_string()) && !tools.contains(&"decide_approval".to_string()), "{tools:?}");
    assert_eq!(r[1]["ok"], true, "{}", r[1]);
    let sub = r[1]["value"]["task_id"].as_str().unwrap().to_string();
    assert_eq!((r[1]["value"]["product"].as_str(), r[1]["value"]["parent_id"].as_str()), (Some("quickform"), Some(a.as_str())));
    assert_eq!(
        (r[2]["value"]["task_id"].as_str(), r[2]["value"]["created"].as_bool()),
        (Some(sub.as_str()), Some(false)),
        "asked twice, made once"
    );
    refused(&r[3], "over_budget");
    assert!(r[3]["value"]["message"].as_str().unwrap().contains("$0.60 of $1.00"), "names what is left: {}", r[3]);
    refused(&r[4], "policy");
    refused(&r[5], "out_of_scope");
    refused(&r[6], "out_of_scope");
    assert!(r[7]["value"]["hits"][0]["content"].as_str().unwrap().contains("three tiers"), "{}", r[7]);
    refused(&r[8], "policy");
    refused(&r[9], "invalid");
    assert!(r[9]["value"]["message"].as_str().unwrap().contains("unknown field `budget`"), "{}", r[9]);
    refused(&r[10], "invalid");
    refused(&r[11], "out_of_scope");
    assert_eq!(r[12]["ok"], true, "{}", r[12]);
    let ticket = r[12]["value"]["ticket"].as_str().unwrap().to_string();
    assert_eq!(r[13]["value"]["id"], a.as_str());
    assert_eq!(r[13]["value"]["budget"]["left_usd"], 0.6, "{}", r[13]);
    assert!(r[14]["value"]["caps_today"].as_array().unwrap().iter().any(|c| c["scope"].as_str().unwrap().starts_with("global:day:")));
    // Memory is scoped to the task's product: another product's is refused, and not found either.
    refused(&r[15], "out_of_scope");
    let hits = r[16]["value"]["hits"].as_array().unwrap();
    assert!(!hits.is_empty() && hits.iter().all(|h| h["product"] == "quickform"), "{}", r[16]);
    // A subtask may not wait for the task that waits for it (they would wait for ever).
    refused(&r[17], "invalid");
    assert!(r[17]["value"]["message"].as_str().unwrap().contains("wait for each other"), "{}", r[17]);
    // Waiting needs a running task (no worker holds this one): refused, nothing parked.
    assert_eq!(r[18]["ok"], false, "{}", r[18]);
    // A subtask without a budget named gets half of what is left ($0.60 after the $0.40 one), so
    // the parent keeps room for its own steps: an agent cannot hand its whole budget away by
    // leaving the budget out.
    assert_eq!(r[19]["ok"], true, "{}", r[19]);
    assert_eq!(r[19]["value"]["budget_usd"], 0.3, "{}", r[19]);

    // In the store: no worker held the task, so it waits at once, and B was never touched.
    assert_eq!(task_json(&e, &a)["status"], "awaiting_approval");
    let ap = e.json(&["approvals"])["approvals"].as_array().cloned().unwrap();
    assert!(ap.iter().any(|x| x["_id"] == ticket.as_str() && x["action_class"] == "public_post" && x["task_id"] == a.as_str()), "{ap:?}");
    assert!(task_json(&e, &b)["comments"].as_array().is_none_or(|c| c.is_empty()), "nothing written to another task");
    let refusals = e.json(&["audit", "--subject", &a, "--action", "mcp.", "--limit", "100"])["audit"].as_array().cloned().unwrap();
    let refused_actions: Vec<&str> =
        refusals.iter().filter(|x| x["action"].as_str().unwrap().ends_with(".refused")).map(|x| x["action"].as_str().unwrap()).collect();
    for t in ["mcp.create_task.refused", "mcp.task_status.refused", "mcp.add_comment.refused", "mcp.request_approval.refused"] {
        assert!(refused_actions.contains(&t), "{t} not audited: {refused_actions:?}");
    }
    let over = refusals.iter().find(|x| x["action"] == "mcp.create_task.refused" && x["new"]["code"] == "over_budget").unwrap();
    assert!(over["reason"].as_str().unwrap().contains("budget"), "{over}");
    let events = e.json(&["events", "--kind", "mcp.refused", "--subject", &a, "--limit", "50"])["events"].as_array().cloned().unwrap();
    assert!(events.iter().any(|x| x["data"]["code"] == "over_budget"), "{events:?}");

    // A subtask of a gated task may not be less guarded than it; a fourth subtask is one too many.
    let r = client(
        &e,
        &sdk,
        &[
            "http",
            &url,
            &token_deploy,
            &json!([
                {"tool": "create_task", "args": {"title": "Just build it", "action_class": "build"}},
                {"tool": "create_task", "args": {"title": "Deploy step 1", "budget_usd": 0.01}},
                {"tool": "create_task", "args": {"title": "Deploy step 2", "budget_usd": 0.01}},
                {"tool": "create_task", "args": {"title": "Deploy step 3", "budget_usd": 0.01}},
                {"tool": "create_task", "args": {"title": "Deploy step 4", "budget_usd": 0.01}},
            ])
            .to_string(),
        ],
        &[],
    );
    refused(&r[0], "policy");
    assert!(r[0]["value"]["message"].as_str().unwrap().contains("less guarded"), "{}", r[0]);
    assert_eq!(r[1]["value"]["action_class"], "production_deploy", "a subtask inherits its parent's approval policy: {}", r[1]);
    assert_eq!((r[2]["ok"].as_bool(), r[3]["ok"].as_bool()), (Some(true), Some(true)));
    refused(&r[4], "policy");

    // A task with no product sees what belongs to no product, in memory and in the graph.
    e.ok(&["memory", "remember", "Factory-wide: invoices go out on the first of the month"]);
    let lone = add(&e, &["Tidy the factory's notes", "--agent", "rex"]);
    let token_lone = e.ok(&["mcp", "token", &lone]).trim().to_string();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let ports = reef_store::sqlite::SqliteStore::open(&e.dir.path().join("reef.db")).unwrap().ports();
        let ent = |id: &str, kind: &str, product: Option<&str>| reef_core::Entity {
            id: id.into(),
            kind: kind.into(),
            name: id.into(),
            properties: json!({"product": product}),
        };
        for (id, kind, product) in [
            ("agent:rex", "agent", None),
            ("task:q1", "task", Some("quickform")),
            ("task:i1", "task", Some("invoicely")),
            ("product:invoicely", "product", None),
            ("repo:invoicely-private", "repository", None),
        ] {
            ports.graph.upsert_entity(ent(id, kind, product)).await.unwrap();
        }
        for (from, to) in
            [("agent:rex", "task:q1"), ("agent:rex", "task:i1"), ("task:i1", "product:invoicely"), ("task:i1", "repo:invoicely-private")]
        {
            let rel =
                reef_core::Relationship { from: from.into(), to: to.into(), kind: "x".into(), weight: 1.0, created_at: Default::default() };
            ports.graph.relate(rel).await.unwrap();
        }
    });
    let graph_steps = json!([
        {"tool": "graph_neighbors", "args": {"entity": "agent:rex", "depth": 2}},
        {"tool": "graph_neighbors", "args": {"entity": "product:invoicely"}},
        {"tool": "search_memory", "args": {"query": "invoices pricing tiers", "k": 10}},
        {"tool": "search_memory", "args": {"query": "pricing", "product": "quickform"}},
    ]);
    let r = client(&e, &sdk, &["http", &url, &token_a, &graph_steps.to_string()], &[]);
    let seen: Vec<&str> = r[0]["value"]["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert!(
        seen.contains(&"task:q1") && !seen.iter().any(|n| n.contains("invoicely") || n.ends_with(":i1")),
        "quickform's task sees none of invoicely's graph: {seen:?}"
    );
    refused(&r[1], "out_of_scope");
    let r = client(&e, &sdk, &["http", &url, &token_lone, &graph_steps.to_string()], &[]);
    let seen: Vec<&str> = r[0]["value"]["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(seen, ["agent:rex"], "a task with no product sees no product's work: {}", r[0]);
    let hits = r[2]["value"]["hits"].as_array().unwrap();
    assert!(!hits.is_empty() && hits.iter().all(|h| h["product"].is_null()), "only the memories of no product: {}", r[2]);
    refused(&r[3], "out_of_scope");

    // No token, or a made-up one: 401 before the protocol.
    let r = client(&e, &sdk, &["http", &url, "", &json!([{"list_tools": true}]).to_string()], &[]);
    assert!(r[0]["connect_error"].as_str().unwrap().contains("401") || r[0]["status"] == 401, "{:?}", r[0]);
    let r = client(&e, &sdk, &["http", &url, "reef_mcp_0000", &json!([{"list_tools": true}]).to_string()], &[]);
    assert!(r[0]["connect_error"].is_string(), "{:?}", r[0]);

    // stdio, `reef mcp` with the same token: the same rules.
    let reef = env!("CARGO_BIN_EXE_reef");
    let steps = json!([{"list_tools": true}, {"tool": "task_status", "args": {"task_id": sub}}, {"tool": "task_status", "args": {"task_id": b}}, {"tool": "add_comment", "args": {"task_id": sub, "body": "Use the three-tier layout."}}]);
    let r = client(&e, &sdk, &["stdio", reef, &steps.to_string()], &[("REEF_MCP_TOKEN", &token_a)]);
    assert!(tool_names(&r[0]).contains(&"create_task".to_string()));
    assert_eq!(r[1]["value"]["id"], sub.as_str(), "a task token reads the subtasks below it: {}", r[1]);
    refused(&r[2], "out_of_scope");
    assert_eq!(r[3]["ok"], true, "{}", r[3]);
    assert_eq!(task_json(&e, &sub)["comments"][0]["author"], "agent:kev");

    // OpenClaw, with its own operator token: sees the inbox, decides, and the task moves on.
    let steps = json!([
        {"list_tools": true},
        {"tool": "list_approvals"},
        {"tool": "decide_approval", "args": {"approval_id": ticket, "decision": "reject"}},
        {"tool": "decide_approval", "args": {"approval_id": ticket, "decision": "reject", "reason": "Not before the pricing page ships"}},
        {"tool": "request_approval", "args": {"action_class": "x", "summary": "y"}},
    ]);
    let r = client(&e, &sdk, &["http", &url, op_token, &steps.to_string()], &[]);
    let tools = tool_names(&r[0]);
    assert!(tools.contains(&"decide_approval".to_string()) && !tools.contains(&"ask_operator".to_string()), "{tools:?}");
    assert!(r[1]["value"]["approvals"].as_array().unwrap().iter().any(|x| x["id"] == ticket.as_str()));
    refused(&r[2], "invalid");
    assert_eq!(r[3]["value"]["status"], "rejected", "{}", r[3]);
    refused(&r[4], "out_of_scope");
    // An in-task request: rejected means "not that", and the agent gets its task back with the reason.
    let t = task_json(&e, &a);
    assert_eq!(t["status"], "pending", "{t}");
    assert!(t["comments"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["body"].as_str().unwrap().contains("public_post rejected by operator:openclaw (mcp): Not before")));
    let decided = e.json(&["audit", "--subject", &ticket, "--limit", "10"])["audit"].as_array().cloned().unwrap();
    assert!(decided.iter().any(|x| x["action"] == "approval.decide" && x["actor"] == "operator:openclaw (mcp)"), "{decided:?}");
    sigterm(&mut serve);
}

#[test]
fn a_question_to_the_operator_parks_the_task_until_reef_answer() {
    let Some(sdk) = sdk() else { return };
    let e = Env::new();
    e.write_config("[memory]\nembedder = \"hashing\"\n");
    let id = add(&e, &["Pick a launch date", "--agent", "kev", "--backlog"]);
    let token = e.ok(&["mcp", "token", &id]).trim().to_string();
    let reef = env!("CARGO_BIN_EXE_reef");
    let steps = json!([{"tool": "ask_operator", "args": {"question": "Launch on Monday or Thursday?"}}, {"tool": "report_progress", "args": {"message": "waiting", "percent": 101}}]);
    let r = client(&e, &sdk, &["stdio", reef, &steps.to_string()], &[("REEF_MCP_TOKEN", &token)]);
    assert_eq!(r[0]["value"]["status"], "needs_human", "{}", r[0]);
    refused(&r[1], "invalid");
    let t = task_json(&e, &id);
    assert_eq!(t["status"], "needs_human");
    assert_eq!(t["comments"][0]["body"], "[question] Launch on Monday or Thursday?");
    let ev = e.json(&["events", "--kind", "task.question", "--limit", "5"])["events"].as_array().cloned().unwrap();
    assert_eq!(ev[0]["data"]["alert"], true, "a question raises an alert (notification, webhooks): {ev:?}");
    e.ok(&["answer", &id, "Thursday"]);
    let t = task_json(&e, &id);
    assert_eq!(t["status"], "pending");
    assert_eq!(t["comments"][1]["body"], "[answer] Thursday");
    // The desktop app's binary serves the same tools (`reef-app mcp`): the in-app engine's agents use it.
    let app = std::path::Path::new(reef).with_file_name("reef-app");
    if app.exists() {
        let task = add(&e, &["Ask through the app", "--agent", "kev", "--backlog"]);
        let token = e.ok(&["mcp", "token", &task]).trim().to_string();
        let steps = json!([{"list_tools": true}, {"tool": "task_status"}]);
        let r = client(&e, &sdk, &["stdio", app.to_str().unwrap(), &steps.to_string()], &[("REEF_MCP_TOKEN", &token)]);
        assert!(tool_names(&r[0]).contains(&"request_approval".to_string()), "{:?}", r[0]);
        assert_eq!(r[1]["value"]["id"], task.as_str(), "{}", r[1]);
    } else {
        assert!(std::env::var("REEF_REQUIRE_APP_BIN").is_err(), "REEF_REQUIRE_APP_BIN is set but {} was not built", app.display());
        eprintln!("SKIPPED (part): reef-app mcp — {} is not built (cargo build -p reef-app)", app.display());
    }
    // `reef mcp` refuses to start without a valid token.
    let out = e.cmd().args(["mcp"]).env("REEF_MCP_TOKEN", "reef_mcp_forged").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown or revoked token"), "{}", String::from_utf8_lossy(&out.stderr));
}
