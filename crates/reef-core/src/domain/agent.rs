//! Agents: who does the work, with which prompt, model and caps; every config change a revision.

use crate::time::{ts, ts_opt, Timestamp};
use crate::{ModelTier, Usd};
use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Idle,
    Working,
    Paused,
    /// Held because it reached a spend cap; resumes when the period ends or on override.
    CapReached,
    Offline,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Working => "working",
            Self::Paused => "paused",
            Self::CapReached => "cap_reached",
            Self::Offline => "offline",
        }
    }
}

/// The part of an agent the operator edits; each change is kept as a revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentConfig {
    pub name: String,
    pub role: String,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub prompt: String,
    /// Default model tier for this agent's work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_tier: Option<ModelTier>,
    /// Explicit model name (overrides the tier), e.g. `frontier` or a LiteLLM model id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub daily_cap_usd: Usd,
    /// How many of its tasks may run at once, across all machines.
    #[serde(default = "one")]
    pub max_concurrent: u32,
    /// The tools it works with (`AGENT_TOOLS`); with any, its LLM work runs as REEF's agent loop
    /// (calls tools until it calls `finish`), without, as one answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
}

fn one() -> u32 {
    1
}

/// The toolbox tools an agent working on a task may be given (the MCP server's task tools; the
/// toolbox's tests keep the two lists equal).
pub const AGENT_TOOLS: [&str; 10] = [
    "create_task",
    "task_status",
    "add_comment",
    "search_memory",
    "remember",
    "graph_neighbors",
    "request_approval",
    "ask_operator",
    "report_progress",
    "wait_for_subtasks",
];

/// The tools that act in the task's own directory (REEF's agent loop runs them, contained like a
/// CLI agent: `engine::workspace`).
pub const WORKSPACE_TOOLS: [&str; 6] = ["list_files", "read_file", "write_file", "edit_file", "search_files", "run_command"];

/// Every tool an agent may be given: the toolbox's, then the workspace's.
pub fn all_agent_tools() -> impl Iterator<Item = &'static str> {
    AGENT_TOOLS.into_iter().chain(WORKSPACE_TOOLS)
}

impl AgentConfig {
    /// Refuses tools no agent can have, naming them.
    pub fn check_tools(&self) -> Result<(), String> {
        let unknown: Vec<&str> = self.tools.iter().map(String::as_str).filter(|t| !all_agent_tools().any(|k| k == *t)).collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            let known: Vec<&str> = all_agent_tools().collect();
            Err(format!("{}: no such agent tool {} (the tools are {})", self.name, unknown.join(", "), known.join(", ")))
        }
    }

    /// Whether it works in its task's directory (any workspace tool).
    pub fn uses_workspace(&self) -> bool {
        self.tools.iter().any(|t| WORKSPACE_TOOLS.contains(&t.as_str()))
    }
}

/// An `agent_state` document: config plus live state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(flatten)]
    pub config: AgentConfig,
    pub status: AgentStatus,
    #[serde(default, with = "ts_opt", skip_serializing_if = "Option::is_none")]
    pub heartbeat_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_task: Option<String>,
    #[serde(default)]
    pub revision: u32,
    #[serde(with = "ts")]
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRevision {
    pub agent: String,
    pub revision: u32,
    pub config: AgentConfig,
    pub author: String,
    #[serde(with = "ts")]
    pub at: Timestamp,
}

/// Applies a config to an agent (or to none yet): the changed agent and the revision recording
/// the change, or `Unchanged` when the config is what the agent already has.
// Made once per edit and taken apart at once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum ConfigChange {
    Unchanged(Agent),
    Changed(Agent, AgentRevision),
}

pub fn apply_config(existing: Option<Agent>, config: AgentConfig, author: &str, now: Timestamp) -> ConfigChange {
    let mut agent = match existing {
        Some(a) if a.config == config => return ConfigChange::Unchanged(a),
        Some(a) => a,
        None => Agent {
            id: config.name.clone(),
            config: config.clone(),
            status: AgentStatus::Idle,
            heartbeat_at: None,
            current_task: None,
            revision: 0,
            updated_at: now,
        },
    };
    agent.config = config.clone();
    agent.revision += 1;
    agent.updated_at = now;
    let rev = AgentRevision { agent: agent.id.clone(), revision: agent.revision, config, author: author.into(), at: now };
    ConfigChange::Changed(agent, rev)
}

