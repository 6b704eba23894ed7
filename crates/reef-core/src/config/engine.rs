//! How the engine runs (leases, attempts, workers, token limits, telemetry) and the CLI-agent
//! executors, validated.

use super::presets::Preset;
use super::{bad, dollars, ConfigError, FileConfig};
use crate::Usd;
use std::collections::BTreeMap;
use std::path::PathBuf;

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
    pub agent_loop: LoopLimits,
}

/// The agent loop's limits per task (`[engine] loop_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoopLimits {
    /// Steps (model calls) over all attempts of a task.
    pub max_steps: u32,
    /// Time one attempt may loop.
    pub max_time: std::time::Duration,
    /// Tokens (prompt and completion) over all attempts.
    pub max_tokens: u64,
    /// The transcript's size (estimated tokens) past which its oldest long tool answers are cut.
    pub window_tokens: u64,
    /// Programs `run_command` may start, per action class; `default` for classes not listed.
    pub commands: BTreeMap<String, Vec<String>>,
    /// The longest one `run_command` may run.
    pub command_time: std::time::Duration,
    /// Folders a contained `run_command` sees read-only (their `bin` on its `PATH`).
    pub read_only: Vec<PathBuf>,
}

/// What `run_command` may start when `[engine] loop_commands` says nothing: tools to read, build
/// and test a project. The sandbox, not this list, is what contains them (git, make and npm can
/// start other programs); the list says what an agent is meant to run.
pub const DEFAULT_LOOP_COMMANDS: [&str; 18] = [
    "ls", "cat", "head", "tail", "wc", "grep", "find", "sort", "diff", "git", "python3", "pytest", "node", "npm", "cargo", "make", "go",
    "echo",
];

impl Default for LoopLimits {
    fn default() -> Self {
        Self {
            max_steps: 24,
            max_time: std::time::Duration::from_secs(900),
            max_tokens: 500_000,
            window_tokens: 24_000,
            commands: BTreeMap::from([("default".to_string(), DEFAULT_LOOP_COMMANDS.iter().map(|c| c.to_string()).collect())]),
            command_time: std::time::Duration::from_secs(120),
            read_only: vec![],
        }
    }
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
            agent_loop: LoopLimits::default(),
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
    /// `None`: the factory's `[sandbox] network`.
    pub network: Option<super::sandbox::Network>,
    pub read_only: Vec<PathBuf>,
    pub writable: Vec<PathBuf>,
    pub prompt_on_stdin: bool,
    /// Where its contained agents' network may go through REEF's proxy.
    pub egress: Vec<crate::rules::egress::EgressRule>,
    /// The agent CLI preset it was built from, if any.
    pub preset: Option<String>,
    /// The action class its tasks act as (see [`crate::rules::policy::governing`]).
    pub action_class: Option<String>,
    /// Variables set for the agent (placeholders filled per task).
    pub env: Vec<(String, String)>,
}

/// A positive number, or the default when it is left out.
fn positive(key: &str, v: Option<u64>, dflt: u64) -> Result<u64, ConfigError> {
    match v {
        Some(0) => Err(bad(key, "must be greater than 0", "remove it for the default or give a positive number")),
        Some(v) => Ok(v),
        None => Ok(dflt),
    }
}

pub fn engine(file: &FileConfig) -> Result<EngineConfig, ConfigError> {
    let e = &file.engine;
    let d = EngineConfig::default();
    Ok(EngineConfig {
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
        agent_loop: LoopLimits {
            max_steps: match positive("engine.loop_max_steps", e.loop_max_steps.map(u64::from), d.agent_loop.max_steps as u64)? {
                n if n > 2_000 => {
                    return Err(bad("engine.loop_max_steps", format!("{n} steps is more than a task's trace keeps"), "use at most 2000"))
                }
                n => n as u32,
            },
            max_time: std::time::Duration::from_secs(positive(
                "engine.loop_max_seconds",
                e.loop_max_seconds,
                d.agent_loop.max_time.as_secs(),
            )?),
            max_tokens: positive("engine.loop_max_tokens", e.loop_max_tokens, d.agent_loop.max_tokens)?,
            window_tokens: positive("engine.loop_window_tokens", e.loop_window_tokens, d.agent_loop.window_tokens)?,
            commands: loop_commands(e.loop_commands.as_ref(), &d.agent_loop.commands)?,
            command_time: std::time::Duration::from_secs(
                match positive("engine.loop_command_seconds", e.loop_command_seconds, d.agent_loop.command_time.as_secs())? {
                    n if n > 3_600 => {
                        return Err(bad("engine.loop_command_seconds", format!("{n} s"), "use at most 3600 (an hour) for one command"))
                    }
                    n => n,
                },
            ),
            read_only: match e.loop_read_only.iter().find(|p| !p.is_absolute()) {
                Some(p) => {
                    return Err(bad("engine.loop_read_only", format!("{} is not an absolute path", p.display()), "list absolute folders"))
                }
                None => e.loop_read_only.clone(),
            },
        },
    })
}

