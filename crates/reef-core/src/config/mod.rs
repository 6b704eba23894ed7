//! Configuration: a TOML file plus environment overrides, validated once at start. One module
//! per part of the file: `file` (the TOML shape), `store` (store, gateway, remote mode), `team`
//! (caps, agents, routing, gates, executors, schedules), `engine`, `memory`, `outward` (HTTP,
//! Stripe, links, webhooks, MCP clients — the secrets that talk to the outside), `export`.
//!
//! Invariant: a bad value is reported with its key and the fix, and secrets (API keys, passwords
//! in connection strings) never leave this module in clear: they are `Secret`s and redacted URIs.

use crate::domain::agent::AgentConfig;
use crate::secret::{is_outward_secret, Secret};
use crate::{ModelTier, Usd};
use std::collections::BTreeMap;
use std::path::PathBuf;

mod engine;
mod export;
mod file;
mod memory;
mod outward;
pub mod presets;
pub mod products;
mod retention;
mod sandbox;
mod store;
mod team;
#[cfg(test)]
mod tests;

pub use engine::{EngineConfig, ExecutorConfig};
pub use file::*;
pub use memory::{EmbedderChoice, MemoryConfig};
pub use outward::{LinkConfig, McpConfig, StripeConfig};
pub use products::{Check, Forge, Pipeline};
pub use retention::RetentionConfig;
pub use sandbox::{default_work_dir, Network, SandboxConfig, SandboxMode};

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("config {key}: {problem} (fix: {fix})")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
    pub fix: String,
}

pub(crate) fn bad(key: &str, problem: impl Into<String>, fix: impl Into<String>) -> ConfigError {
    ConfigError { key: key.into(), problem: problem.into(), fix: fix.into() }
}

fn dollars(key: &str, v: f64) -> Result<Usd, ConfigError> {
    if !v.is_finite() || v < 0.0 {
        return Err(bad(key, format!("{v} is not a non-negative amount of dollars"), "write a number like 30 or 12.5"));
    }
    Ok(Usd::from_dollars(v))
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
    pub routing: Vec<crate::rules::routing::RouteRule>,
    pub policy: crate::rules::policy::ApprovalPolicy,
    pub executors: Vec<ExecutorConfig>,
    /// How CLI agents are contained.
    pub sandbox: SandboxConfig,
    /// How long the feed, agents' output, telemetry and finished tasks' directories are kept.
    pub retention: RetentionConfig,
    pub schedules: Vec<crate::rules::schedule::Schedule>,
    /// Watch and decide only (a laptop pointed at the server's MongoDB).
    pub remote: bool,
    pub memory: MemoryConfig,
    /// Where `reef serve` answers HTTP; `None` serves nothing.
    pub listen: Option<std::net::SocketAddr>,
    /// `serve.public_url`: how `reef serve` is reached from outside.
    pub public_url: Option<String>,
    pub stripe: StripeConfig,
    /// Outbound webhook subscriptions, validated (secrets resolved).
    pub webhooks: Vec<crate::rules::webhook::Subscription>,
    /// Signed approve / reject links: where they point and the key that signs them.
    pub links: Option<LinkConfig>,
    pub mcp: McpConfig,
    /// Product secrets the operator keeps in the OS keyring (`reef secret set --product`), by
    /// environment name (`REEF_PRODUCT_<PRODUCT>_<NAME>`): the host adds them once the store,
    /// which lists their names, is open. They reach that product's agents and are redacted.
    pub product_secrets: Vec<(String, Secret)>,
    /// Products' delivery pipelines (`[[products]]`).
    pub pipelines: Vec<Pipeline>,
    /// `REEF_GITHUB_TOKEN`: opens and reads pull requests for products whose forge is GitHub.
    pub forge_token: Option<Secret>,
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
        let file = file::parse(file_text)?;
        let tz_name = file.factory.timezone.clone().or_else(|| defaults.machine_timezone.clone()).unwrap_or_else(|| "UTC".into());
        let timezone: chrono_tz::Tz = tz_name.parse().map_err(|_| {
            bad("factory.timezone", format!("{tz_name:?} is not an IANA timezone"), "use a name like \"Europe/London\" or \"UTC\"")
        })?;

        let (data_dir, store) = store::store(&file, env, defaults)?;
        let store::Gateway { base_url: llm_base_url, api_key: llm_api_key, models: llm_models } = store::llm(&file, env)?;
        let remote = store::remote(&file, env, &store)?;
        let (global_daily_cap, task_default_cap, provider_monthly_caps) = team::caps(&file)?;
        let agents = team::agents(&file)?;
        team::check_routing(&file, &agents)?;
        let policy = team::policy(&file)?;
        let engine = engine::engine(&file)?;
        // A preset's program: on PATH, else where REEF's scripts install agent CLIs.
        let locate = |p: &presets::Preset| p.locate(env("PATH").as_deref(), &defaults.cache_dir);
        let executors = engine::executors(&file, &locate)?;
        let sandbox = sandbox::sandbox(&file, env, &data_dir)?;
        let retention = retention::retention(&file)?;
        let pipelines = products::pipelines(&file)?;
        let schedules = team::schedules(&file, &agents)?;
        let memory = memory::memory(&file, env, defaults)?;
        let listen = outward::listen(&file, env)?;
        let public_url = outward::public_url(&file)?;
        // A `reef mcp` started for one task's agent (it holds a task token) serves that task's
        // tools only: it never needs, and is never given, the outward secrets (webhooks, links,
        // Stripe, operator tokens).
        let task_server = env("REEF_MCP_TOKEN").is_some_and(|t| t.starts_with(crate::secret::TASK_TOKEN_PREFIX));
        let env = &|k: &str| if task_server && is_outward_secret(k) { None } else { env(k) };
        let stripe = outward::stripe(&file, env)?;
        let operator = file.factory.operator.clone().or_else(|| env("USER")).unwrap_or_else(|| "operator".into());
        let webhooks = outward::webhooks(&file, env, task_server)?;
        let links = outward::links(&file, env, listen, &webhooks)?;
        let mcp = outward::mcp(&file, env, task_server)?;
        let forge_token = env("REEF_GITHUB_TOKEN").filter(|t| !t.trim().is_empty()).map(Secret::new);
        Ok(Config {
            forge_token,
            mcp,
            product_secrets: vec![],
            pipelines,
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
            sandbox,
            retention,
            schedules,
            remote,
            memory,
            listen,
            public_url,
            stripe,
            webhooks,
            links,
        })
    }

    /// The delivery pipeline of `product`, if it has one.
    pub fn pipeline(&self, product: Option<&str>) -> Option<&Pipeline> {
        let p = product?;
        self.pipelines.iter().find(|x| x.product == p)
    }

    pub fn agent(&self, name: &str) -> Option<&AgentConfig> {
        self.agents.iter().find(|a| a.name == name)
    }
}
