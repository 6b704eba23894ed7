//! How CLI agents are contained (`[sandbox]` and each executor's `network`, `read_only`,
//! `writable`), validated. Invariant: the default is the contained one — bubblewrap, no network,
//! working directories outside the data dir; running agents unsandboxed takes an explicit word.

use super::{bad, ConfigError, FileConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How the factory contains its CLI agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxMode {
    /// Every CLI agent runs under bubblewrap; where bubblewrap cannot run, CLI agents do not start.
    Bubblewrap,
    /// The operator allowed unsandboxed runs: agents run as REEF's own user, with its reach.
    Off,
}

impl SandboxMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxMode::Bubblewrap => "bubblewrap",
            SandboxMode::Off => "off",
        }
    }
}

/// What an agent's network namespace holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// An empty network namespace of its own: no route anywhere, not even to localhost services.
    None,
    /// The host's network, uncontained (agents that call a provider themselves need it today).
    Host,
}

impl Network {
    pub fn as_str(self) -> &'static str {
        match self {
            Network::None => "none",
            Network::Host => "host",
        }
    }
}

/// The factory-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    pub mode: SandboxMode,
    /// For executors that do not name their own.
    pub network: Network,
    /// Where tasks' working directories live: outside the data dir, so a sandbox's writable tree
    /// never holds REEF's store.
    pub work_dir: PathBuf,
}

fn mode(key: &str, v: Option<&str>) -> Result<SandboxMode, ConfigError> {
    match v {
        None | Some("bubblewrap") => Ok(SandboxMode::Bubblewrap),
        Some("off") => Ok(SandboxMode::Off),
        Some(o) => {
            Err(bad(key, format!("{o:?} is not a sandbox mode"), "use \"bubblewrap\" (the default) or \"off\" to allow unsandboxed agents"))
        }
    }
}

pub(super) fn network(key: &str, v: Option<&str>) -> Result<Option<Network>, ConfigError> {
    match v {
        None => Ok(None),
        Some("none") => Ok(Some(Network::None)),
        Some("host") => Ok(Some(Network::Host)),
        Some(o) => Err(bad(key, format!("{o:?} is not a network"), "use \"none\" (the default) or \"host\"")),
    }
}

/// The default work dir: beside the data dir, never inside it (`…/reef` → `…/reef-work`).
pub fn default_work_dir(data_dir: &Path) -> PathBuf {
    let name = data_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "reef".into());
    data_dir.with_file_name(format!("{name}-work"))
}

/// `REEF_WORK_DIR` beats the file's `sandbox.work_dir`, as `REEF_DATA_DIR` beats `store.data_dir`.
pub fn sandbox(file: &FileConfig, env: &dyn Fn(&str) -> Option<String>, data_dir: &Path) -> Result<SandboxConfig, ConfigError> {
    let s = &file.sandbox;
    let work_dir = env("REEF_WORK_DIR").map(PathBuf::from).or_else(|| s.work_dir.clone()).unwrap_or_else(|| default_work_dir(data_dir));
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    if abs(&work_dir).starts_with(abs(data_dir)) || abs(data_dir).starts_with(abs(&work_dir)) {
        return Err(bad(
            "sandbox.work_dir",
            format!("{} overlaps the data dir {}", work_dir.display(), data_dir.display()),
            "choose a directory outside the data dir (the default is beside it)",
        ));
    }
    Ok(SandboxConfig {
        mode: mode("sandbox.mode", s.mode.as_deref())?,
        network: network("sandbox.network", s.network.as_deref())?.unwrap_or(Network::None),
        work_dir,
    })
}

impl super::Config {
    /// The CLI executor that runs tasks of `kind`; `None`: REEF's own LLM call runs them.
    pub fn executor_for_kind(&self, kind: Option<&str>) -> Option<&super::ExecutorConfig> {
        let k = kind?;
        self.executors.iter().find(|x| x.kinds.iter().any(|y| y == k))
    }

    /// Why an agent on a task of kind `parent` may not hand work to a subtask of kind `child`:
    /// the child's executor reaches further — the host's network where the parent's is sealed,
    /// or an egress destination the parent's list lacks. `None`: it may (REEF's own LLM call,
    /// which runs no process, reaches nothing).
    pub fn wider_reach(&self, child: Option<&str>, parent: Option<&str>) -> Option<String> {
        let c = self.executor_for_kind(child)?;
        let net = |x: Option<&super::ExecutorConfig>| x.map_or(Network::None, |x| x.network.unwrap_or(self.sandbox.network));
        let p = self.executor_for_kind(parent);
        let name = |x: Option<&super::ExecutorConfig>| x.map_or("REEF's own LLM call".to_string(), |x| format!("executor {:?}", x.name));
        if net(Some(c)) == Network::Host && net(p) == Network::None {
            return Some(format!(
                "type {:?} runs on {} with the host's network; this task's agent runs on {} without it: a subtask may not reach further than its parent",
                child.unwrap_or_default(),
                name(Some(c)),
                name(p)
            ));
        }
        if net(p) == Network::Host {
            // The parent reaches anywhere already.
            return None;
        }
        let parent_rules = p.map(|x| x.egress.as_slice()).unwrap_or_default();
        if let Some(r) = c.egress.iter().find(|r| !parent_rules.contains(r)) {
            return Some(format!(
                "type {:?} runs on {} whose egress allows {r}, which {} does not: a subtask may not reach further than its parent",
                child.unwrap_or_default(),
                name(Some(c)),
                name(p)
            ));
        }
        None
    }
}