/// `[engine] loop_commands`: bare program names (a path would run whatever the agent wrote there).
fn loop_commands(
    v: Option<&BTreeMap<String, Vec<String>>>,
    d: &BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, Vec<String>>, ConfigError> {
    let Some(v) = v else { return Ok(d.clone()) };
    for (class, programs) in v {
        for p in programs {
            if p.is_empty() || p.contains('/') || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(bad(
                    &format!("engine.loop_commands.{class}"),
                    format!("{p:?} is not a program name"),
                    "list bare program names found on PATH, like \"cargo\" (no paths, no arguments)",
                ));
            }
        }
    }
    let mut out = v.clone();
    // A class the operator did not list falls back to `default`; without one, to REEF's.
    out.entry("default".into()).or_insert_with(|| d.get("default").cloned().unwrap_or_default());
    Ok(out)
}

pub fn executors(file: &FileConfig, locate: &dyn Fn(&Preset) -> Option<PathBuf>) -> Result<Vec<ExecutorConfig>, ConfigError> {
    let mut executors = vec![];
    for (i, x) in file.executors.iter().enumerate() {
        let key = format!("executors[{i}]");
        let preset = match x.preset.as_deref() {
            None => None,
            Some(p) => Some(super::presets::preset(p).ok_or_else(|| {
                let known: Vec<&str> = super::presets::PRESETS.iter().map(|p| p.name).collect();
                bad(&format!("{key}.preset"), format!("{p:?} is not a preset"), format!("use one of {}", known.join(", ")))
            })?),
        };
        let mut x = x.clone();
        if let Some(p) = preset {
            if x.command.is_empty() {
                let found = || locate(p).map(|f| f.display().to_string()).unwrap_or_else(|| p.bin.to_string());
                x.command = p.command(&x.program.clone().unwrap_or_else(found));
                x.prompt_on_stdin = x.prompt_on_stdin.or(Some(p.prompt_on_stdin));
            }
            if x.kinds.is_empty() {
                x.kinds = p.kinds.iter().map(|k| k.to_string()).collect();
            }
            if x.resume_args.is_empty() {
                x.resume_args = p.resume_args.iter().map(|a| a.to_string()).collect();
            }
            if x.allowed_tools.is_empty() && !p.allowed_tools.is_empty() {
                x.allowed_tools.insert("default".into(), p.allowed_tools.iter().map(|t| t.to_string()).collect());
            }
            for (k, v) in p.env {
                x.env.entry(k.to_string()).or_insert_with(|| v.to_string());
            }
        } else if x.program.is_some() {
            return Err(bad(&format!("{key}.program"), "is only for a preset", "give the program as the first word of command"));
        }
        let name = match (&x.name, preset) {
            (Some(n), _) => n.clone(),
            (None, Some(p)) => p.name.to_string(),
            (None, None) => return Err(bad(&format!("{key}.name"), "is missing", "name the executor, or give a preset")),
        };
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
        if executors.iter().any(|e: &ExecutorConfig| e.name == name) {
            return Err(bad(&format!("{key}.name"), format!("executor {name:?} is defined twice"), "remove one"));
        }
        // An executor that runs deploys is a deploy unless the file says what else it is: the
        // gate must not hinge on someone remembering to name the class.
        let action_class = match &x.action_class {
            Some(c) if crate::rules::policy::check_class(c).is_err() => {
                return Err(bad(
                    &format!("{key}.action_class"),
                    format!("{c:?} is not an action class"),
                    "lowercase letters, digits and _, e.g. production_deploy",
                ));
            }
            Some(c) => Some(c.clone()),
            None if x.kinds.iter().any(|k| k.to_lowercase().contains("deploy")) => Some("production_deploy".to_string()),
            None => None,
        };
        executors.push(ExecutorConfig {
            name,
            kinds: x.kinds.clone(),
            command: x.command.clone(),
            timeout: std::time::Duration::from_secs(positive(&format!("{key}.timeout_seconds"), x.timeout_seconds, 1800)?),
            output_cap_bytes: x.output_cap_bytes.unwrap_or(1024 * 1024).max(1024),
            soft_cap: x.soft_cap_usd.map(|v| dollars(&format!("{key}.soft_cap_usd"), v)).transpose()?,
            pass_env: x.pass_env.clone(),
            allowed_tools: x.allowed_tools.clone(),
            disallowed_tools: x.disallowed_tools.clone(),
            resume_args: x.resume_args.clone(),
            network: super::sandbox::network(&format!("{key}.network"), x.network.as_deref())?,
            read_only: x.read_only.clone(),
            writable: x.writable.clone(),
            prompt_on_stdin: x.prompt_on_stdin.unwrap_or(false),
            preset: preset.map(|p| p.name.to_string()),
            action_class,
            env: x.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            egress: x
                .egress
                .iter()
                .enumerate()
                .map(|(j, r)| {
                    crate::rules::egress::EgressRule::parse(r).map_err(|e| {
                        bad(&format!("{key}.egress[{j}]"), e, "e.g. \"registry.npmjs.org\", \"*.github.com:443\" or \"10.0.0.5:8080\"")
                    })
                })
                .collect::<Result<_, _>>()?,
        });
    }
    Ok(executors)
}
