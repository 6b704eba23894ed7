//! What a CLI agent is handed — its MCP config (holding its task token), its prompt file, its
//! product's secrets — and what it hands back (its report: cost, result, work products).
//!
//! Invariant: each file is written 0600 into a 0700 directory of REEF's, bound read-only into
//! the sandbox under `/run/reef`, and removed when the attempt ends; an agent gets only its own
//! product's secrets; what it reports never names a repository.

use super::exec::Job;
use super::sandbox;
use crate::{Usd, WorkProducts};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How a CLI agent reaches REEF's MCP tools for its task: `reef mcp --connect` (the `command`,
/// bound read-only into the sandbox) carrying its stdio session over the host's socket with the
/// task's token. Nothing in it names the config, the data dir or the store.
#[derive(Debug, Clone)]
pub struct McpLaunch {
    pub command: PathBuf,
    /// The host's MCP socket (`reef_mcp::socket`), served while the engine runs.
    pub socket: PathBuf,
    /// Where the per-attempt MCP config files go (0600, removed when the attempt ends).
    pub dir: PathBuf,
}

/// How a contained agent's network leaves through REEF: its LLM calls to the metered endpoint
/// (`meter`, on `llm_socket`), anything else to the egress proxy (on `egress_socket`), both
/// reached through `reef bridge` inside the sandbox, on the per-run credential the meter issues.
#[derive(Clone)]
pub struct MeterLaunch {
    pub meter: super::meter::Meter,
    pub llm_socket: PathBuf,
    pub egress_socket: PathBuf,
}

/// Where REEF's socket and an attempt's MCP config appear inside a sandbox.
pub(crate) fn inside(name: &str) -> PathBuf {
    Path::new(sandbox::INSIDE_RUN).join(name)
}

impl McpLaunch {
    /// The config file a job's agent is pointed at, on the host.
    pub fn config_path(&self, job: &Job) -> PathBuf {
        self.dir.join(format!("{}-{}.json", sandbox::dir_name(&job.task.id), job.attempt))
    }

    /// Writes the MCP config (Claude Code's `mcpServers` shape; Codex reads the same fields
    /// through `-c mcp_servers.reef...`) holding the task's token, readable by this user only.
    /// `contained`: the paths in it are the ones the agent sees inside its sandbox.
    pub(crate) fn write(&self, job: &Job, token: &str, contained: bool) -> std::io::Result<PathBuf> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(&self.dir)?;
        let (command, socket) = if contained { (inside("reef"), inside("mcp.sock")) } else { (self.command.clone(), self.socket.clone()) };
        let doc = serde_json::json!({"mcpServers": {"reef": {
            "type": "stdio",
            "command": command,
            "args": ["mcp", "--connect", socket],
            "env": {"REEF_MCP_TOKEN": token},
        }}});
        let path = self.config_path(job);
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&path)?;
        f.write_all(serde_json::to_string_pretty(&doc).unwrap_or_default().as_bytes())?;
        Ok(path)
    }

    /// Removes config files older than `age`, left by attempts of a REEF that was killed (their
    /// tokens have expired by then; another engine's live attempts are younger).
    pub fn sweep(&self, age: Duration) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else { return };
        for e in rd.flatten() {
            let old = e.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).is_some_and(|el| el > age);
            if old {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// A file only this user can read (0600), in a 0700 directory.
pub(crate) fn write_private(p: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = p.parent() {
        private_dir(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(p)?;
    f.write_all(bytes)
}

/// A directory only this user can enter (0700), created if missing.
pub(crate) fn private_dir(p: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(p)?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700))
}

/// The secrets of `product` among `vars`, named without their prefix: `REEF_SECRET_<P>_<NAME>`
/// where `<P>` is the product's name in capitals with `-` and spaces as `_`. Such names can
/// overlap (`A_B_KEY` under `a` is also `KEY` under `a-b`): a variable goes to the product with
/// the longest matching name among `known` — so product `a` never receives product `a-b`'s.
pub fn product_secrets(vars: impl Iterator<Item = (String, String)>, product: &str, known: &[String]) -> Vec<(String, String)> {
    // Two spellings: `REEF_SECRET_<P>_` in REEF's environment, `REEF_PRODUCT_<P>_` as `reef secret
    // set --product` keeps them (in the keyring, or the environment).
    let norm = |p: &str| p.to_ascii_uppercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect::<String>();
    let prefixes = |p: &str| ["REEF_SECRET_", "REEF_PRODUCT_"].map(|s| format!("{s}{}_", norm(p)));
    let mine = prefixes(product);
    let longer: Vec<String> =
        known.iter().flat_map(|k| prefixes(k)).filter(|k| mine.iter().any(|m| k.len() > m.len() && k.starts_with(m.as_str()))).collect();
    let mut out: Vec<(String, String)> = vars
        .filter(|(k, _)| !longer.iter().any(|l| k.starts_with(l.as_str())))
        .filter_map(|(k, v)| mine.iter().find_map(|m| k.strip_prefix(m.as_str())).filter(|n| !n.is_empty()).map(|n| (n.to_string(), v)))
        .collect();
    // The environment's value first (it beats the keyring), one value per name.
    let mut seen = std::collections::HashSet::new();
    out.retain(|(n, _)| seen.insert(n.clone()));
    out
}

/// The JSON lines of an agent's output (Pi's `--mode json` events), those that parse.
fn json_lines(output: &str) -> impl Iterator<Item = serde_json::Value> + '_ {
    output.lines().filter(|l| l.starts_with('{')).filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
}

