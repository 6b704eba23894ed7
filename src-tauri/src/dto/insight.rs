//! Wire types of the window's insight area. Schedules, spend, revenue and the books, memory search, the graph, hardware.

use super::*;

#[derive(Debug, Clone, Serialize, Type)]
pub struct ScheduleDto {
    pub name: String,
    pub cron: String,
    pub title: String,
    pub description: String,
    pub agent: Option<String>,
    pub kind: Option<String>,
    pub action_class: Option<String>,
    pub next_run: Option<String>,
    pub last_slot: Option<String>,
    pub paused: bool,
    pub overlap: reef_core::rules::schedule::Overlap,
    pub source: reef_core::factory::ScheduleSource,
    /// The last runs and skipped slots, newest first.
    pub runs: Vec<ScheduleRunDto>,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct ScheduleRunDto {
    pub at: String,
    pub kind: String,
    pub task_id: Option<String>,
    pub status: Option<TaskStatus>,
}

/// A schedule as the window's form sends it.
#[derive(Debug, Clone, Deserialize, Type)]
pub struct ScheduleInputDto {
    pub name: String,
    pub cron: String,
    pub title: String,
    pub description: String,
    pub agent: Option<String>,
    pub kind: Option<String>,
    pub action_class: Option<String>,
    pub overlap: reef_core::rules::schedule::Overlap,
}

/// What the Schedules view asks of one schedule.
#[derive(Debug, Clone, Copy, Deserialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleActionDto {
    Pause,
    Resume,
    Run,
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
pub struct HourSpendDto {
    pub hour: String,
    pub agent: String,
    pub usd: f64,
}
