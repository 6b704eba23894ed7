//! A contained agent's network through REEF: its LLM calls through the metered endpoint (the real
//! LiteLLM proxy behind it, mocked providers standing in for paid models) on a credential valid
//! for its run only, counted as they happen and stopped at its reservation whatever it reports;
//! anything else through the egress proxy, where only its executor's allow-list leads anywhere.

use crate::common::*;
use crate::engine::pairs;
use crate::gateway::gateway;
use std::time::Duration;

/// Calls `frontier` (LiteLLM's mock: 10 prompt + 20 completion tokens, $0.005 a call) until REEF
/// refuses, reports $0, then tries to run on. Prints what it could see and do.
const SPENDER: &str = r#"
import json, os, sys, time, urllib.request, urllib.error
key = os.environ.get("OPENAI_API_KEY", "")
print("credential-per-run" if key.startswith("reef-run-") else "credential-other", flush=True)
print("gateway-key-visible" if "sk-reef-test-master" in json.dumps(dict(os.environ)) else "gateway-key-absent", flush=True)
print("credential:" + key, flush=True)
def call(url, body, auth=True):
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = "Bearer " + key
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
base = os.environ["REEF_LLM_BASE_URL"]
print("admin-api", call(base + "/key/generate", {}), flush=True)
# The other wires' ways around the meter: a key in the query instead of a header, a server-side
# search, a stored conversation, a model path that climbs out.
hi = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
print("gemini-key-param", call(base + "/v1beta/models/frontier:generateContent?key=" + key, hi, auth=False), flush=True)
print("gemini-search", call(base + "/v1beta/models/frontier:generateContent", dict(hi, tools=[{"googleSearch": {}}])), flush=True)
print("gemini-climb", call(base + "/v1beta/models/..%2Fkey%2Fgenerate:generateContent", hi), flush=True)
print("gemini-traverse", call(base + "/v1beta/models/frontier:x/../../../anthropic/v1/messages%3F:countTokens", hi), flush=True)
print("gemini-config", call(base + "/v1beta/models/frontier:generateContent", dict(hi, config={"maxOutputTokens": 65536})), flush=True)
print("responses-stored", call(os.environ["OPENAI_BASE_URL"] + "/responses", {"model": "frontier", "input": "hi", "previous_response_id": "resp_1"}), flush=True)
for n in range(50):
    s = call(os.environ["OPENAI_BASE_URL"] + "/chat/completions", {"model": "frontier", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]})
    print("call", n, s, flush=True)
    if s == 429:
        time.sleep(1)  # as agent CLIs do: wait for the calls in flight, then try again
        continue
    if s != 200:
        break
print(json.dumps({"cost_usd": 0, "result": "spent nothing, honest"}), flush=True)
time.sleep(120)
"#;

/// Makes three calls ($0.015 by the meter), reports $0 and finishes.
const UNDERREPORTER: &str = r#"
import json, os, urllib.request
key = os.environ["OPENAI_API_KEY"]
for n in range(3):
    req = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/chat/completions", data=json.dumps({"model": "frontier", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}).encode(), headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=30).read()
print(json.dumps({"cost_usd": 0, "result": "three calls, free of charge"}), flush=True)
"#;

/// Asks the egress proxy for three destinations and tries one directly; prints each outcome.
const FETCHER: &str = r#"
import os, socket
proxy = os.environ.get("HTTPS_PROXY", "")
host, port = proxy.rsplit("/", 1)[-1].rsplit(":", 1)
def via_proxy(dest):
    s = socket.create_connection((host, int(port)), 5)
    s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (dest, dest)).encode())
    head = s.recv(4096).decode(errors="replace")
    status = head.split(" ")[1] if " " in head else "?"
    if status == "200":
        s.sendall(b"hello\n")
        return "200:" + s.recv(100).decode().strip()
    return status
print("allowed", via_proxy("127.0.0.1:%s" % os.environ["ALLOWED_PORT"]), flush=True)
print("local-service", via_proxy("127.0.0.1:%s" % os.environ["DENIED_PORT"]), flush=True)
print("unlisted-name", via_proxy("example.com:443"), flush=True)
try:
    socket.create_connection(("127.0.0.1", int(os.environ["ALLOWED_PORT"])), 2)
    print("direct reached", flush=True)
