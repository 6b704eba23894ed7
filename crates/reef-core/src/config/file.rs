//! The config file's shape: one section per table, unknown keys refused.

use super::{bad, ConfigError};
use crate::secret::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Parses the file's text; no file is the default config.
pub fn parse(file_text: Option<&str>) -> Result<FileConfig, ConfigError> {
    Ok(match file_text {
        Some(t) => {
            let fix = "correct the file; `reef config export` shows a valid one";
            let de = toml::Deserializer::parse(t).map_err(|e| bad("config.toml", e.message().to_string(), fix))?;
            serde_path_to_error::deserialize(de).map_err(|e| {
                let path = e.path().to_string();
                let key = if path == "." { "config.toml".to_string() } else { path };
                bad(&key, e.into_inner().message().to_string(), fix)
            })?
        }
        None => FileConfig::default(),
    })
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub factory: FactorySection,
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub llm: LlmSection,
    #[serde(default)]
    pub caps: CapsSection,
    #[serde(default)]
    pub agents: Vec<AgentSection>,
    #[serde(default)]
    pub engine: EngineSection,
    #[serde(default)]
    pub routing: Vec<crate::rules::routing::RouteRule>,
    #[serde(default)]
    pub approvals: ApprovalsSection,
    #[serde(default)]
    pub executors: Vec<ExecutorSection>,
    #[serde(default)]
    pub schedules: Vec<crate::rules::schedule::ScheduleSection>,
    #[serde(default)]
    pub app: AppSection,
    #[serde(default)]
    pub memory: MemorySection,
    #[serde(default)]
    pub serve: ServeSection,
    #[serde(default)]
    pub stripe: StripeSection,
    #[serde(default)]
    pub webhooks: Vec<crate::rules::webhook::WebhookSection>,
    #[serde(default)]
    pub mcp: McpSection,
    #[serde(default)]
    pub sandbox: SandboxSection,
    #[serde(default)]
    pub retention: super::retention::RetentionSection,
    #[serde(default)]
    pub products: Vec<super::products::ProductSection>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SandboxSection {
    /// `bubblewrap` (the default: CLI agents run contained, or not at all) or `off` (allow
    /// unsandboxed agents: they run with REEF's own reach).
    pub mode: Option<String>,
    /// `none` (the default: no network inside) or `host`, for executors that do not say.
    pub network: Option<String>,
    /// Where tasks' working directories live (default: beside the data dir, `<data_dir>-work`).
    pub work_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FactorySection {
    /// IANA name, e.g. `Europe/London`; daily caps roll over at its midnight.
    pub timezone: Option<String>,
    /// Who the operator is, for the audit log.
    pub operator: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    pub mongodb_uri: Option<Secret>,
    pub database: Option<String>,
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LlmSection {
    pub base_url: Option<String>,
    pub api_key: Option<Secret>,
    /// Gateway model name per tier (default: the tier's own name, as litellm-config.yaml names them).
    #[serde(default)]
    pub tiers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CapsSection {
    pub global_daily_usd: Option<f64>,
    #[serde(default)]
    pub provider_monthly_usd: BTreeMap<String, f64>,
    pub task_default_usd: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    pub name: String,
    pub role: String,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub prompt: String,
    pub model_tier: Option<String>,
    pub model: Option<String>,
    pub daily_cap_usd: f64,
    /// The tools it works with; with any, its LLM work runs as REEF's agent loop.
    #[serde(default)]
    pub tools: Vec<String>,
    pub max_concurrent: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    pub lease_seconds: Option<u64>,
    pub stuck_minutes: Option<u64>,
    pub max_attempts: Option<u32>,
    pub max_review_rounds: Option<u32>,
    pub llm_max_tokens: Option<u64>,
    /// Where the LiteLLM config (prices, fallbacks) is; default `litellm-config.yaml` beside the
    /// config file, else the one in the working directory.
    pub litellm_config: Option<PathBuf>,
    /// Tasks one `reef serve` process runs at once.
    pub workers: Option<usize>,
    /// Overall limit on running tasks across every process and machine.
    pub max_running: Option<u32>,
    /// How long a budget reservation outlives a worker that died holding it.
    pub reservation_seconds: Option<u64>,
    /// Hardware sampling interval (default 60).
    pub telemetry_seconds: Option<u64>,
    /// GPU utilisation at which new work skips the local tier (default 90).
    pub busy_gpu_percent: Option<f64>,
    /// Start one tier higher where an agent's work of a type keeps failing on the cheaper tier
    /// (outcome analytics; off by default).
    pub learn_tiers: Option<bool>,
    /// The agent loop's limits per task: steps (default 24), seconds per attempt (900), tokens
    /// (500,000) and the transcript's size before old tool answers are cut (24,000 tokens).
    pub loop_max_steps: Option<u32>,
    pub loop_max_seconds: Option<u64>,
    pub loop_max_tokens: Option<u64>,
    pub loop_window_tokens: Option<u64>,
    /// The programs the loop's `run_command` may start, per action class (`default` for the
    /// rest), e.g. `{ default = ["cargo", "git"], production_deploy = [] }`.
    pub loop_commands: Option<BTreeMap<String, Vec<String>>>,
    /// How long one `run_command` may run at most (default 120 s).
    pub loop_command_seconds: Option<u64>,
    /// Folders `run_command` sees read-only inside its sandbox besides the system's (a toolchain
    /// such as `~/.cargo`); the `bin` folder of each goes on its `PATH`.
    #[serde(default)]
    pub loop_read_only: Vec<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsSection {
    pub expiry_hours: Option<f64>,
    /// `cancel` (default) or `escalate`.
    pub on_expiry: Option<String>,
    /// Action class → auto | notify_after | approve_before | never_auto (added to seed 002's defaults).
    #[serde(default)]
    pub gates: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorSection {
    /// Default: the preset's name.
    pub name: Option<String>,
    /// A known agent CLI (`claude`, `pi`, `codex`, `opencode`, `gemini`, `openclaw`): its
    /// command, resume, tools and environment fill whatever this section leaves out.
    pub preset: Option<String>,
    /// With a preset: the CLI's program (default: found on PATH or where REEF installs it).
    pub program: Option<String>,
    /// Task types this executor runs (e.g. ["build", "qa"]).
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Program and arguments; `{prompt}`, `{prompt_file}` (a file holding it), `{task_id}`,
    /// `{workdir}`, `{budget_usd}`, `{allowed_tools}`, `{disallowed_tools}`, `{mcp_config}` and
    /// `{model}` (the model of the task's tier) are filled in per task.
    #[serde(default)]
    pub command: Vec<String>,
    /// Variables set for the agent (placeholders filled as in `command`); REEF's own keys win.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub timeout_seconds: Option<u64>,
    /// Output kept per attempt (head and tail), default 1 MiB.
    pub output_cap_bytes: Option<usize>,
    /// Soft spend cap handed to the agent (e.g. Claude Code --max-budget-usd) and reserved up front.
    pub soft_cap_usd: Option<f64>,
    /// Environment variables passed through from REEF's own environment (besides PATH, HOME, LANG).
    #[serde(default)]
    pub pass_env: Vec<String>,
    /// Tools the agent may use, per action class (`default` for the rest).
    #[serde(default)]
    pub allowed_tools: BTreeMap<String, Vec<String>>,
    /// Tools the agent must not use, per action class (`default` for the rest).
    #[serde(default)]
    pub disallowed_tools: BTreeMap<String, Vec<String>>,
    /// Appended when a retry can resume the agent's previous session (`{session_id}` is filled
    /// in), e.g. `["--resume", "{session_id}"]` for Claude Code.
    #[serde(default)]
    pub resume_args: Vec<String>,
    /// The action class every task it runs acts as, whatever class the task names (e.g.
    /// `production_deploy` for an executor that deploys); the stricter gate of the two applies.
    /// Default: `production_deploy` when one of its kinds names a deploy (`deploy`, `Deploy-prod`,
    /// …), else none.
    pub action_class: Option<String>,
    /// `none` or `host`; default `[sandbox] network`.
    pub network: Option<String>,
    /// Hand the prompt to the agent on its standard input (else `{prompt}` / `{prompt_file}` in
    /// `command`): a prompt on the command line is limited to 128 KiB.
    pub prompt_on_stdin: Option<bool>,
    /// Paths the agent may read (besides the system's programs and its own command's files).
    #[serde(default)]
    pub read_only: Vec<PathBuf>,
    /// Paths the agent may write (besides its task's working directory and its own home).
    #[serde(default)]
    pub writable: Vec<PathBuf>,
    /// Where a contained agent's network may go through REEF's proxy (`host`, `host:port`,
    /// `*.domain`, `ip:port`); nothing by default. Its LLM calls go through the metered endpoint.
    #[serde(default)]
    pub egress: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MemorySection {
    /// `auto` (MiniLM when its files are present, else hashing), `minilm`, `gateway` or `hashing`.
    pub embedder: Option<String>,
    /// Where the MiniLM files (config.json, tokenizer.json, model.safetensors) are.
    pub model_dir: Option<PathBuf>,
    /// The gateway's model name for embeddings (LiteLLM's `embed` tier).
    pub gateway_model: Option<String>,
    /// What the gateway's model returns (nomic-embed-text: 768).
    pub gateway_dimension: Option<usize>,
    /// How many memories the LLM executor is given with a task (0 turns it off).
    pub recall: Option<usize>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AppSection {
    /// Remote mode: this machine only watches and decides; it runs no engine or telemetry.
    pub remote: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ServeSection {
    /// Where `reef serve` answers HTTP (the Stripe webhook), e.g. "127.0.0.1:8787".
    pub listen: Option<String>,
    /// The address a phone reaches `reef serve` at, for approve / reject links (e.g. a Tailscale
    /// name); default `http://<listen>`.
    pub public_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct StripeSection {
    /// How old a webhook signature may be (Stripe's default: 300).
    pub tolerance_seconds: Option<u64>,
    /// Pull events every this many minutes when REEF_STRIPE_API_KEY is set (0: only on demand).
    pub pull_minutes: Option<u64>,
    /// The Stripe API's address (tests point it at a local stand-in).
    pub api_base: Option<String>,
}

/// `[mcp]`: REEF's MCP server for agents (stdio `reef mcp`, HTTP `/mcp` on serve.listen).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct McpSection {
    /// Long-running clients that act for the operator (e.g. "openclaw"); each one's token is the
    /// secret `REEF_MCP_OPERATOR_<NAME>` (environment or OS keyring).
    #[serde(default)]
    pub operators: Vec<String>,
    /// Most subtasks one task may create (default 20).
    pub max_subtasks: Option<u32>,
    /// Deepest a chain of subtasks may go below its root task (default 3).
    pub max_depth: Option<u32>,
    /// How long an agent may go on working after it asked for an approval or a person before
    /// REEF stops it and parks the task (default 60 s).
    pub park_grace_secs: Option<u64>,
    /// The `reef` binary CLI agents start as their MCP server (default: the one beside this
    /// program, else `reef` on PATH).
    pub command: Option<PathBuf>,
}
