//! The real agent CLIs from npm, started by a real `reef serve` the way an operator runs them:
//! contained by bubblewrap, their model calls through REEF's metered endpoint in front of the real
//! LiteLLM proxy (its mocked providers stand in for the paid models that cannot be called here),
//! their spend in the ledger at the meter's count, whatever the CLI itself reports.

use crate::common::*;
use crate::engine::pairs;
use crate::gateway::gateway;
use crate::scripted::call;
use std::path::PathBuf;
use std::time::Duration;

/// An agent CLI's binary named by `var` (`bash scripts/test.sh` installs them from npm and sets
/// REEF_CLAUDE_BIN and REEF_PI_BIN).
pub(crate) fn cli_bin(var: &str, test: &str) -> Option<PathBuf> {
    let found = std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("REEF_REQUIRE_AGENT_CLIS").is_none(),
            "REEF_REQUIRE_AGENT_CLIS is set but {var} names no file: {test} cannot run"
        );
        eprintln!("SKIPPED {test}: {var} is not set (bash scripts/test.sh installs the agent CLIs into ~/.cache/reef/agent-clis)");
    }
    found
}

/// Runs `reef serve` with `env` until task `id` has ended (150 s at most): whether it ended, and
/// `reef task show` of it.
fn serve_until_it_ends(e: &Env, id: &str, env: &[(String, String)]) -> (bool, String) {
    let mut serve = e.serve("both", &pairs(env));
    let over =
        wait_until(Duration::from_secs(150), || matches!(task_status(e, id).as_str(), "done" | "failed" | "needs_human" | "cancelled"));
    sigterm(&mut serve);
    (over, e.ok(&["task", "show", id]))
}

fn task_status(e: &Env, id: &str) -> String {
    e.json(&["task", "show", id])["task"]["status"].as_str().unwrap_or("").to_string()
}

fn claude_bin(test: &str) -> Option<PathBuf> {
    cli_bin("REEF_CLAUDE_BIN", test)
}

