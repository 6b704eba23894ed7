//! Configuration: a TOML file plus environment overrides, validated once at start.
//!
//! Invariant: a bad value is reported with its key and the fix, and secrets (API keys, passwords
//! in connection strings) never leave this module in clear: they are `Secret`s and redacted URIs.

use crate::domain::agent::AgentConfig;
use crate::{ModelTier, Usd};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("config {key}: {problem} (fix: {fix})")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
    pub fix: String,
}

fn bad(key: &str, problem: impl Into<String>, fix: impl Into<String>) -> ConfigError {
    ConfigError { key: key.into(), problem: problem.into(), fix: fix.into() }
}

/// Whether `n` can name a secret: an environment variable REEF owns (`REEF_` then capitals,
/// digits and `_`), which is also its name in the OS keyring.
pub fn is_secret_name(n: &str) -> bool {
    n.starts_with("REEF_") && n.len() > 5 && n.len() <= 96 && n.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// A value that must never be printed. `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The clear value, for the one place that sends it (an HTTP header, a driver).
    pub fn expose(&self) -> &str {
        &self.0
    }
}
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}
impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A connection string with any password replaced by `***`, safe for logs and the UI.
pub fn redact_uri(uri: &str) -> String {
    let Some(scheme_end) = uri.find("://") else { return uri.to_string() };
    let rest = &uri[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else { return uri.to_string() };
    let userinfo = &authority[..at];
    let user = userinfo.split(':').next().unwrap_or("");
    let mut out = String::with_capacity(uri.len());
    out.push_str(&uri[..scheme_end + 3]);
    out.push_str(user);
    out.push_str(":***");
    out.push_str(&rest[at..]);
    // Query parameters can carry secrets too (e.g. a TLS key password).
    redact_query(&out)
}

fn redact_query(uri: &str) -> String {
    let Some(q) = uri.find('?') else { return uri.to_string() };
    let (head, query) = uri.split_at(q + 1);
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.to_ascii_lowercase().contains("password") || k.to_ascii_lowercase().contains("secret") => {
                format!("{k}=***")
            }
            _ => kv.to_string(),
        })
        .collect();
    format!("{head}{}", parts.join("&"))
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
    pub routing: Vec<crate::engine::routing::RouteRule>,
    #[serde(default)]
    pub approvals: ApprovalsSection,
    #[serde(default)]
    pub executors: Vec<ExecutorSection>,
    #[serde(default)]
    pub schedules: Vec<crate::engine::schedule::ScheduleSection>,
    #[serde(default)]
    pub app: AppSection,
    #[serde(default)]
    pub memory: MemorySection,
    #[serde(default)]
    pub serve: ServeSection,
    #[serde(default)]
    pub stripe: StripeSection,
    #[serde(default)]
    pub webhooks: Vec<crate::webhook::WebhookSection>,
    #[serde(default)]
    pub mcp: McpSection,
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

/// Stripe as a revenue source. The secrets come from the environment only, never a file.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    pub webhook_secret: Option<Secret>,
    /// A restricted key with read access to events, for pull mode.
    pub api_key: Option<Secret>,
    pub api_base: String,
    pub tolerance_seconds: u64,
    pub pull_every: Option<std::time::Duration>,
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

/// Which embedder turns text into vectors for memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedderChoice {
    Auto,
    MiniLm,
    Gateway,
    Hashing,
}

#[derive(Debug, Clone)]
pub struct MemoryConfig {
    pub embedder: EmbedderChoice,
    pub model_dir: PathBuf,
    pub gateway_model: String,
    pub gateway_dimension: usize,
    pub recall: usize,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AppSection {
    /// Remote mode: this machine only watches and decides; it runs no engine or telemetry.
    pub remote: Option<bool>,
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
    pub name: String,
    /// Task types this executor runs (e.g. ["build", "qa"]).
    pub kinds: Vec<String>,
    /// Program and arguments; `{prompt}`, `{task_id}`, `{workdir}`, `{budget_usd}`,
    /// `{allowed_tools}` and `{disallowed_tools}` are filled in per task.
    pub command: Vec<String>,
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
}

/// How the engine runs, validated.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub lease: std::time::Duration,
    pub stuck: std::time::Duration,
    pub max_attempts: u32,
    pub max_review_rounds: u32,
    pub llm_max_tokens: u64,
    pub litellm_config: Option<PathBuf>,
    pub workers: usize,
    pub max_running: Option<u32>,
    pub reservation_ttl: std::time::Duration,
    pub telemetry_every: std::time::Duration,
    pub busy_gpu_percent: f64,
    pub learn_tiers: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            lease: std::time::Duration::from_secs(30),
            stuck: std::time::Duration::from_secs(30 * 60),
            max_attempts: 3,
            max_review_rounds: 2,
            llm_max_tokens: 1024,
            litellm_config: None,
            workers: 4,
            max_running: None,
            reservation_ttl: std::time::Duration::from_secs(600),
            telemetry_every: std::time::Duration::from_secs(60),
            busy_gpu_percent: 90.0,
            learn_tiers: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorConfig {
    pub name: String,
    pub kinds: Vec<String>,
    pub command: Vec<String>,
    pub timeout: std::time::Duration,
    pub output_cap_bytes: usize,
    pub soft_cap: Option<Usd>,
    pub pass_env: Vec<String>,
    pub allowed_tools: BTreeMap<String, Vec<String>>,
    pub disallowed_tools: BTreeMap<String, Vec<String>>,
    pub resume_args: Vec<String>,
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
    pub max_concurrent: Option<u32>,
}

/// Which store REEF runs on.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreChoice {
    Embedded { path: PathBuf },
    Mongo { uri: Secret, database: String },
}

