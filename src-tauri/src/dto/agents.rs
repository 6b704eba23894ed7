//! Wire types of the window's agents area. Agents: status, outcomes, settings and their revisions.

use super::*;

#[derive(Debug, Clone, Serialize, Type)]
pub struct AgentDto {
    pub name: String,
    pub role: String,
    pub capabilities: Vec<String>,
    pub status: AgentStatus,
    pub heartbeat_at: Option<String>,
    pub current_task: Option<String>,
    pub daily_cap_usd: f64,
    pub tier: Option<ModelTier>,
    pub revision: u32,
    pub hold: Option<reef_core::factory::Hold>,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct OutcomeDto {
    pub agent: String,
    pub tier: String,
    pub task_type: String,
    pub attempts: u32,
    pub successes: u32,
    pub success_rate: f64,
    pub cost_usd: f64,
    pub avg_latency_ms: u32,
}

/// An agent's editable settings, as the Agents view's editor shows and sends them.
#[derive(Debug, Clone, Serialize, Deserialize, Type)]
pub struct AgentConfigDto {
    pub name: String,
    pub role: String,
    pub capabilities: Vec<String>,
    pub prompt: String,
    /// null: the routing rules decide.
    pub tier: Option<ModelTier>,
    /// An explicit model (overrides the tier).
    pub model: Option<String>,
    pub daily_cap_usd: f64,
    pub max_concurrent: u32,
    /// Its tools; with any, its LLM work runs as REEF's agent loop.
    pub tools: Vec<String>,
}

impl From<&AgentConfig> for AgentConfigDto {
    fn from(a: &AgentConfig) -> Self {
        Self {
            name: a.name.clone(),
            role: a.role.clone(),
            capabilities: a.capabilities.clone(),
            prompt: a.prompt.clone(),
            tier: a.model_tier,
            model: a.model.clone(),
            daily_cap_usd: a.daily_cap_usd.dollars(),
            max_concurrent: a.max_concurrent,
            tools: a.tools.clone(),
        }
    }
}

impl AgentConfigDto {
    /// The core config, or what the window sent that is not one.
    pub fn into_config(self) -> Result<AgentConfig, String> {
        if !self.daily_cap_usd.is_finite() {
            return Err(format!("{}: the daily cap is not a number", self.name));
        }
        Ok(AgentConfig {
            name: self.name,
            role: self.role,
            capabilities: self.capabilities,
            prompt: self.prompt,
            model_tier: self.tier,
            model: self.model.map(|m| m.trim().to_string()).filter(|m| !m.is_empty()),
            daily_cap_usd: Usd::from_dollars(self.daily_cap_usd),
            max_concurrent: self.max_concurrent,
            tools: self.tools,
        })
    }
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct AgentRevisionDto {
    pub revision: u32,
    pub author: String,
    pub at: String,
    pub config: AgentConfigDto,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct AgentDetailDto {
    pub config: AgentConfigDto,
    /// Newest first.
    pub revisions: Vec<AgentRevisionDto>,
    pub max_prompt_bytes: u32,
    /// The tools an agent may be given.
    pub agent_tools: Vec<String>,
}
