//! The token limit REEF sends is one a real OpenAI-compatible server honours: llama-cpp-python's
//! server running SmolLM2-135M-Instruct (a real local model from PyPI, on the CPU) behind the real
//! LiteLLM proxy as the `local` tier. That server ignores `max_completion_tokens` (the control
//! below shows it), so REEF's own calls and the calls of contained agents must reach it as
//! `max_tokens` — the meter rewrites an agent's request that way — and usage is checked against
//! the limit.

use crate::common::*;
use crate::engine::pairs;
use crate::gateway::{gateway_with, Gateway};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The local model server and a LiteLLM proxy in front of it (its `local` route), started once
/// for this file's tests; `None` (after saying why) when `bash scripts/test.sh` has not installed
/// the server. The server uses llama-cpp-python's `chatml-function-calling` format (SmolLM2's own
/// chat template is ChatML), which gives it OpenAI tool calls and named tool choices.
struct Local {
    gateway: Gateway,
    config: PathBuf,
}

/// The server runs one generation at a time: this file's tests take turns on it, so neither's
/// timing depends on the other's.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn local(test: &str) -> Option<&'static Local> {
    static L: OnceLock<Option<Local>> = OnceLock::new();
    let l = L.get_or_init(|| {
        let python = std::env::var_os("REEF_LOCAL_MODEL_PYTHON").map(PathBuf::from).filter(|p| p.is_file());
        let gguf = std::env::var_os("REEF_LOCAL_MODEL_GGUF").map(PathBuf::from).filter(|p| p.is_file());
        let (python, gguf) = (python?, gguf?);
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let log = std::fs::File::create(std::env::temp_dir().join(format!("reef-llama-{port}.log"))).ok()?;
        let me = std::process::id().to_string();
        Command::new("sh")
            .args([
                "-c",
                r#""$0" -m llama_cpp.server --model "$1" --port "$2" --n_ctx 2048 --chat_format chatml-function-calling & c=$!; while kill -0 "$3" 2>/dev/null; do sleep 0.5; done; kill $c"#,
            ])
            .args([python.as_os_str(), gguf.as_os_str(), port.to_string().as_ref(), me.as_ref()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .ok()?;
        let up = wait_until(Duration::from_secs(60), || curl(&format!("http://127.0.0.1:{port}/v1/models"), None, None).0 == 200);
        assert!(up, "the local model server did not come up; see {}", std::env::temp_dir().join(format!("reef-llama-{port}.log")).display());
        let config = std::env::temp_dir().join(format!("reef-litellm-local-{}.yaml", std::process::id()));
        std::fs::write(
            &config,
            format!(
                "model_list:\n  - model_name: local\n    litellm_params: {{model: openai/smollm2, api_base: \"http://127.0.0.1:{port}/v1\", api_key: none}}\n    \
                 model_info: {{provider: llama-cpp, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}}\n\
                 general_settings:\n  master_key: sk-reef-test-master\n"
            ),
        )
        .ok()?;
        let gateway = gateway_with(test, config.clone())?;
        Some(Local { gateway, config })
    });
    if l.is_none() {
        assert!(
            std::env::var_os("REEF_REQUIRE_LOCAL_MODEL").is_none(),
            "REEF_REQUIRE_LOCAL_MODEL is set but the local model server could not start (REEF_LOCAL_MODEL_PYTHON / REEF_LOCAL_MODEL_GGUF): {test} cannot run"
        );
        eprintln!("SKIPPED {test}: no local model server (bash scripts/test.sh builds llama-cpp-python and fetches SmolLM2 into ~/.cache/reef/llama-venv)");
    }
    l.as_ref()
}

/// One HTTP request with curl: (status, body).
fn curl(url: &str, key: Option<&str>, body: Option<&str>) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args(["-s", "-m", "120", "-w", "\n%{http_code}", url]);
    if let Some(k) = key {
        c.args(["-H", &format!("Authorization: Bearer {k}")]);
    }
    if let Some(b) = body {
        c.args(["-H", "Content-Type: application/json", "-d", b]);
    }
    let out = String::from_utf8_lossy(&c.output().unwrap().stdout).to_string();
    let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

const STORY: &str = "Write a long story about a lighthouse keeper and the sea, with many details.";

/// Completion tokens of one call through the gateway with `limit` (a JSON field and value).
fn completion_tokens(url: &str, key: &str, limit: &str) -> u64 {
    let body = format!(r#"{{"model":"local","temperature":0,{limit},"messages":[{{"role":"user","content":{STORY:?}}}]}}"#);
    let (status, text) = curl(&format!("{url}/v1/chat/completions"), Some(key), Some(&body));
    assert_eq!(status, 200, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["usage"]["completion_tokens"].as_u64().unwrap()
}

/// The LLM calls a task made, read from a backup of the store (its portable form).
fn llm_calls(e: &Env, task: &str) -> Vec<serde_json::Value> {
    use std::io::BufRead;
    let file = e.dir.path().join("calls.reef.gz");
    e.ok(&["backup", file.to_str().unwrap()]);
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(&file).unwrap());
    std::io::BufReader::new(gz)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .filter(|l| l["c"] == "llm_calls" && l["d"]["task_id"] == task)
        .map(|l| l["d"].clone())
        .collect()
}

/// Asks the meter for a story with only `max_completion_tokens` (what the server ignores) and
/// prints the completion tokens that came back.
const ASKER: &str = r#"
import json, os, urllib.request
body = {"model": "local", "temperature": 0, "max_completion_tokens": 12, "messages": [{"role": "user", "content": os.environ["STORY"]}]}
req = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/chat/completions", data=json.dumps(body).encode(), headers={"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"], "Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=120) as r:
    usage = json.load(r)["usage"]
print("completion_tokens", usage["completion_tokens"], flush=True)
print(json.dumps({"result": "asked"}), flush=True)
"#;

#[test]
fn a_real_local_model_server_is_sent_a_token_limit_it_honours_by_reef_and_by_the_meter() {
    let e = Env::new();
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let Some(Local { gateway: g, config }) = local("the local model test") else { return };
    // The control: this server ignores `max_completion_tokens` and honours `max_tokens`.
    let ignored = completion_tokens(&g.url, &g.key, r#""max_completion_tokens":10"#);
    assert!(ignored > 10, "the premise: the server ignores max_completion_tokens (it answered {ignored} tokens to a limit of 10)");
    let honoured = completion_tokens(&g.url, &g.key, r#""max_tokens":10"#);
    eprintln!("SmolLM2-135M on llama-cpp-python behind LiteLLM: max_completion_tokens 10 → {ignored} tokens, max_tokens 10 → {honoured}");
    assert!(honoured <= 10);

    // REEF's own call (the LLM executor on the local tier) and a contained agent's call through
    // the meter, each limited and each answered within its limit.
    e.write_config(&format!(
        "[engine]\nlitellm_config = {:?}\nllm_max_tokens = 10\n\
         [[executors]]\nname = \"asker\"\nkinds = [\"ask\"]\ncommand = [\"/usr/bin/python3\", \"-c\", {ASKER:?}]\n\
         pass_env = [\"STORY\"]\nsoft_cap_usd = 0.5\ntimeout_seconds = 180\n{}",
        config.display().to_string(),
        // REEF's own call here is one answer: the agents without their tools.
        crate::engine::one_answer_roster()
    ));
    let own = e.add_task(STORY, &["--agent", "scout", "--tier", "local"]);
    let asked = e.add_task("Ask the meter for a story", &["--type", "ask", "--agent", "rex"]);
    let env = [("REEF_LLM_BASE_URL", g.url.as_str()), ("REEF_LLM_API_KEY", g.key.as_str()), ("STORY", STORY)]
        .map(|(k, v)| (k.to_string(), v.to_string()));
    let mut serve = e.serve("both", &pairs(&env));
    let status = |id: &str| e.json(&["task", "show", id])["task"]["status"].as_str().unwrap_or("").to_string();
    let over = |id: &str| matches!(status(id).as_str(), "done" | "failed" | "needs_human" | "cancelled");
    let ended = wait_until(Duration::from_secs(240), || over(&own) && over(&asked));
    sigterm(&mut serve);
    assert!(ended, "both tasks ended: {} / {}", e.ok(&["task", "show", &own]), e.ok(&["task", "show", &asked]));
    assert_eq!(status(&own), "done", "{}", e.ok(&["task", "show", &own]));
    assert_eq!(status(&asked), "done", "{}", e.ok(&["task", "show", &asked]));

    let own_calls = llm_calls(&e, &own);
    assert_eq!(own_calls.len(), 1, "{own_calls:?}");
    let ct = own_calls[0]["completion_tokens"].as_u64().unwrap();
    assert!(ct > 0 && ct <= 10, "REEF's call was answered within its limit of 10: {own_calls:?}");
    let metered = llm_calls(&e, &asked);
    assert_eq!(metered.len(), 1, "the agent's call went through the meter: {metered:?}");
    let ct = metered[0]["completion_tokens"].as_u64().unwrap();
    assert!(ct > 0 && ct <= 12, "the meter sent the agent's limit as max_tokens, and it held: {metered:?}");
    let ev = e.json(&["events", "--subject", &asked, "--kind", "task.output", "--limit", "100"]);
    let lines: Vec<&str> = ev["events"].as_array().unwrap().iter().filter_map(|x| x["data"]["line"].as_str()).collect();
    assert!(lines.contains(&format!("completion_tokens {ct}").as_str()), "the agent saw the same answer: {lines:?}");
    for id in [&own, &asked] {
        let over = e.json(&["events", "--subject", id, "--kind", "budget.overshoot"])["events"].as_array().unwrap().len();
        assert_eq!(over, 0, "no overshoot: the server kept to the limit it was sent");
    }
}

#[test]
fn a_real_local_model_completes_a_one_step_task_through_the_agent_loop() {
    let e = Env::new();
    let _turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let Some(Local { gateway: g, config }) = local("the local model loop test") else { return };
    // One step: the loop's last step names `finish` as the call to make, which a 135M model follows.
    e.write_config(&format!(
        "[engine]\nlitellm_config = {:?}\nllm_max_tokens = 80\nloop_max_steps = 1\n\
         [[agents]]\nname = \"scout\"\nrole = \"research\"\ndaily_cap_usd = 5\nmodel_tier = \"local\"\ntools = [\"search_memory\"]\n",
        config.display().to_string()
    ));
    let id = e.add_task("Name one colour of the sea", &["--agent", "scout", "--tier", "local"]);
    let env = [("REEF_LLM_BASE_URL", g.url.as_str()), ("REEF_LLM_API_KEY", g.key.as_str())].map(|(k, v)| (k.to_string(), v.to_string()));
    let mut serve = e.serve("both", &pairs(&env));
    let status = || e.json(&["task", "show", &id])["task"]["status"].as_str().unwrap_or("").to_string();
    let ended = wait_until(Duration::from_secs(180), || matches!(status().as_str(), "done" | "failed" | "needs_human" | "cancelled"));
    sigterm(&mut serve);
    let shown = e.ok(&["task", "show", &id]);
    assert!(ended && status() == "done", "{shown}");
    let trace = e.json(&["task", "trace", &id]);
    let steps = trace["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1, "{trace}");
    assert_eq!(steps[0]["calls"][0]["name"], "finish", "{trace}");
    assert_eq!(steps[0]["model"], "local");
    let result = e.json(&["task", "show", &id])["task"]["result"].as_str().unwrap_or("").to_string();
    assert!(!result.trim().is_empty(), "the model's own words are the result: {shown}");
    let calls = llm_calls(&e, &id);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0]["completion_tokens"].as_u64().unwrap() <= 80, "within the limit it was sent: {calls:?}");
    eprintln!("SmolLM2-135M through REEF's agent loop: {}", e.ok(&["task", "trace", &id]));
}