/// The validated configuration every REEF process runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub timezone: chrono_tz::Tz,
    pub operator: String,
    pub store: StoreChoice,
    pub data_dir: PathBuf,
    pub llm_base_url: String,
    pub llm_api_key: Option<Secret>,
    /// Gateway model name for each tier.
    pub llm_models: BTreeMap<ModelTier, String>,
    pub global_daily_cap: Usd,
    pub provider_monthly_caps: BTreeMap<String, Usd>,
    pub task_default_cap: Usd,
    pub agents: Vec<AgentConfig>,
    pub engine: EngineConfig,
    pub routing: Vec<crate::engine::routing::RouteRule>,
    pub policy: crate::engine::policy::ApprovalPolicy,
    pub executors: Vec<ExecutorConfig>,
    pub schedules: Vec<crate::engine::schedule::Schedule>,
    /// Watch and decide only (a laptop pointed at the server's MongoDB).
    pub remote: bool,
    pub memory: MemoryConfig,
    /// Where `reef serve` answers HTTP; `None` serves nothing.
    pub listen: Option<std::net::SocketAddr>,
    pub stripe: StripeConfig,
    /// Outbound webhook subscriptions, validated (secrets resolved).
    pub webhooks: Vec<crate::webhook::Subscription>,
    /// Signed approve / reject links: where they point and the key that signs them.
    pub links: Option<LinkConfig>,
    pub mcp: McpConfig,
}

/// The MCP server's limits and its operator clients.
#[derive(Debug, Clone)]
pub struct McpConfig {
    /// (name, token) of each client acting for the operator.
    pub operators: Vec<(String, Secret)>,
    pub max_subtasks: u32,
    pub max_depth: u32,
    pub park_grace: std::time::Duration,
    pub command: Option<PathBuf>,
}

impl Default for McpConfig {
    fn default() -> Self {
        Self { operators: vec![], max_subtasks: 20, max_depth: 3, park_grace: std::time::Duration::from_secs(60), command: None }
    }
}

/// Secrets for talking to the outside (gateway, Stripe, webhooks, phone links, operator clients,
/// products): a task's own `reef mcp` never reads them, and agents are never handed them.
pub fn is_outward_secret(k: &str) -> bool {
    matches!(k, "REEF_LLM_API_KEY" | "REEF_LINK_SECRET")
        || ["REEF_STRIPE_", "REEF_WEBHOOK_", "REEF_MCP_OPERATOR_", "REEF_PRODUCT_", "REEF_SECRET_"].iter().any(|p| k.starts_with(p))
}

/// The secret holding an MCP operator client's token.
pub fn mcp_operator_secret(name: &str) -> String {
    format!("REEF_MCP_OPERATOR_{}", name.to_uppercase().replace(['-', ' ', '.'], "_"))
}

#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub base: String,
    pub secret: Secret,
}

/// Seed 000's four agents and their daily caps.
pub fn default_agents() -> Vec<AgentConfig> {
    let a = |name: &str, role: &str, caps: &[&str], cap: f64, tier: ModelTier, prompt: &str| AgentConfig {
        name: name.into(),
        role: role.into(),
        capabilities: caps.iter().map(|s| s.to_string()).collect(),
        prompt: prompt.into(),
        model_tier: Some(tier),
        model: None,
        daily_cap_usd: Usd::from_dollars(cap),
        max_concurrent: 2,
    };
    vec![
        a(
            "kev",
            "orchestrator",
            &["plan", "triage", "report"],
            30.0,
            ModelTier::Mid,
            "You are Kev, the factory's orchestrator. Break goals into tasks, route them, report.",
        ),
        a(
            "rex",
            "builder",
            &["build", "qa", "deploy"],
            40.0,
            ModelTier::Cheap,
            "You are Rex. You build, test and deploy the factory's products.",
        ),
        a("scout", "research", &["research", "content"], 15.0, ModelTier::Local, "You are Scout. You research markets and write content."),
        a(
            "blaze",
            "marketing",
            &["marketing", "social", "email"],
            10.0,
            ModelTier::Cheap,
            "You are Blaze. You market the factory's products.",
        ),
    ]
}