/// The session a CLI reported, for resuming it: Claude Code's `session_id`, Pi's first
/// `{"type": "session", "id": …}` event, Codex's `{"type": "thread.started", "thread_id": …}`, or
/// the `sessionID` OpenCode's events carry.
/// Only an id that cannot pass for a flag or anything but one argument is kept: it goes on the
/// next attempt's command line (`--resume {session_id}`), and the agent wrote the output.
pub(crate) fn session_of(output: &str) -> Option<String> {
    let id = match serde_json::from_str::<serde_json::Value>(output.trim()) {
        // Claude Code's and Gemini CLI's `session_id`, OpenClaw's `meta.agentMeta.sessionId`.
        Ok(v) => v.get("session_id").or_else(|| v.pointer("/meta/agentMeta/sessionId"))?.as_str()?.to_string(),
        Err(_) => json_lines(output).find_map(|v| match v["type"].as_str() {
            Some("session") => v["id"].as_str().map(String::from),
            Some("thread.started") => v["thread_id"].as_str().map(String::from),
            _ => v["sessionID"].as_str().map(String::from),
        })?,
    };
    let safe = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('-')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    safe.then_some(id)
}

/// What a JSON-lines CLI ended with: its last assistant message's text (Pi's `message_end`,
/// Codex's `agent_message` item, OpenCode's `text` part), and the cost it reported over every
/// assistant message or step (none when it had no price, as Codex never has: the meter counts).
fn reported_lines(output: &str) -> (Option<Usd>, Option<String>) {
    let (mut cost, mut result) = (0.0f64, None);
    for v in json_lines(output) {
        if v["type"] == "item.completed" && v["item"]["type"] == "agent_message" {
            if let Some(t) = v["item"]["text"].as_str() {
                result = Some(t.to_string());
            }
            continue;
        }
        if v["type"] == "text" && v["part"]["type"] == "text" {
            if let Some(t) = v["part"]["text"].as_str() {
                result = Some(t.to_string());
            }
            continue;
        }
        if v["type"] == "step_finish" {
            cost += v["part"]["cost"].as_f64().filter(|c| c.is_finite() && *c >= 0.0).unwrap_or(0.0);
            continue;
        }
        if !(v["type"] == "message_end" && v["message"]["role"] == "assistant") {
            continue;
        }
        cost += v["message"]["usage"]["cost"]["total"].as_f64().filter(|c| c.is_finite() && *c >= 0.0).unwrap_or(0.0);
        let text: Vec<&str> = v["message"]["content"]
            .as_array()
            .map(|parts| parts.iter().filter(|p| p["type"] == "text").filter_map(|p| p["text"].as_str()).collect())
            .unwrap_or_default();
        if !text.is_empty() {
            result = Some(text.join("\n"));
        }
    }
    ((cost > 0.0).then(|| Usd::from_dollars(cost)), result)
}