except OSError as e:
    print("direct blocked", flush=True)
"#;

/// A TCP service that answers each line with `echo:` and it.
fn echo_service() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                use std::io::{BufRead, Write};
                let mut r = std::io::BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_ok() {
                    let _ = (&s).write_all(format!("echo:{line}").as_bytes());
                }
            });
        }
    });
    port
}

fn output_lines(e: &Env, task: &str) -> Vec<String> {
    let ev = e.json(&["events", "--subject", task, "--kind", "task.output", "--limit", "1000"]);
    ev["events"].as_array().unwrap().iter().filter_map(|x| x["data"]["line"].as_str().map(String::from)).collect()
}

#[test]
fn a_contained_agents_network_leaves_only_through_the_meter_and_its_allow_list() {
    let e = Env::new();
    let Some(g) = gateway("metered endpoint test") else { return };
    let allowed = echo_service();
    let denied = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let denied_port = denied.local_addr().unwrap().port();
    let py = |name: &str, script: &str, extra: &str| {
        format!("[[executors]]\nname = {name:?}\nkinds = [{name:?}]\ncommand = [\"/usr/bin/python3\", \"-c\", {script:?}]\ntimeout_seconds = 120\n{extra}")
    };
    let mut config = format!(
        "[engine]\nlitellm_config = {:?}\n[[agents]]\nname = \"rex\"\nrole = \"builder\"\ndaily_cap_usd = 40\nmax_concurrent = 3\n",
        g.config.display().to_string()
    );
    // A reservation of $0.01: two calls' worth, the second one's limit lowered to fit.
    config.push_str(&py("spender", SPENDER, "soft_cap_usd = 0.01\n"));
    config.push_str(&py("underreporter", UNDERREPORTER, "soft_cap_usd = 1\n"));
    config.push_str(&py(
        "fetcher",
        FETCHER,
        &format!("pass_env = [\"ALLOWED_PORT\", \"DENIED_PORT\"]\negress = [\"127.0.0.1:{allowed}\"]\n"),
    ));
    e.write_config(&config);
    let spend = e.add_task("Spend", &["--type", "spender", "--agent", "rex"]);
    let under = e.add_task("Under-report", &["--type", "underreporter", "--agent", "rex"]);
    let fetch = e.add_task("Fetch", &["--type", "fetcher", "--agent", "rex"]);
    let (a, d) = (allowed.to_string(), denied_port.to_string());
    let mut env = vec![("REEF_LLM_BASE_URL".to_string(), g.url.clone()), ("REEF_LLM_API_KEY".to_string(), g.key.clone())];
    env.push(("ALLOWED_PORT".into(), a));
    env.push(("DENIED_PORT".into(), d));
    let mut serve = e.serve("both", &pairs(&env));
    let status = |id: &str| e.json(&["task", "show", id])["task"]["status"].as_str().unwrap_or("").to_string();
    let over = |id: &str| matches!(status(id).as_str(), "done" | "failed" | "needs_human" | "cancelled");
    let settled = wait_until(Duration::from_secs(90), || over(&spend) && over(&fetch) && over(&under));
    let socket = std::fs::read_dir(e.dir.path().join("run"))
        .unwrap()
        .flatten()
        .map(|d| d.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("llm-")));
    // The run's credential, dead now that its run is over.
    let lines = output_lines(&e, &spend);
    let credential = lines.iter().find_map(|l| l.strip_prefix("credential:")).unwrap_or("").to_string();
    let after = socket.as_ref().map(|s| {
        let out = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket"])
            .arg(s)
            .args(["-H", &format!("Authorization: Bearer {credential}"), "-H", "Content-Type: application/json"])
            .args(["-d", r#"{"model":"frontier","max_tokens":5,"messages":[]}"#, "http://reef/v1/chat/completions"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    });
    sigterm(&mut serve);
    let log = || {
        let logs = std::fs::read_dir(e.dir.path()).unwrap().flatten().filter(|d| d.file_name().to_string_lossy().starts_with("serve-"));
        logs.map(|d| std::fs::read_to_string(d.path()).unwrap_or_default()).collect::<String>()
    };
    assert!(settled, "every task settled: {:?}\n{}", e.tasks(), log());

    // The spender: a credential of its own, never the gateway's key, no admin API, stopped at its
    // reservation with what the meter counted, not the $0 it reported.
    let log = log();
    assert!(lines.iter().any(|l| l == "credential-per-run"), "{lines:?}\n{}\n{log}", e.ok(&["task", "show", &spend]));
    assert!(lines.iter().any(|l| l == "gateway-key-absent"), "{lines:?}");
    assert!(lines.iter().any(|l| l == "admin-api 404"), "the gateway's admin API is not reachable through the meter: {lines:?}");
    for refused in [
        "gemini-key-param 401",
        "gemini-search 400",
        "gemini-climb 404",
        "gemini-traverse 404",
        "gemini-config 400",
        "responses-stored 400",
    ] {
        assert!(lines.iter().any(|l| l == refused), "{refused}: {lines:?}");
    }
    // The first call fits whole; the second only with its limit lowered (REEF stops the agent as
    // it is charged, so it may not live to print its status: the overshoot below is its trace).
    assert!(lines.iter().any(|l| l == "call 0 200"), "{lines:?}\n{}\n{log}", e.ok(&["task", "show", &spend]));
    let task = e.json(&["task", "show", &spend])["task"].clone();
    assert_eq!(task["status"], "needs_human", "stopped at its reservation, for a person to decide: {task}");
    let error = task["error"].as_str().or(task["result"].as_str()).unwrap_or("").to_string();
    let shown = e.ok(&["task", "show", &spend]);
    assert!(shown.contains("metered by REEF"), "{error} / {shown}");
    let caps = e.json(&["status"])["caps_today"].as_array().unwrap().clone();
    let agent_spent = caps
        .iter()
        .find(|c| c["scope"].as_str().is_some_and(|s| s.starts_with("agent:rex:day")))
        .and_then(|c| c["spent"].as_f64())
        .unwrap_or(0.0)
        / 1e6;
    assert!((agent_spent - 0.025).abs() < 1e-6, "the agent's day holds the metered $0.01 + $0.015, not the $0 both reported: {caps:?}");
    assert_eq!(status(&under), "done");
    let mismatch = e.json(&["events", "--subject", &under, "--kind", "budget.report_mismatch"])["events"].as_array().unwrap().clone();
    assert_eq!(mismatch.len(), 1, "a report far from the meter is raised");
    assert_eq!(mismatch[0]["data"]["metered"], 15000, "{mismatch:?}");
    assert_eq!(
        (mismatch[0]["data"]["sealed"].as_bool(), mismatch[0]["data"]["alert"].as_bool()),
        (Some(true), Some(false)),
        "sealed, the lie changed nothing: logged, not marked as an alert: {mismatch:?}"
    );
    let overshoot = e.json(&["events", "--subject", &spend, "--kind", "budget.overshoot"])["events"].as_array().unwrap().clone();
    assert_eq!(overshoot.len(), 1, "the mock answered 20 tokens to the lowered limit: an overshoot, settled at its real cost");
    let limit = overshoot[0]["data"]["limit_tokens"].as_u64().unwrap();
    assert!(limit < 20 && overshoot[0]["data"]["completion_tokens"] == 20, "the second call's limit was lowered to fit: {overshoot:?}");
    assert_eq!(after.as_deref(), Some("401"), "the credential died with its run (socket {socket:?})");

    // The fetcher: the listed local service answers through the proxy; another local service and
    // an unlisted name are refused (and audited); a direct connection has no route.
    let lines = output_lines(&e, &fetch);
    assert!(lines.iter().any(|l| l == "allowed 200:echo:hello"), "{lines:?}");
    assert!(lines.iter().any(|l| l == "local-service 403"), "{lines:?}");
    assert!(lines.iter().any(|l| l == "unlisted-name 403"), "{lines:?}");
    assert!(lines.iter().any(|l| l == "direct blocked"), "{lines:?}");
    let audit = e.json(&["audit", "--subject", &fetch, "--action", "agent.egress_refused"]);
    let refused = audit["audit"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(refused, 2, "each refusal audited: {audit}");
    drop(denied);
}