fn dollars(key: &str, v: f64) -> Result<Usd, ConfigError> {
    if !v.is_finite() || v < 0.0 {
        return Err(bad(key, format!("{v} is not a non-negative amount of dollars"), "write a number like 30 or 12.5"));
    }
    Ok(Usd::from_dollars(v))
}

/// Where REEF keeps its files when nothing else is said.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub data_dir: PathBuf,
    /// The machine's timezone name, if it could be read.
    pub machine_timezone: Option<String>,
    pub host: String,
    /// Where downloaded models live (`~/.cache/reef` on Linux).
    pub cache_dir: PathBuf,
}

impl Config {
    /// Builds the config from the file's text (if any) and the environment (`env(key)`).
    pub fn resolve(file_text: Option<&str>, env: &dyn Fn(&str) -> Option<String>, defaults: &Defaults) -> Result<Config, ConfigError> {
        let file: FileConfig = match file_text {
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
        };

        let tz_name = file.factory.timezone.clone().or_else(|| defaults.machine_timezone.clone()).unwrap_or_else(|| "UTC".into());
        let timezone: chrono_tz::Tz = tz_name.parse().map_err(|_| {
            bad("factory.timezone", format!("{tz_name:?} is not an IANA timezone"), "use a name like \"Europe/London\" or \"UTC\"")
        })?;

        let data_dir = env("REEF_DATA_DIR").map(PathBuf::from).or(file.store.data_dir.clone()).unwrap_or_else(|| defaults.data_dir.clone());
        // Secrets never live in a plain file: the environment or the OS keyring hold them.
        if let Some(u) = &file.store.mongodb_uri {
            if redact_uri(u.expose()) != u.expose() {
                return Err(bad(
                    "store.mongodb_uri",
                    "carries a password (or a secret query parameter) in the config file".to_string(),
                    "keep the URI in REEF_MONGODB_URI or the OS keyring (`reef secret set REEF_MONGODB_URI`, or Settings in the app)",
                ));
            }
        }
        if file.llm.api_key.is_some() {
            return Err(bad(
                "llm.api_key",
                "a key in the config file would sit on disk in clear".to_string(),
                "set REEF_LLM_API_KEY in the environment or the OS keyring (`reef secret set REEF_LLM_API_KEY`, or Settings in the app)",
            ));
        }
        let uri = env("REEF_MONGODB_URI").filter(|s| !s.is_empty()).map(Secret::new).or(file.store.mongodb_uri.clone());
        let store = match uri {
            Some(uri) => {
                let u = uri.expose();
                if !(u.starts_with("mongodb://") || u.starts_with("mongodb+srv://")) {
                    return Err(bad(
                        "REEF_MONGODB_URI / store.mongodb_uri",
                        format!("{:?} is not a MongoDB connection string", redact_uri(u)),
                        "use mongodb://user:pass@host:27017/?replicaSet=rs0 (or unset it for the embedded store)",
                    ));
                }
                let database = file.store.database.clone().unwrap_or_else(|| "factory".into());
                StoreChoice::Mongo { uri, database }
            }
            None => StoreChoice::Embedded { path: data_dir.join("reef.db") },
        };

        let llm_base_url = env("REEF_LLM_BASE_URL").or(file.llm.base_url.clone()).unwrap_or_else(|| "http://127.0.0.1:4000".into());
        if !(llm_base_url.starts_with("http://") || llm_base_url.starts_with("https://")) {
            return Err(bad(
                "REEF_LLM_BASE_URL / llm.base_url",
                format!("{llm_base_url:?} is not an http(s) URL"),
                "use e.g. http://127.0.0.1:4000",
            ));
        }
        let llm_api_key = env("REEF_LLM_API_KEY").map(Secret::new).or(file.llm.api_key.clone());
        let mut llm_models: BTreeMap<ModelTier, String> = ModelTier::ALL.iter().map(|t| (*t, t.as_str().to_string())).collect();
        for (tier, model) in &file.llm.tiers {
            let t =
                tier.parse::<ModelTier>().map_err(|e| bad(&format!("llm.tiers.{tier}"), e, "use local, cheap, mid or frontier as keys"))?;
            llm_models.insert(t, model.clone());
        }

        let global_daily_cap = dollars("caps.global_daily_usd", file.caps.global_daily_usd.unwrap_or(100.0))?;
        let task_default_cap = dollars("caps.task_default_usd", file.caps.task_default_usd.unwrap_or(5.0))?;
        let mut provider_monthly_caps = BTreeMap::new();
        for (p, v) in &file.caps.provider_monthly_usd {
            provider_monthly_caps.insert(p.clone(), dollars(&format!("caps.provider_monthly_usd.{p}"), *v)?);
        }

        let agents = if file.agents.is_empty() {
            default_agents()
        } else {
            let mut seen = std::collections::BTreeSet::new();
            let mut out = vec![];
            for (i, a) in file.agents.iter().enumerate() {
                let key = format!("agents[{i}]");
                if a.name.trim().is_empty() || !a.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                    return Err(bad(
                        &format!("{key}.name"),
                        format!("{:?} is not a usable agent name", a.name),
                        "use letters, digits, - and _",
                    ));
                }
                if !seen.insert(a.name.clone()) {
                    return Err(bad(&format!("{key}.name"), format!("agent {:?} is defined twice", a.name), "remove one of them"));
                }
                let model_tier = match &a.model_tier {
                    Some(t) => Some(
                        t.parse::<ModelTier>().map_err(|e| bad(&format!("{key}.model_tier"), e, "use local, cheap, mid or frontier"))?,
                    ),
                    None => None,
                };
                out.push(AgentConfig {
                    name: a.name.clone(),
                    role: a.role.clone(),
                    capabilities: a.capabilities.clone(),
                    prompt: a.prompt.clone(),
                    model_tier,
                    model: a.model.clone(),
                    daily_cap_usd: dollars(&format!("{key}.daily_cap_usd"), a.daily_cap_usd)?,
                    max_concurrent: a.max_concurrent.unwrap_or(1).max(1),
                });
            }
            out
        };