/// Seed 000's four agents and their daily caps.
pub fn default_agents() -> Vec<AgentConfig> {
    let a = |name: &str, role: &str, caps: &[&str], cap: f64, tier: ModelTier, prompt: &str, tools: &[&str]| AgentConfig {
        name: name.into(),
        role: role.into(),
        capabilities: caps.iter().map(|s| s.to_string()).collect(),
        prompt: prompt.into(),
        model_tier: Some(tier),
        model: None,
        daily_cap_usd: Usd::from_dollars(cap),
        max_concurrent: 2,
        tools: tools.iter().map(|s| s.to_string()).collect(),
    };
    vec![
        a(
            "kev",
            "orchestrator",
            &["plan", "triage", "report"],
            30.0,
            ModelTier::Mid,
            "You are Kev, the factory's orchestrator: its strategic brain, its router and its review gate. \
             For a goal, first search memory for what the factory already knows. Then split the goal into tasks for the right agents — \
             Scout researches and writes content, Rex builds, tests and deploys, Blaze markets (drafts that go out only after approval) — \
             each with a clear title and a description that says what done looks like. Do not do their work yourself. \
             Call wait_for_subtasks; when you run again, read their results with task_status, check each against the goal, \
             and finish with one summary the operator can act on: what was done, what it cost, what is left. \
             Every task starts at the cheapest capable model; ask the operator only what you cannot decide.",
            &["create_task", "task_status", "wait_for_subtasks", "add_comment", "search_memory", "remember", "graph_neighbors", "ask_operator", "report_progress"],
        ),
        a(
            "rex",
            "builder",
            &["build", "qa", "deploy"],
            40.0,
            ModelTier::Cheap,
            "You are Rex: you build, test and deploy the factory's products. You work in your task's own directory. \
             Read before you write, make small changes, run the tests with run_command and fix what fails before you finish. \
             A deploy to production needs the operator's approval first (request_approval, action class production_deploy). \
             Finish with what you changed, how you tested it, and the branch.",
            &[
                "list_files",
                "read_file",
                "write_file",
                "edit_file",
                "search_files",
                "run_command",
                "search_memory",
                "remember",
                "request_approval",
                "report_progress",
            ],
        ),
        a(
            "scout",
            "research",
            &["research", "content"],
            15.0,
            ModelTier::Local,
            "You are Scout: you research markets and competitors and write content. Search memory before you research. \
             Keep what others will need: remember one fact per note, with its numbers and where it came from. \
             Finish with a short answer that names its sources.",
            &["search_memory", "remember", "graph_neighbors", "ask_operator", "report_progress"],
        ),
        a(
            "blaze",
            "marketing",
            &["marketing", "social", "email"],
            10.0,
            ModelTier::Cheap,
            "You are Blaze: you market the factory's products — posts, emails, launch threads. You write drafts; \
             nothing goes out without the operator's approval: before anything is posted or sent, call request_approval with the exact text \
             (action class public_post or customer_message) and wait for the decision. Finish with the draft and what became of it.",
            &["search_memory", "remember", "request_approval", "ask_operator", "report_progress"],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_default_agents_act_with_tools_that_exist_and_fit_their_roles() {
        let agents = default_agents();
        for a in &agents {
            a.check_tools().unwrap();
            assert!(!a.tools.is_empty() && !a.prompt.is_empty(), "{} runs as the loop, with a prompt of its own", a.name);
        }
        let tools = |n: &str| agents.iter().find(|a| a.name == n).unwrap().tools.clone();
        let has = |n: &str, t: &str| tools(n).iter().any(|x| x == t);
        assert!(has("kev", "create_task") && has("kev", "wait_for_subtasks") && has("kev", "task_status"), "Kev splits and waits");
        assert!(!tools("kev").iter().any(|t| WORKSPACE_TOOLS.contains(&t.as_str())), "Kev does not build");
        assert!(
            has("rex", "run_command") && has("rex", "edit_file") && has("rex", "request_approval"),
            "Rex builds, tests, asks to deploy"
        );
        assert!(has("scout", "remember") && has("scout", "search_memory"), "Scout keeps what it finds");
        assert!(has("blaze", "request_approval") && !has("blaze", "run_command"), "Blaze drafts behind approval");
    }
}
