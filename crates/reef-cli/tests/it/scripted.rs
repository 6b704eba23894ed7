//! The scripted tool-calling provider (`tests/support/scripted_provider.py`) behind a real
//! LiteLLM proxy of its own: a stand-in for the paid models that cannot be called here. Each
//! model name plays a script (see the provider's header); LiteLLM reaches it as an
//! OpenAI-compatible server over chat completions, streamed or not, for OpenAI-shaped callers and
//! Anthropic-shaped ones (Claude Code's `/v1/messages`) alike.

use crate::gateway::{gateway_with, Gateway};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub struct Scripted {
    pub gateway: Gateway,
    /// Every request the provider got, one JSON line each.
    pub log: PathBuf,
}

impl Scripted {
    /// What `reef serve` needs to reach the models through this gateway.
    pub fn env(&self) -> Vec<(String, String)> {
        [("REEF_LLM_BASE_URL", self.gateway.url.as_str()), ("REEF_LLM_API_KEY", self.gateway.key.as_str())]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .to_vec()
    }

    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A tool call in a script.
pub fn call(name: &str, arguments: Value) -> Value {
    serde_json::json!({"name": name, "arguments": arguments})
}

/// Starts the provider with `scripts` and a LiteLLM proxy routing each script's name to it
/// (priced $1/M in, $2/M out), both stopped when this test process ends; `None` when LiteLLM is
/// not installed (said once by the gateway helper).
pub fn start(test: &str, scripts: &Value) -> Option<Scripted> {
    // `hosted_vllm/`: LiteLLM speaks chat completions to it for every caller (for `openai/` it
    // turns Anthropic-shaped calls into the Responses API).
    start_as(test, scripts, "hosted_vllm")
}

/// As `start`, with LiteLLM reaching the provider as `provider/<model>`: `openai` passes the
/// Responses API through to the provider's own `/v1/responses` (what Codex speaks).
pub fn start_as(test: &str, scripts: &Value, provider: &str) -> Option<Scripted> {
    let dir = tempfile::Builder::new().prefix("reef-scripted-").tempdir().ok()?.keep();
    let scripts_file = dir.join("scripts.json");
    std::fs::write(&scripts_file, scripts.to_string()).ok()?;
    let log = dir.join("requests.jsonl");
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let me = std::process::id().to_string();
    Command::new("sh")
        .args(["-c", r#"python3 "$0" "$1" "$2" "$3" & c=$!; while kill -0 "$4" 2>/dev/null; do sleep 0.5; done; kill $c"#])
        .arg(root().join("tests/support/scripted_provider.py"))
        .args([scripts_file.as_os_str(), port.to_string().as_ref(), log.as_os_str(), me.as_ref()])
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let mut yaml = String::from("model_list:\n");
    for n in scripts.as_object()?.keys() {
        yaml.push_str(&format!(
            "  - model_name: {n}\n    litellm_params: {{model: {provider}/{n}, api_base: \"http://127.0.0.1:{port}/v1\", api_key: none}}\n    \
             model_info: {{provider: scripted, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}}\n"
        ));
    }
    yaml.push_str("general_settings:\n  master_key: sk-reef-test-master\n");
    let config = dir.join("litellm.yaml");
    std::fs::write(&config, yaml).ok()?;
    let gateway = gateway_with(test, config)?;
    Some(Scripted { gateway, log })
}
