//! The ports: one trait per aggregate, implemented by every store (embedded SQLite, MongoDB).
//!
//! Invariants every implementation keeps (the conformance suite in reef-store checks them):
//! claims are atomic and fenced by lease tokens; a ledger reservation is all-or-nothing across
//! its scopes and never lets `spent + reserved` pass a cap; watches see other processes' writes;
//! documents another program wrote that REEF cannot parse are reported, never rewritten.

use crate::domain::agent::{Agent, AgentConfig, AgentRevision, AgentStatus};
use crate::domain::approval::{Approval, ApprovalStatus, Decision, NewApproval};
use crate::domain::event::{AuditEntry, Event, ResumeToken};
use crate::domain::knowledge::{Entity, MemoryDoc, MemoryFilter, MemorySearch, Relationship, Traversal};
use crate::domain::ledger::{LlmCall, Reservation, ReserveRequest, ScopeKey, ScopeTotal, SpendGroup, SpendRow};
use crate::domain::revenue::{Product, RevenueEvent, RevenueRow, Subscription};
use crate::domain::task::{ClaimFilter, Comment, Listing, NewTask, Outcome, Task, TaskQuery, TaskStatus};
use crate::domain::telemetry::MetricSample;
use crate::error::StoreResult;
use crate::time::Timestamp;
use crate::{ModelTier, Usd};
use async_trait::async_trait;
use futures::stream::BoxStream;
use std::sync::Arc;
use std::time::Duration;

#[async_trait]
pub trait TaskQueue: Send + Sync {
    /// Stores a new task. With an idempotency key already used, returns the existing task
    /// (`created == false`) instead of creating a second one.
    async fn create(&self, task: NewTask, now: Timestamp) -> StoreResult<(Task, bool)>;
    async fn get(&self, id: &str) -> StoreResult<Task>;
    async fn list(&self, q: &TaskQuery) -> StoreResult<Listing<Task>>;
    async fn counts(&self) -> StoreResult<Vec<(TaskStatus, u64)>>;
    /// Atomically takes the best claimable task: `pending`, or `claimed`/`running` whose lease
    /// expired; highest priority first, then oldest. Returns it with a fresh lease.
    async fn claim(&self, worker: &str, filter: &ClaimFilter, ttl: Duration, now: Timestamp) -> StoreResult<Option<Task>>;
    /// `claimed` → `running`, only under the current lease token.
    async fn start(&self, id: &str, token: &str, now: Timestamp) -> StoreResult<Task>;
    /// Extends the lease, only under the current lease token.
    async fn renew(&self, id: &str, token: &str, ttl: Duration, now: Timestamp) -> StoreResult<Task>;
    /// Ends an attempt, only under the current lease token; clears the lease.
    async fn finish(&self, id: &str, token: &str, outcome: Outcome, now: Timestamp) -> StoreResult<Task> {
        self.finish_with(id, token, outcome, None, now).await
    }
    /// `finish`, appending `event` in the same atomic write, so a crash cannot record the
    /// outcome without its event (or the event without the outcome).
    async fn finish_with(&self, id: &str, token: &str, outcome: Outcome, event: Option<Event>, now: Timestamp) -> StoreResult<Task>;
    /// Moves a task from one of `from` to `to` (operator actions, unblocking, approvals);
    /// clears any lease. `Conflict` when it is in another state.
    async fn transition(&self, id: &str, from: &[TaskStatus], to: TaskStatus, note: Option<&str>, now: Timestamp) -> StoreResult<Task>;
    async fn assign(&self, id: &str, agent: Option<&str>, now: Timestamp) -> StoreResult<Task>;
    /// Routes a pending task that nobody assigned yet: sets agent and starting tier. Returns
    /// `false` (and changes nothing) when it was assigned or left `pending` meanwhile.
    async fn route(&self, id: &str, agent: &str, tier: ModelTier, now: Timestamp) -> StoreResult<bool>;
    /// Sets the tier the next attempt runs on (escalation).
    async fn set_tier(&self, id: &str, tier: ModelTier, now: Timestamp) -> StoreResult<()>;
    async fn comment(&self, id: &str, comment: Comment) -> StoreResult<Task>;
}

#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only kinds starting with this, e.g. `task.`.
    pub kind_prefix: Option<String>,
    pub subject: Option<String>,
    /// Case-insensitive text anywhere in the event.
    pub text: Option<String>,
    /// Only events at or after this time.
    pub since: Option<crate::Timestamp>,
    /// Oldest first (the webhook relay reads forward); newest first otherwise.
    pub oldest_first: bool,
    pub limit: usize,
}