        let e = &file.engine;
        let d = EngineConfig::default();
        let positive = |key: &str, v: Option<u64>, dflt: u64| -> Result<u64, ConfigError> {
            match v {
                Some(0) => Err(bad(key, "must be greater than 0", "remove it for the default or give a positive number")),
                Some(v) => Ok(v),
                None => Ok(dflt),
            }
        };
        let engine = EngineConfig {
            lease: std::time::Duration::from_secs(positive("engine.lease_seconds", e.lease_seconds, d.lease.as_secs())?),
            stuck: std::time::Duration::from_secs(60 * positive("engine.stuck_minutes", e.stuck_minutes, d.stuck.as_secs() / 60)?),
            max_attempts: positive("engine.max_attempts", e.max_attempts.map(u64::from), d.max_attempts as u64)? as u32,
            max_review_rounds: e.max_review_rounds.unwrap_or(d.max_review_rounds),
            llm_max_tokens: positive("engine.llm_max_tokens", e.llm_max_tokens, d.llm_max_tokens)?,
            litellm_config: e.litellm_config.clone(),
            workers: positive("engine.workers", e.workers.map(|w| w as u64), d.workers as u64)? as usize,
            max_running: e.max_running,
            reservation_ttl: std::time::Duration::from_secs(positive(
                "engine.reservation_seconds",
                e.reservation_seconds,
                d.reservation_ttl.as_secs(),
            )?),
            telemetry_every: std::time::Duration::from_secs(positive(
                "engine.telemetry_seconds",
                e.telemetry_seconds,
                d.telemetry_every.as_secs(),
            )?),
            busy_gpu_percent: match e.busy_gpu_percent {
                Some(p) if !(p.is_finite() && (0.0..=100.0).contains(&p)) => {
                    return Err(bad("engine.busy_gpu_percent", format!("{p} is not a percentage"), "use a number from 0 to 100"))
                }
                Some(p) => p,
                None => d.busy_gpu_percent,
            },
            learn_tiers: e.learn_tiers.unwrap_or(false),
        };
        for (i, r) in file.routing.iter().enumerate() {
            if let Some(a) = &r.agent {
                if !agents.iter().any(|x: &AgentConfig| &x.name == a) {
                    return Err(bad(
                        &format!("routing[{i}].agent"),
                        format!("{a:?} is not a configured agent"),
                        "name one of the [[agents]]",
                    ));
                }
            }
        }
        let mut policy = crate::engine::policy::ApprovalPolicy::default();
        for (class, g) in &file.approvals.gates {
            let gate: crate::engine::policy::Gate = g
                .parse()
                .map_err(|e: String| bad(&format!("approvals.gates.{class}"), e, "use auto, notify_after, approve_before or never_auto"))?;
            policy.gates.insert(class.clone(), gate);
        }
        if let Some(h) = file.approvals.expiry_hours {
            if !(h.is_finite() && h > 0.0) {
                return Err(bad("approvals.expiry_hours", format!("{h} is not a positive number of hours"), "e.g. 24"));
            }
            policy.expiry = std::time::Duration::from_secs_f64(h * 3600.0);
        }
        policy.on_expiry = match file.approvals.on_expiry.as_deref() {
            None | Some("cancel") => crate::engine::policy::OnExpiry::Cancel,
            Some("escalate") => crate::engine::policy::OnExpiry::Escalate,
            Some(o) => return Err(bad("approvals.on_expiry", format!("{o:?} is not cancel or escalate"), "use cancel or escalate")),
        };
        let mut executors = vec![];
        for (i, x) in file.executors.iter().enumerate() {
            let key = format!("executors[{i}]");
            if x.command.is_empty() || x.command[0].trim().is_empty() {
                return Err(bad(
                    &format!("{key}.command"),
                    "is empty",
                    "give the program and its arguments, e.g. [\"claude\", \"-p\", \"{prompt}\"]",
                ));
            }
            if x.kinds.is_empty() {
                return Err(bad(&format!("{key}.kinds"), "is empty", "list the task types it runs, e.g. [\"build\"]"));
            }
            if executors.iter().any(|e: &ExecutorConfig| e.name == x.name) {
                return Err(bad(&format!("{key}.name"), format!("executor {:?} is defined twice", x.name), "remove one"));
            }
            executors.push(ExecutorConfig {
                name: x.name.clone(),
                kinds: x.kinds.clone(),
                command: x.command.clone(),
                timeout: std::time::Duration::from_secs(positive(&format!("{key}.timeout_seconds"), x.timeout_seconds, 1800)?),
                output_cap_bytes: x.output_cap_bytes.unwrap_or(1024 * 1024).max(1024),
                soft_cap: x.soft_cap_usd.map(|v| dollars(&format!("{key}.soft_cap_usd"), v)).transpose()?,
                pass_env: x.pass_env.clone(),
                allowed_tools: x.allowed_tools.clone(),
                disallowed_tools: x.disallowed_tools.clone(),
                resume_args: x.resume_args.clone(),
            });
        }

