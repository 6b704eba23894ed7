//! Wire types for the window: what commands return and take, with `specta::Type` so the
//! TypeScript bindings match. Money crosses as dollars (f64), times as RFC 3339 strings.

use reef_core::time::fmt_ts;
use reef_core::*;
use serde::{Deserialize, Serialize};
use specta::Type;

#[derive(Debug, Clone, Serialize, Type)]
pub struct CountDto {
    pub status: String,
    pub count: u32,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct CapDto {
    pub scope: String,
    pub cap_usd: f64,
    pub spent_usd: f64,
    pub reserved_usd: f64,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct StatusDto {
    pub store: String,
    pub remote: bool,
    pub timezone: String,
    pub operator: String,
    pub tasks: Vec<CountDto>,
    pub caps_today: Vec<CapDto>,
    pub pending_approvals: u32,
    pub dispatcher: Option<String>,
    pub malformed: Vec<MalformedDto>,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct MalformedDto {
    pub collection: String,
    pub id: String,
    pub reason: String,
}

impl From<&Malformed> for MalformedDto {
    fn from(m: &Malformed) -> Self {
        Self { collection: m.collection.clone(), id: m.id.clone(), reason: m.reason.clone() }
    }
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct CommentDto {
    pub author: String,
    pub body: String,
    pub at: String,
}

#[derive(Debug, Clone, Serialize, Type, Default)]
pub struct WorkProductsDto {
    pub branch: Option<String>,
    pub pr_url: Option<String>,
    pub preview_url: Option<String>,
    pub deploy_url: Option<String>,
    pub repository: Option<String>,
}

impl From<&WorkProducts> for WorkProductsDto {
    fn from(w: &WorkProducts) -> Self {
        Self {
            branch: w.branch.clone(),
            pr_url: w.pr_url.clone(),
            preview_url: w.preview_url.clone(),
            deploy_url: w.deploy_url.clone(),
            repository: w.repository.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct TaskDto {
    pub id: String,
    pub title: String,
    pub description: String,
    pub status: String,
    pub priority: i32,
    pub assigned_to: Option<String>,
    pub kind: Option<String>,
    pub action_class: Option<String>,
    pub tier: Option<String>,
    pub product: Option<String>,
    pub attempts: u32,
    pub created_at: String,
    pub updated_at: Option<String>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub depends_on: Vec<String>,
    pub parent_id: Option<String>,
    pub comments: Vec<CommentDto>,
    pub work_products: WorkProductsDto,
    pub lease_holder: Option<String>,
    pub review: bool,
}

impl From<&Task> for TaskDto {
    fn from(t: &Task) -> Self {
        Self {
            id: t.id.clone(),
            title: t.title.clone(),
            description: t.description.clone(),
            status: t.status.as_str().into(),
            priority: t.priority.clamp(i32::MIN as i64, i32::MAX as i64) as i32,
            assigned_to: t.assigned_to.clone(),
            kind: t.kind.clone(),
            action_class: t.action_class.clone(),
            tier: t.model_tier.map(|m| m.as_str().into()),
            product: t.product.clone(),
            attempts: t.attempts,
            created_at: fmt_ts(&t.created_at),
            updated_at: t.updated_at.as_ref().map(fmt_ts),
            result: t.result.clone(),
            error: t.error.clone(),
            depends_on: t.depends_on.clone(),
            parent_id: t.parent_id.clone(),
            comments: t.comments.iter().map(|c| CommentDto { author: c.author.clone(), body: c.body.clone(), at: fmt_ts(&c.at) }).collect(),
            work_products: (&t.work_products).into(),
            lease_holder: t.lease.as_ref().map(|l| l.holder.clone()),
            review: t.wants_review(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct TaskListDto {
    pub tasks: Vec<TaskDto>,
    pub malformed: Vec<MalformedDto>,
}

#[derive(Debug, Clone, Deserialize, Type)]
pub struct NewTaskDto {
    pub title: String,
    pub description: Option<String>,
    pub priority: Option<i32>,
    pub agent: Option<String>,
    pub kind: Option<String>,
    pub tier: Option<String>,
    pub product: Option<String>,
    pub action_class: Option<String>,
    pub review: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct QuestionDto {
    pub task_id: String,
    pub title: String,
    pub product: Option<String>,
    pub question: String,
    pub asked_by: String,
    pub asked_at: String,
}

impl From<&reef_core::factory::Question> for QuestionDto {
    fn from(q: &reef_core::factory::Question) -> Self {
        Self {
            task_id: q.task_id.clone(),
            title: q.title.clone(),
            product: q.product.clone(),
            question: q.question.clone(),
            asked_by: q.asked_by.clone(),
            asked_at: reef_core::time::fmt_ts(&q.asked_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct ApprovalDto {
    pub id: String,
    pub task_id: String,
    pub action_class: String,
    pub summary: String,
    pub work_products: WorkProductsDto,
    pub requested_by: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub reason: Option<String>,
}

impl From<&Approval> for ApprovalDto {
    fn from(a: &Approval) -> Self {
        Self {
            id: a.id.clone(),
            task_id: a.task_id.clone(),
            action_class: a.action_class.clone(),
            summary: a.summary.clone(),
            work_products: (&a.work_products).into(),
            requested_by: a.requested_by.clone(),
            created_at: fmt_ts(&a.created_at),
            expires_at: a.expires_at.as_ref().map(fmt_ts),
            status: a.status.as_str().into(),
            decided_by: a.decided_by.clone(),
            decided_at: a.decided_at.as_ref().map(fmt_ts),
            reason: a.reason.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum DecisionDto {
    Approve,
    Reject,
    Revise,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct AgentDto {
    pub name: String,
    pub role: String,
    pub capabilities: Vec<String>,
    pub status: String,
    pub heartbeat_at: Option<String>,
    pub current_task: Option<String>,
    pub daily_cap_usd: f64,
    pub tier: Option<String>,
    pub revision: u32,
    pub hold: Option<String>,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct EventDto {
    pub id: String,
    pub kind: String,
    pub at: String,
    pub actor: String,
    pub subject: Option<String>,
    pub data: String,
}

impl From<&Event> for EventDto {
    fn from(e: &Event) -> Self {
        Self {
            id: e.id.clone(),
            kind: e.kind.clone(),
            at: fmt_ts(&e.at),
            actor: e.actor.clone(),
            subject: e.subject.clone(),
            data: e.data.to_string(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct ScheduleDto {
    pub name: String,
    pub cron: String,
    pub title: String,
    pub agent: Option<String>,
    pub next_run: Option<String>,
    pub last_slot: Option<String>,
    pub paused: bool,
    pub overlap: String,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct SpendRowDto {
    pub key: String,
    pub usd: f64,
    pub calls: u32,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct RevenueRowDto {
    pub product: String,
    pub month: String,
    pub currency: String,
    /// Major units (dollars, euros), per currency: never converted.
    pub amount: f64,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct ProductDto {
    pub id: String,
    pub name: String,
    pub status: String,
    pub deploy_target: Option<String>,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct MrrDto {
    pub product: String,
    pub currency: String,
    /// Major units a month.
    pub mrr: f64,
    pub subscriptions: u32,
}

/// One product's all-time revenue (per currency) against its LLM spend.
#[derive(Debug, Clone, Serialize, Type)]
pub struct ProductBooksDto {
    pub product: String,
    pub revenue: Vec<MoneyDto>,
    pub llm_spend_usd: f64,
    /// USD revenue minus LLM spend.
    pub net_usd: f64,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct MoneyDto {
    pub currency: String,
    pub amount: f64,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct MonthBooksDto {
    pub month: String,
    pub revenue_usd: f64,
    pub llm_spend_usd: f64,
    pub self_funding: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct RevenueDto {
    pub rows: Vec<RevenueRowDto>,
    pub products: Vec<ProductDto>,
    pub mrr: Vec<MrrDto>,
    pub books: Vec<ProductBooksDto>,
    pub months: Vec<MonthBooksDto>,
    /// All-time USD revenue ÷ LLM spend; `None` before any spend.
    pub self_funding: Option<f64>,
    pub revenue_usd: f64,
    pub llm_spend_usd: f64,
    /// Revenue in other currencies, left out of the ratio (never converted).
    pub other_currencies: Vec<MoneyDto>,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct MemoryHitDto {
    pub id: String,
    pub content: String,
    pub kind: String,
    pub agent: Option<String>,
    pub product: Option<String>,
    pub created_at: String,
    pub score: f64,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct MemorySearchDto {
    /// Which search ran: exact_scan, sqlite_vec or vector_search_index.
    pub method: String,
    /// Which model embedded the query (all-minilm-l6-v2, gateway:embed, hashing).
    pub embedder: String,
    pub hits: Vec<MemoryHitDto>,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct EntityDto {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub depth: u32,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct EdgeDto {
    pub from: String,
    pub to: String,
    pub kind: String,
    pub weight: f64,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct GraphDto {
    pub nodes: Vec<EntityDto>,
    pub edges: Vec<EdgeDto>,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct SeriesDto {
    pub metric: String,
    /// Unix seconds.
    pub t: Vec<f64>,
    pub v: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct HostDto {
    pub host: String,
    /// What the host says of its GPUs (or why it has none to show).
    pub gpu: Option<String>,
    pub series: Vec<SeriesDto>,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct CapSettingDto {
    pub agent: String,
    pub daily_usd: f64,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct GateDto {
    pub action_class: String,
    pub gate: String,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct SettingsDto {
    pub store: String,
    /// Where the store connection comes from: environment, keyring or config file, embedded.
    pub store_from: String,
    pub remote: bool,
    pub timezone: String,
    pub operator: String,
    pub gateway: String,
    /// Whether a gateway key is set (never the key itself).
    pub gateway_key_set: bool,
    pub global_daily_cap_usd: f64,
    pub agent_caps: Vec<CapSettingDto>,
    pub gates: Vec<GateDto>,
    pub config_file: Option<String>,
    pub notifications: crate::notify::Prefs,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct StoreTestDto {
    pub ok: bool,
    pub message: String,
    pub replica_set: bool,
    pub version: Option<String>,
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
    /// local, cheap, mid or frontier; null: the routing rules decide.
    pub tier: Option<String>,
    /// An explicit model (overrides the tier).
    pub model: Option<String>,
    pub daily_cap_usd: f64,
    pub max_concurrent: u32,
}

impl From<&AgentConfig> for AgentConfigDto {
    fn from(a: &AgentConfig) -> Self {
        Self {
            name: a.name.clone(),
            role: a.role.clone(),
            capabilities: a.capabilities.clone(),
            prompt: a.prompt.clone(),
            tier: a.model_tier.map(|t| t.as_str().into()),
            model: a.model.clone(),
            daily_cap_usd: a.daily_cap_usd.dollars(),
            max_concurrent: a.max_concurrent,
        }
    }
}

impl AgentConfigDto {
    /// The core config, or what the window sent that is not one.
    pub fn into_config(self) -> Result<AgentConfig, String> {
        if !self.daily_cap_usd.is_finite() {
            return Err(format!("{}: the daily cap is not a number", self.name));
        }
        let model_tier = match self.tier.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(t) => Some(t.parse::<ModelTier>()?),
        };
        Ok(AgentConfig {
            name: self.name,
            role: self.role,
            capabilities: self.capabilities,
            prompt: self.prompt,
            model_tier,
            model: self.model.map(|m| m.trim().to_string()).filter(|m| !m.is_empty()),
            daily_cap_usd: Usd::from_dollars(self.daily_cap_usd),
            max_concurrent: self.max_concurrent,
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
}

/// One secret: its name, what it is for and where its value comes from — never the value.
#[derive(Debug, Clone, Serialize, Type)]
pub struct SecretDto {
    pub name: String,
    pub purpose: String,
    /// environment, keyring or unset.
    pub source: String,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct SecretsDto {
    pub secrets: Vec<SecretDto>,
    /// Why the OS keyring cannot be used here (null when it can).
    pub keyring_problem: Option<String>,
}

/// A webhook subscription and what it is owed (never its URL's path or its secret).
#[derive(Debug, Clone, Serialize, Type)]
pub struct WebhookDto {
    pub name: String,
    pub host: String,
    pub events: Vec<String>,
    pub template: String,
    pub approve_links: bool,
    pub pending: u32,
    pub failures: u32,
    pub last_error: Option<String>,
}

/// One delivery attempt from the relay's log.
#[derive(Debug, Clone, Serialize, Type)]
pub struct DeliveryDto {
    pub at: String,
    pub subscription: String,
    pub kind: String,
    pub attempt: u32,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct WebhooksDto {
    pub subscriptions: Vec<WebhookDto>,
    /// Newest first.
    pub deliveries: Vec<DeliveryDto>,
}