#[async_trait]
pub trait EventLog: Send + Sync {
    async fn append(&self, event: Event) -> StoreResult<()>;
    /// Newest first (or oldest first, when asked).
    async fn recent(&self, q: &EventQuery) -> StoreResult<Listing<Event>>;
    /// The log in the store's own order, each event with its position (opaque text): after
    /// `after`, else from the first event at or after `since`, else from the start; at most
    /// `limit`. Documents REEF cannot read are passed over (their position still counts).
    async fn log(&self, after: Option<&str>, since: Option<crate::Timestamp>, limit: usize) -> StoreResult<Vec<(String, Event)>>;
    /// The newest event's position (where a reader that wants no history starts).
    async fn log_tail(&self) -> StoreResult<Option<String>>;
    /// Whether `log` is the order in which events were committed, so nothing can appear behind
    /// a position already read. False where several writers' clocks order it (MongoDB): a
    /// reader must look back for late arrivals.
    fn log_is_commit_order(&self) -> bool;
    /// Drops what `rule` names; returns how many went. The audit log has no such method.
    async fn prune(&self, rule: &EventPrune) -> StoreResult<u64>;
}

/// Which events housekeeping drops: those before `before` (of `kind`, when given), except the
/// ones after any of `owed_after` — positions of webhook subscriptions, which still owe them —
/// unless those are older than `owed_before` too (a receiver down longer than anyone waits).
#[derive(Debug, Clone, PartialEq)]
pub struct EventPrune {
    pub before: crate::Timestamp,
    pub kind: Option<String>,
    pub owed_after: Vec<String>,
    pub owed_before: crate::Timestamp,
}

#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn record(&self, entry: AuditEntry) -> StoreResult<()>;
    /// Newest first; `subject` filters to one thing.
    async fn list(&self, subject: Option<&str>, limit: usize) -> StoreResult<Listing<AuditEntry>>;
}

pub type ChangeStream = BoxStream<'static, StoreResult<crate::domain::event::Change>>;

/// What changed in the store, from any process, resumable from a token.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// Changes after `from` (or from now when `None`), as they happen.
    async fn watch(&self, from: Option<ResumeToken>) -> StoreResult<ChangeStream>;
    async fn save_cursor(&self, listener: &str, token: &ResumeToken) -> StoreResult<()>;
    async fn load_cursor(&self, listener: &str) -> StoreResult<Option<ResumeToken>>;
}

#[async_trait]
pub trait Agents: Send + Sync {
    /// Creates or updates an agent's config; a changed config becomes a new revision.
    async fn upsert(&self, config: AgentConfig, author: &str, now: Timestamp) -> StoreResult<Agent>;
    async fn get(&self, name: &str) -> StoreResult<Agent>;
    async fn list(&self) -> StoreResult<Listing<Agent>>;
    async fn heartbeat(&self, name: &str, status: AgentStatus, current_task: Option<&str>, now: Timestamp) -> StoreResult<()>;
    async fn revisions(&self, name: &str) -> StoreResult<Vec<AgentRevision>>;
}

#[async_trait]
pub trait Ledger: Send + Sync {
    /// All-or-nothing: reserves `amount` in every scope, or none when any would pass its cap.
    async fn reserve(&self, req: ReserveRequest, now: Timestamp) -> StoreResult<Reservation>;
    /// Records the real cost in every scope and releases what was held. Idempotent.
    async fn settle(&self, id: &str, actual: Usd, now: Timestamp) -> StoreResult<Reservation>;
    /// Gives back a reservation whose call did not happen.
    async fn release(&self, id: &str, now: Timestamp) -> StoreResult<Reservation>;
    /// Keeps an open reservation held until `expires_at` (a long run renews its hold while it
    /// lives). `Conflict` when it is no longer open: what it held may be someone else's now.
    async fn extend(&self, id: &str, expires_at: Timestamp) -> StoreResult<Reservation>;
    /// Releases reservations whose holder vanished (expired); returns how many.
    async fn expire(&self, now: Timestamp) -> StoreResult<u64>;
    async fn totals(&self, scopes: &[ScopeKey]) -> StoreResult<Vec<ScopeTotal>>;
    /// Totals of every scope whose key starts with `prefix` (e.g. `agent:` or `global:day:`).
    async fn totals_with_prefix(&self, prefix: &str) -> StoreResult<Vec<ScopeTotal>>;
    /// Records a call in `llm_calls` (which may expire) and adds its cost to each roll-up scope
    /// in `rollups` (kept for good, so monthly spend and P&L never lose history).
    async fn record_call(&self, call: LlmCall, rollups: &[ScopeKey]) -> StoreResult<()>;
    async fn spend(&self, group: SpendGroup, since: Timestamp, until: Timestamp) -> StoreResult<Vec<SpendRow>>;
}