        let mut schedules = vec![];
        for (i, sc) in file.schedules.iter().enumerate() {
            let key = format!("schedules[{i}]");
            let parsed = crate::engine::schedule::Schedule::parse(sc)
                .map_err(|e| bad(&key, e, "use five-field cron like \"0 7 * * *\" and overlap = \"skip\" or \"allow\""))?;
            if schedules.iter().any(|x: &crate::engine::schedule::Schedule| x.section.name == sc.name) {
                return Err(bad(&format!("{key}.name"), format!("schedule {:?} is defined twice", sc.name), "give each a distinct name"));
            }
            if let Some(a) = &sc.agent {
                if !agents.iter().any(|x| &x.name == a) {
                    return Err(bad(&format!("{key}.agent"), format!("{a:?} is not a configured agent"), "name one of the [[agents]]"));
                }
            }
            schedules.push(parsed);
        }

        let remote = match env("REEF_REMOTE").as_deref() {
            Some("1" | "true" | "yes") => true,
            Some("0" | "false" | "no") => false,
            Some(o) => return Err(bad("REEF_REMOTE", format!("{o:?} is not true or false"), "use REEF_REMOTE=1 or unset it")),
            None => file.app.remote.unwrap_or(false),
        };
        if remote && matches!(store, StoreChoice::Embedded { .. }) {
            return Err(bad(
                "app.remote / REEF_REMOTE",
                "remote mode needs a MongoDB store: the embedded store lives on this machine, so there is no remote factory to watch",
                "set REEF_MONGODB_URI to the server's MongoDB, or turn remote mode off",
            ));
        }
        let m = &file.memory;
        let embedder_name = env("REEF_EMBEDDER").filter(|s| !s.is_empty()).or(m.embedder.clone()).unwrap_or_else(|| "auto".into());
        let embedder = match embedder_name.as_str() {
            "auto" => EmbedderChoice::Auto,
            "minilm" => EmbedderChoice::MiniLm,
            "gateway" => EmbedderChoice::Gateway,
            "hashing" => EmbedderChoice::Hashing,
            o => {
                return Err(bad(
                    "REEF_EMBEDDER / memory.embedder",
                    format!("{o:?} is not an embedder"),
                    "use auto, minilm, gateway or hashing",
                ))
            }
        };
        let gateway_dimension = match m.gateway_dimension {
            Some(0) => return Err(bad("memory.gateway_dimension", "must be greater than 0", "nomic-embed-text returns 768")),
            Some(d) if d > 8192 => {
                return Err(bad("memory.gateway_dimension", format!("{d} dimensions is more than REEF indexes (8192)"), "check the model"))
            }
            Some(d) => d,
            None => 768,
        };
        let listen = match env("REEF_LISTEN").filter(|s| !s.is_empty()).or(file.serve.listen.clone()) {
            None => None,
            Some(a) => Some(
                a.parse::<std::net::SocketAddr>()
                    .map_err(|_| bad("REEF_LISTEN / serve.listen", format!("{a:?} is not an address:port"), "use e.g. 127.0.0.1:8787"))?,
            ),
        };
        let st = &file.stripe;
        let api_base = st.api_base.clone().unwrap_or_else(|| "https://api.stripe.com".into());
        if !(api_base.starts_with("https://") || api_base.starts_with("http://127.0.0.1") || api_base.starts_with("http://localhost")) {
            return Err(bad("stripe.api_base", format!("{api_base:?} is not an https URL"), "leave it out for https://api.stripe.com"));
        }
        // A `reef mcp` started for one task's agent (it holds a task token) serves that task's
        // tools only: it never needs, and is never given, the outward secrets (webhooks, links,
        // Stripe, operator tokens).
        let task_server = env("REEF_MCP_TOKEN").is_some_and(|t| t.starts_with(crate::toolbox::TOKEN_PREFIX));
        let env = &|k: &str| if task_server && is_outward_secret(k) { None } else { env(k) };
        let webhook_secret = env("REEF_STRIPE_WEBHOOK_SECRET").filter(|s| !s.is_empty()).map(Secret::new);
        if let Some(w) = &webhook_secret {
            if !w.expose().starts_with("whsec_") {
                return Err(bad(
                    "REEF_STRIPE_WEBHOOK_SECRET",
                    "is not a webhook signing secret (those start with whsec_)",
                    "copy the endpoint's signing secret from the Stripe dashboard or `stripe listen`",
                ));
            }
        }
        let stripe = StripeConfig {
            webhook_secret,
            api_key: env("REEF_STRIPE_API_KEY").filter(|s| !s.is_empty()).map(Secret::new),
            api_base,
            tolerance_seconds: st.tolerance_seconds.unwrap_or(300),
            pull_every: match st.pull_minutes.unwrap_or(15) {
                0 => None,
                m => Some(std::time::Duration::from_secs(m * 60)),
            },
        };
        let memory = MemoryConfig {
            embedder,
            model_dir: env("REEF_EMBED_MODEL_DIR")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .or(m.model_dir.clone())
                .unwrap_or_else(|| defaults.cache_dir.join("models").join("all-minilm-l6-v2")),
            gateway_model: m.gateway_model.clone().unwrap_or_else(|| "embed".into()),
            gateway_dimension,
            recall: m.recall.unwrap_or(5).min(50),
        };