/// What `reef serve` runs Claude Code with: the gateway REEF meters, and Claude Code kept offline
/// (no telemetry, no updates) with its background model on `small_model`.
fn claude_env(url: &str, key: &str, small_model: &str) -> Vec<(String, String)> {
    [
        ("REEF_LLM_BASE_URL", url),
        ("REEF_LLM_API_KEY", key),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
        ("ANTHROPIC_DEFAULT_HAIKU_MODEL", small_model),
        ("ANTHROPIC_SMALL_FAST_MODEL", small_model),
        ("DISABLE_AUTOUPDATER", "1"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .to_vec()
}

#[test]
fn the_real_claude_code_runs_a_task_contained_and_is_charged_what_the_meter_counted() {
    let e = Env::new();
    let Some(g) = gateway("the Claude Code test") else { return };
    let Some(claude) = claude_bin("the Claude Code test") else { return };
    let version = std::process::Command::new(&claude).arg("--version").output().unwrap();
    eprintln!("Claude Code: {} ({})", String::from_utf8_lossy(&version.stdout).trim(), claude.display());
    // The cheap tier for every call Claude Code makes (its background model too); the meter
    // prices them from the gateway's own config. No gateway key is configured for the agent:
    // the sandbox gets a credential for this run only.
    // From its preset: the command (model, budget, MCP, tools), resume and environment (kept
    // offline, its background model on the task's tier).
    e.write_config(&format!(
        "[engine]\nlitellm_config = {:?}\n[[agents]]\nname = \"rex\"\nrole = \"builder\"\ndaily_cap_usd = 40\n\
         [[executors]]\npreset = \"claude\"\nprogram = {:?}\nkinds = [\"code\"]\nsoft_cap_usd = 0.5\ntimeout_seconds = 120\n",
        g.config.display().to_string(),
        claude.display().to_string()
    ));
    let id = e.json(&["task", "add", "Say that the task is done", "--type", "code", "--agent", "rex", "--tier", "cheap"])["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let env = claude_env(&g.url, &g.key, "cheap");
    let (over, shown) = serve_until_it_ends(&e, &id, &env);
    assert!(over, "the task never ended: {shown}");
    let task = e.json(&["task", "show", &id])["task"].clone();
    assert_eq!(task["status"], "done", "{shown}");
    // Claude Code's own answer: the mock behind the gateway's `cheap` route, through the meter.
    assert_eq!(task["result"], "Cheap answer: the task is done.", "{shown}");
    assert!(e.ok(&["status"]).contains("bubblewrap"), "it ran contained");

    // What it cost is what the meter counted: every call at the gateway's price for `cheap`,
    // in the task's outcome and in the agent's day alike.
    let done = e.json(&["events", "--subject", &id, "--kind", "task.done"])["events"][0].clone();
    let charged = done["data"]["cost"].as_i64().unwrap();
    let settled = e.json(&["events", "--subject", &id, "--kind", "budget.report_mismatch"])["events"].as_array().unwrap().clone();
    let caps = e.json(&["status"])["caps_today"].as_array().unwrap().clone();
    let day =
        caps.iter().find(|c| c["scope"].as_str().is_some_and(|s| s.starts_with("agent:rex:day"))).map(|c| c["spent"].as_i64().unwrap());
    assert!(charged > 0, "its calls cost something: {done}");
    assert_eq!(day, Some(charged), "the agent's day holds the run's metered cost: {caps:?}");
    // Claude Code prices `cheap` by its own table, not the gateway's: its report disagrees with
    // the meter, is raised, and loses.
    if let Some(m) = settled.first() {
        assert_eq!(m["data"]["settled"], m["data"]["metered"], "settled at the meter's count: {m}");
        assert_eq!(m["data"]["metered"].as_i64(), Some(charged));
        assert!(m["data"]["calls"].as_u64().unwrap_or(0) >= 1, "{m}");
    }
}

#[test]
fn the_real_claude_code_calls_reefs_mcp_tools_as_a_scripted_model_directs_it_over_a_real_stream() {
    let e = Env::new();
    let Some(claude) = claude_bin("the Claude Code MCP test") else { return };
    // The model behind `cheap` is the scripted provider (a stand-in for a paid model): it has
    // Claude Code call REEF's report_progress through the MCP server, then answer. Claude Code's
    // background model (`small`) just says ok.
    let scripts = serde_json::json!({
        "cheap": [
            {"call": [call("mcp__reef__report_progress", serde_json::json!({"message": "halfway, through REEF's MCP server"}))]},
            {"say": "All done through REEF."}
        ],
        "small": [{"say": "ok"}],
    });
    let Some(s) = crate::scripted::start("the Claude Code MCP test", &scripts) else { return };
    e.write_config(&format!(
        "[engine]\nlitellm_config = {:?}\n[[agents]]\nname = \"rex\"\nrole = \"builder\"\ndaily_cap_usd = 40\n\
         [[executors]]\nname = \"claude\"\nkinds = [\"code\"]\n\
         command = [{:?}, \"-p\", \"--output-format\", \"json\", \"--model\", \"cheap\", \"--mcp-config\", \"{{mcp_config}}\", \"--strict-mcp-config\", \"--allowedTools\", \"mcp__reef__report_progress\"]\n\
         prompt_on_stdin = true\nsoft_cap_usd = 0.5\ntimeout_seconds = 120\n\
         pass_env = [\"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC\", \"ANTHROPIC_DEFAULT_HAIKU_MODEL\", \"ANTHROPIC_SMALL_FAST_MODEL\", \"DISABLE_AUTOUPDATER\"]\n",
        s.gateway.config.display().to_string(),
        claude.display().to_string()
    ));
    let id = e.json(&["task", "add", "Report progress, then say you are done", "--type", "code", "--agent", "rex"])["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let env = claude_env(&s.gateway.url, &s.gateway.key, "small");
    let (over, shown) = serve_until_it_ends(&e, &id, &env);
    assert!(over && task_status(&e, &id) == "done", "{shown}");
    assert_eq!(e.json(&["task", "show", &id])["task"]["result"], "All done through REEF.", "{shown}");
    // The tool call reached REEF's MCP server from inside the sandbox, as the agent on its task.
    let progress = e.json(&["events", "--subject", &id, "--kind", "task.progress"])["events"].as_array().unwrap().clone();
    assert_eq!(progress.len(), 1, "{progress:?}");
    assert_eq!(progress[0]["data"]["message"], "halfway, through REEF's MCP server");
    assert_eq!(progress[0]["actor"], "agent:rex");
    let audit = e.json(&["audit", "--subject", &id, "--action", "mcp.report_progress"])["audit"].as_array().unwrap().clone();
    assert_eq!(audit.len(), 1, "{audit:?}");
    // Claude Code streamed its calls; the meter read their usage from the stream and charged it.
    let asked: Vec<serde_json::Value> = s.requests().into_iter().filter(|r| r["model"] == "cheap").collect();
    assert!(asked.len() >= 2 && asked.iter().all(|r| r["stream"] == true), "streamed calls: {asked:?}");
    let done = e.json(&["events", "--subject", &id, "--kind", "task.done"])["events"][0].clone();
    assert!(done["data"]["cost"].as_i64().unwrap_or(0) > 0, "charged what the meter read from the streams: {done}");
}

/// Runs one task (`Write hello.txt`) through `reef serve` on `preset` with the program `var`
/// names, the model `cheap` playing `script` behind LiteLLM as `provider/cheap` (the scripted
/// provider: a stand-in for a paid model); checks what every preset must do: `reef executors`
/// finds it usable, the task is done with `result`, the file `hello.txt` holds `content` in the
/// task's own directory, it ran contained, and the agent's day holds exactly what the meter
/// charged. Gives the provider (what the model was asked); `None` (said why) when the CLI or
/// LiteLLM is not installed.
fn run_preset(
    preset: &str,
    var: &str,
    provider: &str,
    script: serde_json::Value,
    result: &str,
    content: &str,
) -> Option<crate::scripted::Scripted> {
    let test = format!("the {preset} preset test");
    let program = cli_bin(var, &test)?;
    let s = crate::scripted::start_as(&test, &serde_json::json!({ "cheap": script }), provider)?;
    let e = Env::new();
    // Only the preset and the program: command, tools, resume and environment come from it.
    e.write_config(&format!(
        "[engine]\nlitellm_config = {:?}\n[[agents]]\nname = \"rex\"\nrole = \"builder\"\ndaily_cap_usd = 40\n\
         [[executors]]\npreset = {preset:?}\nprogram = {:?}\nkinds = [\"code\"]\nsoft_cap_usd = 0.5\ntimeout_seconds = 140\n",
        s.gateway.config.display().to_string(),
        program.display().to_string()
    ));
    let surveyed = e.json(&["executors"]);
    let row = surveyed.as_array().unwrap().iter().find(|r| r["name"] == preset).unwrap().clone();
    assert_eq!((row["usable"].as_bool(), row["configured_as"].as_str()), (Some(true), Some(preset)), "{row}");
    eprintln!("{preset}: {} ({})", row["version"], program.display());
    let id = e.json(&["task", "add", "Write hello.txt", "--type", "code", "--agent", "rex", "--tier", "cheap"])["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (over, shown) = serve_until_it_ends(&e, &id, &s.env());
    assert!(over && task_status(&e, &id) == "done", "{shown}");
    assert_eq!(e.json(&["task", "show", &id])["task"]["result"], result, "its last message is the result: {shown}");
    // Its tool acted in the task's own directory, contained.
    let file = e.work.path().join(&id).join("hello.txt");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), content);
    assert!(e.ok(&["status"]).contains("bubblewrap"), "it ran contained");
    // Its calls went through REEF's meter (the run's credential, never the gateway's key) and
    // were charged at the gateway's price, whatever the CLI itself reported.
    let done = e.json(&["events", "--subject", &id, "--kind", "task.done"])["events"][0].clone();
    let charged = done["data"]["cost"].as_i64().unwrap_or(0);
    let caps = e.json(&["status"])["caps_today"].as_array().unwrap().clone();
    let day =
        caps.iter().find(|c| c["scope"].as_str().is_some_and(|s| s.starts_with("agent:rex:day"))).map(|c| c["spent"].as_i64().unwrap());
    assert!(charged > 0 && day == Some(charged), "charged what the meter counted, in the agent's day: {done} {caps:?}");
    Some(s)
}

/// The tool names the model was offered in the first chat-completions call that offered any.
fn offered(s: &crate::scripted::Scripted) -> Vec<String> {
    let asked: Vec<serde_json::Value> = s.requests().into_iter().filter(|q| q["model"] == "cheap").collect();
    assert!(asked.len() >= 2, "two model calls at least: {asked:?}");
    assert!(asked.iter().all(|q| q["max_tokens"].as_u64().is_some_and(|n| n > 0)), "the meter's limit on every call: {asked:?}");
    // (Some CLIs' first call names the session, without tools.)
    let working = asked.iter().find(|q| q["tools"].is_array()).expect("a call with tools");
    working["tools"].as_array().unwrap().iter().filter_map(|t| t["function"]["name"].as_str().map(String::from)).collect()
}

#[test]
fn the_real_pi_coding_agent_works_in_its_task_directory_contained_and_metered_from_its_preset() {
    // The scripted provider (a stand-in for a paid model) has Pi write a file with its own
    // `write` tool, then answer.
    let script = serde_json::json!([
        {"call": [call("write", serde_json::json!({"path": "hello.txt", "content": "written by Pi inside REEF's sandbox\n"}))]},
        {"say": "Pi wrote hello.txt."}
    ]);
    let Some(r) = run_preset("pi", "REEF_PI_BIN", "hosted_vllm", script, "Pi wrote hello.txt.", "written by Pi inside REEF's sandbox\n")
    else {
        return;
    };
    let tools = offered(&r);
    assert!(tools.iter().any(|t| t == "write") && !tools.iter().any(|t| t == "bash"), "the preset's tool allow-list: {tools:?}");
}

#[test]
fn the_real_codex_works_over_the_responses_api_contained_and_metered_with_reefs_mcp_tools_offered() {
    // The scripted provider speaks the Responses API (a stand-in for OpenAI's models, which
    // cannot be called here): LiteLLM passes Codex's calls through to it as `openai/cheap`. It has
    // Codex run a shell command, then answer.
    let script = serde_json::json!([
        {"call": [call("exec_command", serde_json::json!({"cmd": "echo written by Codex inside the sandbox > hello.txt"}))]},
        {"say": "Codex wrote hello.txt."}
    ]);
    let content = "written by Codex inside the sandbox\n";
    let Some(r) = run_preset("codex", "REEF_CODEX_BIN", "openai", script, "Codex wrote hello.txt.", content) else { return };
    // Its calls reached the provider over the Responses API, through REEF's meter: with the
    // token limit the meter set, without the server-side search REEF could not price, and with
    // REEF's MCP server wired in (its tools offered to the model).
    let asked: Vec<serde_json::Value> = r.requests().into_iter().filter(|q| q["model"] == "cheap").collect();
    assert!(asked.len() >= 2 && asked.iter().all(|q| q["input"].is_array() && q.get("messages").is_none()), "{asked:?}");
    assert!(asked.iter().all(|q| q["max_output_tokens"].as_u64().is_some_and(|n| n > 0)), "the meter's limit: {:?}", asked[0]);
    let tools = asked[0]["tools"].to_string();
    assert!(!tools.contains("\"web_search\""), "no server-side search: {tools}");
    assert!(tools.contains("report_progress"), "REEF's MCP tools reach Codex's model: {tools}");
}

#[test]
fn the_real_gemini_cli_works_over_generate_content_contained_and_metered_within_its_tool_allow_list() {
    // The scripted provider speaks Gemini's generateContent (a stand-in for Google's models,
    // which cannot be called here): LiteLLM passes Gemini CLI's calls through to it as
    // `gemini/cheap`. It has Gemini CLI write a file, then answer.
    let content = "written by Gemini CLI inside the sandbox\n";
    let script = serde_json::json!([
        {"call": [call("write_file", serde_json::json!({"file_path": "hello.txt", "content": content}))]},
        {"say": "Gemini CLI wrote hello.txt."}
    ]);
    let Some(r) = run_preset("gemini", "REEF_GEMINI_BIN", "gemini", script, "Gemini CLI wrote hello.txt.", content) else { return };
    // Its calls reached the provider as generateContent through REEF's meter, with the token
    // limit the meter set, the preset's tools only, and REEF's MCP server wired in.
    let asked: Vec<serde_json::Value> = r.requests().into_iter().filter(|q| q["contents"].is_array()).collect();
    assert!(asked.len() >= 2, "{asked:?}");
    assert!(
        asked.iter().all(|q| q["generationConfig"]["maxOutputTokens"].as_u64().is_some_and(|n| n > 0)),
        "the meter's limit: {:?}",
        asked[0]["generationConfig"]
    );
    let tools = asked[0]["tools"].to_string();
    assert!(tools.contains("\"write_file\"") && !tools.contains("\"run_shell_command\""), "the preset's allow-list: {tools}");
    assert!(tools.contains("report_progress"), "REEF's MCP tools reach Gemini CLI's model: {tools}");
    assert!(!tools.contains("googleSearch"), "no server-side search: {tools}");
}

#[test]
fn the_real_opencode_works_offline_contained_and_metered_within_its_tool_allow_list() {
    // The scripted provider over chat completions, as OpenCode's OpenAI-compatible provider
    // speaks. No network: the sandbox has none, and OpenCode must start without fetching its
    // models list, updates or plugins.
    let content = "written by OpenCode inside the sandbox\n";
    let script = serde_json::json!([
        {"call": [call("write", serde_json::json!({"filePath": "hello.txt", "content": content}))]},
        {"say": "OpenCode wrote hello.txt."}
    ]);
    let Some(r) = run_preset("opencode", "REEF_OPENCODE_BIN", "hosted_vllm", script, "OpenCode wrote hello.txt.", content) else { return };
    let tools = offered(&r);
    assert!(tools.iter().any(|t| t == "write") && !tools.iter().any(|t| t == "bash"), "the preset's allow-list: {tools:?}");
    assert!(tools.iter().any(|t| t.ends_with("report_progress")), "REEF's MCP tools reach OpenCode's model: {tools:?}");
}

#[test]
fn the_real_openclaw_agent_runs_embedded_on_its_own_node_contained_and_metered() {
    // Embedded (`agent --local`), OpenClaw calls its model from its own process: through REEF's
    // meter, over chat completions. `reef executors` finds the Node ≥ 24 beside it (this
    // machine's own Node is older).
    let content = "written by OpenClaw inside the sandbox\n";
    let script = serde_json::json!([
        {"call": [call("write", serde_json::json!({"path": "hello.txt", "content": content}))]},
        {"say": "OpenClaw wrote hello.txt."}
    ]);
    let Some(r) = run_preset("openclaw", "REEF_OPENCLAW_BIN", "hosted_vllm", script, "OpenClaw wrote hello.txt.", content) else { return };
    let tools = offered(&r);
    assert!(tools.iter().any(|t| t == "write") && !tools.iter().any(|t| t == "exec"), "the preset's allow-list: {tools:?}");
    assert!(tools.iter().any(|t| t.ends_with("report_progress")), "REEF's MCP tools reach OpenClaw's model: {tools:?}");
}