#[async_trait]
pub trait Approvals: Send + Sync {
    async fn request(&self, req: NewApproval, now: Timestamp) -> StoreResult<Approval>;
    async fn get(&self, id: &str) -> StoreResult<Approval>;
    /// Newest first.
    async fn list(&self, status: Option<ApprovalStatus>, limit: usize) -> StoreResult<Listing<Approval>>;
    /// Every request about one task, newest first.
    async fn for_task(&self, task_id: &str) -> StoreResult<Vec<Approval>>;
    /// Decides a pending, unexpired request; `Conflict` when it was already decided or expired.
    async fn decide(&self, id: &str, decision: Decision, who: &str, reason: Option<&str>, now: Timestamp) -> StoreResult<Approval>;
    /// Marks pending requests past their expiry as expired and returns them.
    async fn expire_due(&self, now: Timestamp) -> StoreResult<Vec<Approval>>;
}

#[async_trait]
pub trait Metrics: Send + Sync {
    async fn record(&self, samples: &[MetricSample]) -> StoreResult<()>;
    /// Oldest first.
    async fn query(&self, host: Option<&str>, metric: &str, since: Timestamp, until: Timestamp) -> StoreResult<Vec<MetricSample>>;
    /// Drops samples older than `before` (where the store has no TTL of its own).
    async fn prune(&self, before: Timestamp) -> StoreResult<u64>;
}

#[async_trait]
pub trait Memory: Send + Sync {
    /// Stores a document; its embedding must match the index's dimension.
    async fn put(&self, doc: MemoryDoc) -> StoreResult<()>;
    async fn get(&self, id: &str) -> StoreResult<MemoryDoc>;
    async fn search(&self, query: &[f32], filter: &MemoryFilter, k: usize) -> StoreResult<MemorySearch>;
    /// The index's dimension: the recorded identity's (`memory::INDEX_KEY` in settings), else
    /// that of the stored embeddings, once any exist. `put` and `search` are checked against it.
    async fn dimension(&self) -> StoreResult<Option<usize>>;
    async fn count(&self) -> StoreResult<u64>;
    /// Up to `limit` documents with ids after `after`, in id order (for paging through all).
    async fn scan(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<MemoryDoc>>;
    /// Replaces the embeddings of existing documents and records `embedder` in their metadata;
    /// unknown ids are skipped. Used by reembed, which switches the index identity first.
    async fn set_embeddings(&self, updates: Vec<(String, Vec<f32>)>, embedder: &str) -> StoreResult<()>;
}

#[async_trait]
pub trait Graph: Send + Sync {
    async fn upsert_entity(&self, entity: Entity) -> StoreResult<()>;
    async fn entity(&self, id: &str) -> StoreResult<Entity>;
    async fn entities(&self, kind: Option<&str>, limit: usize) -> StoreResult<Listing<Entity>>;
    /// Adds or updates (by from, to, type) a relationship.
    async fn relate(&self, rel: Relationship) -> StoreResult<()>;
    /// Everything reachable from `start` along outgoing relationships within `depth` hops;
    /// cycles are followed once.
    async fn traverse(&self, start: &str, depth: u32) -> StoreResult<Traversal>;
}

#[async_trait]
pub trait Revenue: Send + Sync {
    async fn upsert_product(&self, product: Product) -> StoreResult<()>;
    async fn products(&self) -> StoreResult<Listing<Product>>;
    /// Records an event once: a second event with the same id returns `false` and changes nothing.
    async fn record(&self, event: RevenueEvent) -> StoreResult<bool>;
    /// Per product, month (UTC) and currency.
    async fn by_product_month(&self) -> StoreResult<Vec<RevenueRow>>;
    /// The product of the first event recorded with this reference (e.g. the charge a refund undoes).
    async fn product_of_reference(&self, reference: &str) -> StoreResult<Option<String>>;
    /// Stores the subscription unless the store holds a report of it that is newer; `true`
    /// when this one was kept.
    async fn upsert_subscription(&self, sub: Subscription) -> StoreResult<bool>;
    async fn subscriptions(&self) -> StoreResult<Vec<Subscription>>;
}

/// Small named settings shared by every REEF process (factory pause, cap overrides, alert marks).
#[async_trait]
pub trait Settings: Send + Sync {
    async fn get(&self, key: &str) -> StoreResult<Option<serde_json::Value>>;
    async fn put(&self, key: &str, value: serde_json::Value) -> StoreResult<()>;
    /// Stores `value` only if `key` is absent; `true` when this call stored it.
    async fn put_if_absent(&self, key: &str, value: serde_json::Value) -> StoreResult<bool>;
    async fn delete(&self, key: &str) -> StoreResult<()>;
}

/// Named leases (e.g. the active dispatcher), fenced like task leases.
#[async_trait]
pub trait Leases: Send + Sync {
    /// Takes or renews `name` for `holder` when it is free, expired or already held by `holder`.
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration, now: Timestamp) -> StoreResult<bool>;
    async fn release(&self, name: &str, holder: &str) -> StoreResult<()>;
    async fn holder(&self, name: &str, now: Timestamp) -> StoreResult<Option<String>>;
}