        let operator = file.factory.operator.clone().or_else(|| env("USER")).unwrap_or_else(|| "operator".into());
        let no_webhooks = vec![];
        let webhooks =
            crate::webhook::resolve(if task_server { &no_webhooks } else { &file.webhooks }, env).map_err(|(k, w, fix)| bad(&k, w, fix))?;
        let link_secret = env("REEF_LINK_SECRET").filter(|s| !s.is_empty());
        let links = match (listen, link_secret) {
            (Some(addr), Some(secret)) => {
                if secret.len() < 16 {
                    return Err(bad(
                        "REEF_LINK_SECRET",
                        "is shorter than 16 characters".to_string(),
                        "use a long random value (openssl rand -hex 32)",
                    ));
                }
                let base = file.serve.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
                // Plain http is allowed here (a tailnet name is already encrypted end to end).
                if !reqwest::Url::parse(&base).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some()) {
                    return Err(bad("serve.public_url", format!("{base:?} is not an http(s) URL"), "e.g. https://reef.example.ts.net"));
                }
                Some(LinkConfig { base, secret: Secret::new(secret) })
            }
            _ => None,
        };
        if let Some(i) = webhooks.iter().position(|w| w.approve_links) {
            if links.is_none() {
                return Err(bad(
                    &format!("webhooks[{i}].approve_links"),
                    "needs reef serve listening (serve.listen / REEF_LISTEN) and REEF_LINK_SECRET".to_string(),
                    "set both, or turn approve_links off",
                ));
            }
        }
        let mut mcp_operators = vec![];
        let operators = if task_server { &[][..] } else { &file.mcp.operators[..] };
        for (i, name) in operators.iter().enumerate() {
            if name.is_empty() || name.len() > 40 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(bad(&format!("mcp.operators[{i}]"), format!("{name:?} is not a client name"), "use letters, digits, - and _"));
            }
            let key = mcp_operator_secret(name);
            match env(&key).filter(|s| !s.is_empty()) {
                Some(t) if t.len() >= 24 => mcp_operators.push((name.clone(), Secret::new(t))),
                Some(_) => return Err(bad(&key, "is shorter than 24 characters", "use a long random value (openssl rand -hex 32)")),
                None => {
                    return Err(bad(
                        &format!("mcp.operators[{i}]"),
                        format!("{name:?} has no token: {key} is not set"),
                        format!("set {key} in the environment or the OS keyring (`reef secret set {key}`)"),
                    ))
                }
            }
        }
        let mcp = McpConfig {
            operators: mcp_operators,
            max_subtasks: file.mcp.max_subtasks.unwrap_or(20).min(1000),
            max_depth: file.mcp.max_depth.unwrap_or(3).min(20),
            park_grace: std::time::Duration::from_secs(file.mcp.park_grace_secs.unwrap_or(60)),
            command: file.mcp.command.clone(),
        };
        Ok(Config {
            mcp,
            timezone,
            operator: format!("{operator}@{}", defaults.host),
            store,
            data_dir,
            llm_base_url,
            llm_api_key,
            llm_models,
            global_daily_cap,
            provider_monthly_caps,
            task_default_cap,
            agents,
            engine,
            routing: file.routing.clone(),
            policy,
            executors,
            schedules,
            remote,
            memory,
            listen,
            stripe,
            webhooks,
            links,
        })
    }

    /// A TOML rendering with every secret removed, for `reef config export`.
    pub fn export_redacted(&self) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            factory: BTreeMap<&'a str, String>,
            store: BTreeMap<&'a str, String>,
            llm: BTreeMap<&'a str, String>,
            caps: OutCaps,
            agents: Vec<OutAgent<'a>>,
        }
        #[derive(Serialize)]
        struct OutCaps {
            global_daily_usd: f64,
            task_default_usd: f64,
            provider_monthly_usd: BTreeMap<String, f64>,
        }
        #[derive(Serialize)]
        struct OutAgent<'a> {
            name: &'a str,
            role: &'a str,
            capabilities: &'a [String],
            prompt: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            model_tier: Option<&'static str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            model: Option<&'a str>,
            daily_cap_usd: f64,
            max_concurrent: u32,
        }
        let mut store = BTreeMap::new();
        match &self.store {
            StoreChoice::Embedded { .. } => {
                store.insert("data_dir", self.data_dir.display().to_string());
            }
            StoreChoice::Mongo { uri, database } => {
                store.insert("mongodb_uri", redact_uri(uri.expose()));
                store.insert("database", database.clone());
            }
        }
        let mut llm = BTreeMap::new();
        llm.insert("base_url", self.llm_base_url.clone());
        let out = Out {
            factory: BTreeMap::from([("timezone", self.timezone.name().to_string())]),
            store,
            llm,
            caps: OutCaps {
                global_daily_usd: self.global_daily_cap.dollars(),
                task_default_usd: self.task_default_cap.dollars(),
                provider_monthly_usd: self.provider_monthly_caps.iter().map(|(k, v)| (k.clone(), v.dollars())).collect(),
            },
            agents: self
                .agents
                .iter()
                .map(|a| OutAgent {
                    name: &a.name,
                    role: &a.role,
                    capabilities: &a.capabilities,
                    prompt: &a.prompt,
                    model_tier: a.model_tier.map(|t| t.as_str()),
                    model: a.model.as_deref(),
                    daily_cap_usd: a.daily_cap_usd.dollars(),
                    max_concurrent: a.max_concurrent,
                })
                .collect(),
        };
        let mut s = String::from("# REEF configuration (secrets removed: set REEF_MONGODB_URI / REEF_LLM_API_KEY in the environment)\n");
        s.push_str(&toml::to_string_pretty(&out).unwrap_or_default());
        s
    }

    pub fn agent(&self, name: &str) -> Option<&AgentConfig> {
        self.agents.iter().find(|a| a.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            data_dir: "/tmp/reef-test".into(),
            machine_timezone: Some("UTC".into()),
            host: "box".into(),
            cache_dir: "/tmp/reef-cache".into(),
        }
    }
    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn empty_config_gives_seed_caps_and_embedded_store() {
        let c = Config::resolve(None, &no_env, &defaults()).unwrap();
        assert_eq!(c.global_daily_cap, Usd::from_dollars(100.0));
        let caps: Vec<_> = c.agents.iter().map(|a| (a.name.as_str(), a.daily_cap_usd.dollars())).collect();
        assert_eq!(caps, vec![("kev", 30.0), ("rex", 40.0), ("scout", 15.0), ("blaze", 10.0)]);
        assert_eq!(c.store, StoreChoice::Embedded { path: "/tmp/reef-test/reef.db".into() });
    }

    #[test]
    fn env_uri_selects_mongo_and_never_prints_the_password() {
        let env = |k: &str| (k == "REEF_MONGODB_URI").then(|| "mongodb://adam:hunter2@dreamteam:27017/?replicaSet=rs0".to_string());
        let c = Config::resolve(None, &env, &defaults()).unwrap();
        let StoreChoice::Mongo { uri, database } = &c.store else { panic!("expected mongo, got {:?}", c.store) };
        assert_eq!(database, "factory");
        assert!(!format!("{c:?}").contains("hunter2"), "Debug must not show the password");
        assert!(!c.export_redacted().contains("hunter2"), "export must not show the password");
        assert_eq!(redact_uri(uri.expose()), "mongodb://adam:***@dreamteam:27017/?replicaSet=rs0");
    }

    #[test]
    fn secrets_in_the_config_file_are_refused_with_where_to_put_them() {
        let e = Config::resolve(Some("[llm]\napi_key = \"sk-live-123\""), &no_env, &defaults()).unwrap_err().to_string();
        assert!(e.contains("llm.api_key") && e.contains("keyring") && !e.contains("sk-live-123"), "{e}");
        let e = Config::resolve(Some("[store]\nmongodb_uri = \"mongodb://u:pw9@h:27017/\""), &no_env, &defaults()).unwrap_err().to_string();
        assert!(e.contains("store.mongodb_uri") && e.contains("password") && !e.contains("pw9"), "{e}");
        let c =
            Config::resolve(Some("[store]\nmongodb_uri = \"mongodb://dreamteam:27017/?replicaSet=rs0\""), &no_env, &defaults()).unwrap();
        assert!(matches!(c.store, StoreChoice::Mongo { .. }), "a URI without a password may stay in the file");
    }

    #[test]
    fn redaction_covers_query_secrets_and_leaves_plain_uris_alone() {
        assert_eq!(redact_uri("mongodb://h:27017/factory"), "mongodb://h:27017/factory");
        assert_eq!(
            redact_uri("mongodb://u:p@h/?tlsCertificateKeyFilePassword=zz&w=1"),
            "mongodb://u:***@h/?tlsCertificateKeyFilePassword=***&w=1"
        );
    }

    #[test]
    fn bad_values_name_the_key_and_the_fix() {
        let e = Config::resolve(Some("[factory]\ntimezone = \"Mars/Olympus\""), &no_env, &defaults()).unwrap_err();
        assert_eq!(e.key, "factory.timezone");
        let e = Config::resolve(Some("[caps]\nglobal_daily_usd = -5"), &no_env, &defaults()).unwrap_err();
        assert_eq!(e.key, "caps.global_daily_usd");
        let e = Config::resolve(Some("[store]\nmongo_uri = \"x\""), &no_env, &defaults()).unwrap_err();
        assert!(e.problem.contains("mongo_uri"), "names the unknown key: {e}");
        let e = Config::resolve(Some("[caps]\nglobal_daily_usd = \"lots\""), &no_env, &defaults()).unwrap_err();
        assert_eq!(e.key, "caps.global_daily_usd", "a wrong type names its key: {e}");
        let env = |k: &str| (k == "REEF_MONGODB_URI").then(|| "postgres://u:secretpw@h".to_string());
        let e = Config::resolve(None, &env, &defaults()).unwrap_err();
        assert!(!e.to_string().contains("secretpw"), "{e}");
        let e = Config::resolve(Some("[approvals.gates]\nproduction_deploy = \"maybe\""), &no_env, &defaults()).unwrap_err();
        assert_eq!(e.key, "approvals.gates.production_deploy");
        let e = Config::resolve(Some("[[executors]]\nname = \"x\"\nkinds = [\"build\"]\ncommand = []"), &no_env, &defaults()).unwrap_err();
        assert_eq!(e.key, "executors[0].command");
        let e = Config::resolve(Some("[[routing]]\nkind = \"x\"\nagent = \"nobody\""), &no_env, &defaults()).unwrap_err();
        assert_eq!(e.key, "routing[0].agent");
        let e = Config::resolve(Some("[app]\nremote = true"), &no_env, &defaults()).unwrap_err();
        assert_eq!(e.key, "app.remote / REEF_REMOTE", "remote mode with the embedded store is refused: {e}");
        assert!(e.problem.contains("embedded store lives on this machine"));
        let e = Config::resolve(Some("[engine]\nlease_seconds = 0"), &no_env, &defaults()).unwrap_err();
        assert_eq!(e.key, "engine.lease_seconds");
        let e = Config::resolve(Some("[[agents]]\nname=\"a\"\nrole=\"r\"\ndaily_cap_usd=1\nmodel_tier=\"huge\""), &no_env, &defaults())
            .unwrap_err();
        assert_eq!(e.key, "agents[0].model_tier");
    }
}
