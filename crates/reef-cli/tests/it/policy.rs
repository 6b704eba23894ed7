//! The approval policy fails closed, on every path that creates work: the CLI, an operator's MCP
//! client (the official MCP SDK over HTTP, as OpenClaw reaches REEF), a schedule, and an agent in
//! REEF's own loop (through the real LiteLLM proxy in front of the scripted provider that stands in
//! for a paid model). Work of a class nobody listed waits for approval; work whose executor
//! deploys waits as a deploy whatever class it names or leaves out; nothing of it runs until a
//! person approves; and lowering a guarded gate needs a confirmation and is audited. (The window's
//! path is in the e2e suite: its task form calls the same `Factory::create_task`.)

use crate::agent_loop::{agent, scripted, status};
use crate::common::*;
use crate::engine::pairs;
use crate::mcp::{client, sdk};
use serde_json::json;
use std::time::Duration;

#[test]
fn unlisted_classes_and_deploying_executors_wait_for_approval_on_every_path_that_creates_work() {
    let Some(s) = scripted() else { return };
    let Some(sdk) = sdk() else { return };
    let e = Env::new();
    let port = free_port();
    let effects = e.fx().join("effects.log");
    let op_token = "openclaw-policy-0123456789abcdef0123";
    let mut config = format!(
        "[engine]\nlease_seconds = 2\nlitellm_config = {:?}\n[serve]\nlisten = \"127.0.0.1:{port}\"\n[mcp]\noperators = [\"openclaw\"]\n\
         [[executors]]\nname = \"deployer\"\nkinds = [\"deploy\"]\ncommand = [\"sh\", \"-c\", \"echo $REEF_IDEMPOTENCY_KEY >> {}; echo deployed\"]\n{}\
         [[schedules]]\nname = \"nightly-deploy\"\ncron = \"0 3 * * *\"\ntitle = \"Nightly deploy (schedule)\"\ntype = \"deploy\"\nagent = \"rex\"\n\
         [[schedules]]\nname = \"invented\"\ncron = \"0 4 * * *\"\ntitle = \"Invented class (schedule)\"\naction_class = \"schedule_made_this_up\"\nagent = \"rex\"\n",
        s.gateway.config.display().to_string(),
        effects.display(),
        e.fx_writable()
    );
    config.push_str(&agent("sneak", "sneak-script", &["create_task"]));
    config.push_str("[[agents]]\nname = \"rex\"\nrole = \"builder\"\ndaily_cap_usd = 5\n");
    e.write_config(&config);
    e.with_prices();
    e.set_env("REEF_MCP_OPERATOR_OPENCLAW", op_token);

    // The CLI: no class on a deploy; an invented class; a deploy dressed as research.
    e.add_task("Deploy quietly (cli)", &["--type", "deploy", "--agent", "rex"]);
    e.add_task("Invented class (cli)", &["--agent", "rex", "--action-class", "cli_made_this_up"]);
    e.add_task("Deploy dressed as research (cli)", &["--type", "deploy", "--agent", "rex", "--action-class", "research"]);
    // A schedule run now, as its cron slot would.
    e.ok(&["schedule", "run", "nightly-deploy"]);
    e.ok(&["schedule", "run", "invented"]);
    // An agent in REEF's own loop hands the same work off as subtasks (the script is below).
    let sneak = e.add_task("Hand off the release", &["--agent", "sneak"]);

    let mut serve = e.serve("both", &pairs(&s.env()));
    assert!(wait_until(Duration::from_secs(20), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()));
    // An operator's MCP client (OpenClaw's token) creates work too.
    let steps = json!([
        {"tool": "create_task", "args": {"title": "Deploy quietly (mcp)", "kind": "deploy", "assigned_to": "rex"}},
        {"tool": "create_task", "args": {"title": "Invented class (mcp)", "action_class": "mcp_made_this_up", "assigned_to": "rex"}},
    ]);
    let r = client(&e, &sdk, &["http", &format!("http://127.0.0.1:{port}/mcp"), op_token, &steps.to_string()], &[]);
    assert!(r.iter().all(|x| x["ok"] == true), "{r:?}");

    let gated = |t: &serde_json::Value| t["title"].as_str().is_some_and(|x| x.contains(" ("));
    let settled = wait_until(Duration::from_secs(90), || {
        let tasks = e.tasks();
        status(&e, &sneak) == "done"
            && tasks.iter().filter(|t| gated(t)).count() == 10
            && tasks.iter().filter(|t| gated(t)).all(|t| t["status"] == "awaiting_approval")
    });
    let tasks = e.tasks();
    let summary: Vec<_> = tasks.iter().map(|t| (t["title"].clone(), t["status"].clone())).collect();
    assert!(settled, "every piece of gated work waits for approval, on every path: {summary:?}");
    assert!(!effects.exists(), "nothing deployed before a person approved: {:?}", std::fs::read_to_string(&effects));
    let ran = e.json(&["events", "--kind", "schedule."])["events"].as_array().cloned().unwrap();
    assert_eq!(ran.iter().filter(|x| x["type"] == "schedule.ran").count(), 2, "each schedule ran once, when asked: {ran:?}");
    assert!(ran.iter().all(|x| x["type"] == "schedule.ran"), "and no slot came due meanwhile: {ran:?}");

    // Each waits under the class that governs it: the executor's where it deploys.
    let approvals = e.json(&["approvals"])["approvals"].as_array().cloned().unwrap();
    let class_of = |title: &str| {
        let id = tasks.iter().find(|t| t["title"] == title).unwrap_or_else(|| panic!("no task {title:?}: {summary:?}"))["_id"].clone();
        approvals.iter().find(|a| a["task_id"] == id).unwrap_or_else(|| panic!("no approval for {title:?}"))["action_class"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for path in ["cli", "mcp", "agent"] {
        assert_eq!(class_of(&format!("Deploy quietly ({path})")), "production_deploy", "{path}");
        assert_eq!(class_of(&format!("Invented class ({path})")), format!("{path}_made_this_up"), "{path}");
    }
    assert_eq!(class_of("Deploy dressed as research (cli)"), "production_deploy");
    assert_eq!(class_of("Deploy dressed as research (agent)"), "production_deploy");
    assert_eq!(class_of("Nightly deploy (schedule)"), "production_deploy");
    assert_eq!(class_of("Invented class (schedule)"), "schedule_made_this_up");

    // Approved, the deploy runs once.
    let quiet = tasks.iter().find(|t| t["title"] == "Deploy quietly (cli)").unwrap()["_id"].as_str().unwrap().to_string();
    let ticket = approvals.iter().find(|a| a["task_id"] == quiet.as_str()).unwrap()["_id"].as_str().unwrap().to_string();
    e.ok(&["approve", &ticket]);
    assert!(wait_until(Duration::from_secs(30), || status(&e, &quiet) == "done"), "{:?}", e.json(&["task", "show", &quiet]));
    sigterm(&mut serve);
    let ran = std::fs::read_to_string(&effects).unwrap();
    assert_eq!(ran.lines().collect::<Vec<_>>(), vec![format!("reef-task-{quiet}")], "only the approved deploy ran, once");
    assert_eq!(e.count("awaiting_approval"), 9, "the rest still wait");
}

#[test]
fn lowering_a_guarded_gate_needs_a_confirmation_and_is_audited() {
    let e = Env::new();
    let said = e.fails(&["policy", "set", "production_deploy", "auto"]);
    assert!(said.contains("needs confirmation") && said.contains("production_deploy is approve_before"), "{said}");
    let said = e.fails(&["policy", "set", "legal", "remove"]);
    assert!(said.contains("legal is never_auto") && said.contains("waits for approval"), "{said}");
    let gates = e.json(&["policy", "show"]);
    assert_eq!((gates["production_deploy"].as_str(), gates["legal"].as_str()), (Some("approve_before"), Some("never_auto")), "unchanged");
    // Raising a gate, or adding one, asks nothing.
    e.ok(&["policy", "set", "research", "approve_before"]);
    e.ok(&["policy", "set", "newsletter", "never_auto"]);
    // Confirmed, the change is made and the audit log says it was a lowering the operator confirmed.
    e.ok(&["policy", "set", "production_deploy", "notify_after", "--yes"]);
    let gates = e.json(&["policy", "show"]);
    assert_eq!(gates["production_deploy"], "notify_after");
    let audit = e.json(&["audit", "--action", "policy.set"]);
    let rows = audit["audit"].as_array().cloned().unwrap();
    let lowered = rows.iter().find(|r| r["subject"] == "production_deploy").unwrap_or_else(|| panic!("{audit}"));
    assert_eq!((lowered["old"].as_str(), lowered["new"].as_str()), (Some("approve_before"), Some("notify_after")), "{lowered}");
    assert!(lowered["reason"].as_str().unwrap_or_default().contains("confirmed"), "{lowered}");
    let raised = rows.iter().find(|r| r["subject"] == "research").unwrap_or_else(|| panic!("{audit}"));
    assert!(raised["reason"].is_null(), "{raised}");
}