/// Claude Code's and Gemini CLI's `--output-format json` carry their result text (and Claude
/// Code its cost); a JSON-lines CLI (Pi, Codex) its messages.
pub(crate) fn reported(output: &str) -> (Option<Usd>, Option<String>, WorkProducts) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(output.trim()) else {
        let (cost, result) = reported_lines(output);
        return (cost, result, WorkProducts::default());
    };
    let cost = v
        .get("total_cost_usd")
        .or_else(|| v.get("cost_usd"))
        // OpenClaw's is 0 when its provider has no price (REEF's endpoint has none in its config).
        .or_else(|| v.pointer("/meta/agentMeta/costUsd").filter(|c| c.as_f64().is_some_and(|c| c > 0.0)))
        .and_then(|c| c.as_f64())
        .filter(|c| c.is_finite() && *c >= 0.0)
        .map(Usd::from_dollars);
    // Claude Code's `result`, Gemini CLI's `response`, OpenClaw's final visible text.
    let result = ["/result", "/response", "/meta/finalAssistantVisibleText"]
        .iter()
        .find_map(|k| v.pointer(k).and_then(|r| r.as_str()))
        .map(String::from);
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
    let wp = WorkProducts {
        branch: s("branch"),
        pr_url: s("pr_url"),
        preview_url: s("preview_url"),
        deploy_url: s("deploy_url"),
        // Never from the agent: a repository it names would be bound into its next sandbox.
        repository: None,
    };
    (cost, result, wp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pis_json_events_give_its_session_its_last_answer_and_its_reported_cost() {
        let out = r#"{"type":"session","version":3,"id":"01a2-sess","cwd":"/w"}
{"type":"agent_start"}
{"type":"message_end","message":{"role":"user","content":[{"type":"text","text":"Say hello"}]}}
{"type":"message_end","message":{"role":"assistant","content":[{"type":"text","text":"Looking."}],"usage":{"cost":{"total":0.001}}}}
{"type":"message_end","message":{"role":"assistant","content":[{"type":"text","text":"Hello from pi"}],"usage":{"cost":{"total":0.002}}}}
not json at all
{"type":"agent_end"}"#;
        assert_eq!(session_of(out).as_deref(), Some("01a2-sess"));
        let (cost, result, _) = reported(out);
        assert_eq!(result.as_deref(), Some("Hello from pi"));
        assert_eq!(cost, Some(Usd::from_dollars(0.003)));
        let codex = r#"{"type":"thread.started","thread_id":"01a22e01-4611-79c1-be18-4d0a507b207a"}
{"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"First."}}
{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"ls","exit_code":0}}
{"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"Codex is done."}}
{"type":"turn.completed","usage":{"input_tokens":10585,"output_tokens":40}}"#;
        assert_eq!(session_of(codex).as_deref(), Some("01a22e01-4611-79c1-be18-4d0a507b207a"));
        assert_eq!(reported(codex).1.as_deref(), Some("Codex is done."));
        assert_eq!(reported(codex).0, None, "Codex reports tokens, not cost: the meter's count stands");
        let opencode = r#"{"type":"step_start","sessionID":"ses_dd1f667d3ffeJzttdY3627Hg4b","part":{"type":"step-start"}}
{"type":"tool_use","sessionID":"ses_dd1f667d3ffeJzttdY3627Hg4b","part":{"type":"tool","tool":"write","state":{"status":"completed"}}}
{"type":"step_finish","sessionID":"ses_dd1f667d3ffeJzttdY3627Hg4b","part":{"type":"step-finish","cost":0.25}}
{"type":"text","sessionID":"ses_dd1f667d3ffeJzttdY3627Hg4b","part":{"type":"text","text":"OpenCode wrote hello.txt."}}
{"type":"step_finish","sessionID":"ses_dd1f667d3ffeJzttdY3627Hg4b","part":{"type":"step-finish","cost":0.5}}"#;
        assert_eq!(session_of(opencode).as_deref(), Some("ses_dd1f667d3ffeJzttdY3627Hg4b"));
        assert_eq!(reported(opencode).1.as_deref(), Some("OpenCode wrote hello.txt."));
        assert_eq!(reported(opencode).0, Some(Usd::from_dollars(0.75)), "its steps' costs, summed");
        let openclaw = r#"{"payloads":[{"text":"OpenClaw wrote hello.txt.","mediaUrl":null}],
  "meta":{"stopReason":"stop","finalAssistantVisibleText":"OpenClaw wrote hello.txt.",
  "agentMeta":{"sessionId":"5e899674-aa","provider":"reef","model":"cheap","costUsd":0}}}"#;
        assert_eq!(session_of(openclaw).as_deref(), Some("5e899674-aa"));
        assert_eq!(reported(openclaw).1.as_deref(), Some("OpenClaw wrote hello.txt."));
        assert_eq!(reported(openclaw).0, None, "no price of its own: the meter's count stands");
        // Priced at nothing (REEF's models are unknown to Pi): no report, the meter counts.
        assert_eq!(reported(&out.replace("0.001", "0").replace("0.002", "0")).0, None);
        assert_eq!(session_of(r#"{"session_id":"claude-1","result":"x"}"#).as_deref(), Some("claude-1"));
        // An id that would pass for a flag or carry anything else is not kept.
        for bad in ["--dangerously-skip-permissions", "a b", "x;rm", "", "../s"] {
            assert_eq!(session_of(&format!("{{\"session_id\":{bad:?}}}")), None, "{bad}");
        }
    }

    #[test]
    fn a_product_never_receives_the_secrets_of_a_product_whose_name_extends_its_own() {
        let vars = [("REEF_SECRET_A_KEY", "a-key"), ("REEF_SECRET_A_B_KEY", "ab-key"), ("REEF_SECRET_AB_KEY", "x"), ("PATH", "/usr/bin")]
            .map(|(k, v)| (k.to_string(), v.to_string()));
        let known = vec!["a".to_string(), "a-b".to_string(), "ab".to_string()];
        assert_eq!(product_secrets(vars.clone().into_iter(), "a", &known), vec![("KEY".to_string(), "a-key".to_string())]);
        assert_eq!(product_secrets(vars.clone().into_iter(), "a-b", &known), vec![("KEY".to_string(), "ab-key".to_string())]);
        // Without knowing of a-b, "a" would take B_KEY: the list of products is what decides.
        assert_eq!(product_secrets(vars.into_iter(), "a", &["a".to_string()]).len(), 2);
    }

    #[test]
    fn secrets_kept_with_reef_secret_set_reach_their_product_under_the_same_rule() {
        // `reef secret set --product habit-flow STRIPE_KEY` keeps REEF_PRODUCT_HABIT_FLOW_STRIPE_KEY.
        let vars = [
            ("REEF_SECRET_HABIT_FLOW_STRIPE_KEY", "from-the-environment"),
            ("REEF_PRODUCT_HABIT_FLOW_STRIPE_KEY", "from-the-keyring"),
            ("REEF_PRODUCT_HABIT_FLOW_DB_PASSWORD", "db-pass"),
            ("REEF_PRODUCT_HABIT_FLOW_PRO_KEY", "pro-only"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let known = vec!["habit-flow".to_string(), "habit-flow-pro".to_string()];
        let got = product_secrets(vars.into_iter(), "habit-flow", &known);
        assert_eq!(
            got,
            vec![("STRIPE_KEY".to_string(), "from-the-environment".to_string()), ("DB_PASSWORD".to_string(), "db-pass".to_string())],
            "the environment beats the keyring; habit-flow-pro's secret stays its own"
        );
    }

    #[test]
    fn claude_code_json_reports_cost_result_and_work_products() {
        let (c, r, wp) = reported(r#"{"type":"result","result":"done","total_cost_usd":0.42,"branch":"feat/x"}"#);
        assert_eq!(c, Some(Usd::from_dollars(0.42)));
        assert_eq!(r.as_deref(), Some("done"));
        assert_eq!(wp.branch.as_deref(), Some("feat/x"));
        assert_eq!(reported("plain text").0, None);
    }
}