/// Whole-store export and import, in the store-neutral JSON shape (dates as RFC 3339 strings).
#[async_trait]
pub trait Archive: Send + Sync {
    /// Every document of a collection, in a consistent snapshot taken with the others.
    async fn export(&self) -> StoreResult<Vec<(String, Vec<serde_json::Value>)>>;
    /// Inserts documents; one whose `_id` already exists is replaced.
    async fn import(&self, collection: &str, docs: Vec<serde_json::Value>) -> StoreResult<u64>;
}

/// Every port of one store, as the engines and hosts receive them.
#[derive(Clone)]
pub struct Ports {
    pub kind: StoreKind,
    pub tasks: Arc<dyn TaskQueue>,
    pub events: Arc<dyn EventLog>,
    pub audit: Arc<dyn AuditLog>,
    pub changes: Arc<dyn ChangeFeed>,
    pub agents: Arc<dyn Agents>,
    pub ledger: Arc<dyn Ledger>,
    pub approvals: Arc<dyn Approvals>,
    pub metrics: Arc<dyn Metrics>,
    pub memory: Arc<dyn Memory>,
    pub graph: Arc<dyn Graph>,
    pub revenue: Arc<dyn Revenue>,
    pub leases: Arc<dyn Leases>,
    pub settings: Arc<dyn Settings>,
    pub archive: Arc<dyn Archive>,
}

impl Ports {
    /// Every port served by one store value.
    pub fn from_store<S>(kind: StoreKind, s: Arc<S>) -> Self
    where
        S: TaskQueue
            + EventLog
            + AuditLog
            + ChangeFeed
            + Agents
            + Ledger
            + Approvals
            + Metrics
            + Memory
            + Graph
            + Revenue
            + Leases
            + Settings
            + Archive
            + 'static,
    {
        Ports {
            kind,
            tasks: s.clone(),
            events: s.clone(),
            audit: s.clone(),
            changes: s.clone(),
            agents: s.clone(),
            ledger: s.clone(),
            approvals: s.clone(),
            metrics: s.clone(),
            memory: s.clone(),
            graph: s.clone(),
            revenue: s.clone(),
            leases: s.clone(),
            settings: s.clone(),
            archive: s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum StoreKind {
    /// The embedded SQLite file at this path.
    Embedded(String),
    /// MongoDB (the URI with credentials removed).
    Mongo(String),
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Embedded(p) => write!(f, "embedded SQLite at {p}"),
            Self::Mongo(u) => write!(f, "MongoDB at {u}"),
        }
    }
}

/// The collections of database `factory` (seed 000) plus REEF's own.
pub mod collections {
    pub const TASKS: &str = "tasks";
    pub const AGENT_STATE: &str = "agent_state";
    pub const AGENT_REVISIONS: &str = "agent_revisions";
    pub const MEMORY: &str = "memory";
    pub const LLM_CALLS: &str = "llm_calls";
    pub const EVENTS: &str = "events";
    pub const PRODUCTS: &str = "products";
    pub const REVENUE: &str = "revenue";
    pub const SUBSCRIPTIONS: &str = "subscriptions";
    pub const APPROVALS: &str = "approvals";
    pub const METRICS: &str = "metrics";
    pub const ENTITIES: &str = "entities";
    pub const RELATIONSHIPS: &str = "relationships";
    pub const AUDIT: &str = "audit";
    pub const LEDGER: &str = "ledger";
    pub const RESERVATIONS: &str = "reservations";
    pub const LEASES: &str = "leases";
    pub const CURSORS: &str = "cursors";
    pub const SETTINGS: &str = "settings";

    /// Everything a backup carries, in restore order.
    pub const ALL: [&str; 19] = [
        PRODUCTS,
        AGENT_STATE,
        AGENT_REVISIONS,
        TASKS,
        APPROVALS,
        EVENTS,
        AUDIT,
        LEDGER,
        RESERVATIONS,
        LLM_CALLS,
        METRICS,
        MEMORY,
        ENTITIES,
        RELATIONSHIPS,
        REVENUE,
        SUBSCRIPTIONS,
        LEASES,
        CURSORS,
        SETTINGS,
    ];
}
