//! The toolbox behind REEF's MCP server: who a token speaks for, what each tool does, and the
//! rules every call passes — scope, budget, approval policy, audit. The protocol itself (rmcp,
//! stdio, HTTP) lives in the hosts; this module never sees it.
//!
//! Invariants: a task token acts on its own task only (it may also read and comment on the
//! subtasks below it); every call, allowed or refused, leaves an audit entry naming the caller;
//! arguments are parsed strictly (unknown fields, wrong types, oversize or NUL-bearing text are
//! refused naming the field) before the store is touched; tokens are kept in the store only as
//! SHA-256 hashes.

use crate::engine::policy::Gate;
use crate::factory::Factory;
use crate::memory::{MemoryIndex, NewMemory};
use crate::time::{fmt_ts, parse_ts};
use crate::*;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Every task token starts with this, so a leaked one is easy to recognise (and to scan for).
pub const TOKEN_PREFIX: &str = "reef_mcp_";
const TOKEN_KEY: &str = "mcp.token:";
/// `mcp.wait:<task>`: the agent asked for an approval or a person while it held the task; the
/// worker parks the task when the attempt ends.
pub const WAIT_KEY: &str = "mcp.wait:";

/// Who a call speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An agent working on one task (a token REEF issued for that attempt).
    Task { task_id: String, agent: String },
    /// A client acting for the operator (e.g. OpenClaw), named in `[mcp] operators`.
    Operator { name: String },
}

impl Caller {
    /// The name the audit log and the events carry.
    pub fn actor(&self) -> String {
        match self {
            Caller::Task { agent, .. } => format!("agent:{agent}"),
            Caller::Operator { name } => format!("operator:{name}"),
        }
    }
    pub fn task_id(&self) -> Option<&str> {
        match self {
            Caller::Task { task_id, .. } => Some(task_id),
            Caller::Operator { .. } => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    OutOfScope(String),
    #[error("{0}")]
    Policy(String),
    #[error("{0}")]
    OverBudget(String),
    #[error("{0}")]
    Invalid(String),
    #[error("unknown tool {0:?} (tools/list names the ones this token may use)")]
    UnknownTool(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ToolError {
    /// A stable code a client can branch on.
    pub fn code(&self) -> &'static str {
        match self {
            ToolError::Unauthorized(_) => "unauthorized",
            ToolError::OutOfScope(_) => "out_of_scope",
            ToolError::Policy(_) => "policy",
            ToolError::OverBudget(_) => "over_budget",
            ToolError::Invalid(_) | ToolError::Store(StoreError::Invalid(_)) => "invalid",
            ToolError::UnknownTool(_) => "unknown_tool",
            ToolError::Unavailable(_) => "unavailable",
            ToolError::Store(StoreError::NotFound { .. }) => "not_found",
            ToolError::Store(StoreError::Conflict(_)) => "conflict",
            ToolError::Store(_) => "store",
        }
    }
    /// A refusal REEF's rules made (as opposed to bad input or a store failure).
    pub fn is_refusal(&self) -> bool {
        matches!(self, ToolError::Unauthorized(_) | ToolError::OutOfScope(_) | ToolError::Policy(_) | ToolError::OverBudget(_))
    }
}

type ToolResult<T> = Result<T, ToolError>;

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Issues a token that speaks for `agent` on `task_id` until `ttl` has passed (or it is revoked).
pub async fn issue_token(f: &Factory, task_id: &str, agent: &str, ttl: Duration) -> StoreResult<String> {
    let token = format!("{TOKEN_PREFIX}{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let expires = f.now() + chrono::Duration::from_std(ttl).unwrap_or_else(|_| chrono::Duration::hours(1));
    f.ports
        .settings
        .put(&format!("{TOKEN_KEY}{}", sha(&token)), json!({"task": task_id, "agent": agent, "expires_at": fmt_ts(&expires)}))
        .await?;
    Ok(token)
}

pub async fn revoke_token(f: &Factory, token: &str) -> StoreResult<()> {
    f.ports.settings.delete(&format!("{TOKEN_KEY}{}", sha(token))).await
}

/// Who `token` speaks for: an operator client's secret, or a live task token.
pub async fn resolve(f: &Factory, token: &str) -> ToolResult<Caller> {
    let token = token.trim();
    if token.is_empty() {
        return Err(ToolError::Unauthorized("no token: send `Authorization: Bearer <token>` (reef mcp reads REEF_MCP_TOKEN)".into()));
    }
    let h = sha(token);
    // Compared as hashes: equal-length strings, no early exit on the secret's own bytes.
    if let Some((name, _)) = f.config.mcp.operators.iter().find(|(_, s)| sha(s.expose()) == h) {
        return Ok(Caller::Operator { name: name.clone() });
    }
    if !token.starts_with(TOKEN_PREFIX) {
        return Err(ToolError::Unauthorized("not a REEF token".into()));
    }
    let key = format!("{TOKEN_KEY}{h}");
    let Some(v) = f.ports.settings.get(&key).await? else {
        return Err(ToolError::Unauthorized("unknown or revoked token (a task token lives as long as its attempt)".into()));
    };
    let expired = v["expires_at"].as_str().and_then(|s| parse_ts(s).ok()).is_none_or(|t| t <= f.now());
    if expired {
        let _ = f.ports.settings.delete(&key).await;
        return Err(ToolError::Unauthorized("token expired".into()));
    }
    match (v["task"].as_str(), v["agent"].as_str()) {
        (Some(t), Some(a)) => Ok(Caller::Task { task_id: t.into(), agent: a.into() }),
        _ => Err(ToolError::Unauthorized("token record is malformed; ask REEF for a new one".into())),
    }
}

/// Who may call a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Task,
    Operator,
    Both,
}

/// A tool as listed to clients.
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub audience: Audience,
    pub read_only: bool,
    schema: fn() -> Value,
}

impl ToolSpec {
    /// The JSON Schema of the tool's arguments.
    pub fn input_schema(&self) -> Value {
        (self.schema)()
    }
    fn serves(&self, c: &Caller) -> bool {
        matches!(
            (self.audience, c),
            (Audience::Both, _) | (Audience::Task, Caller::Task { .. }) | (Audience::Operator, Caller::Operator { .. })
        )
    }
}

fn obj(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}
fn text(desc: &str, max: usize) -> Value {
    json!({"type": "string", "description": desc, "maxLength": max})
}

// Sizes an agent may send; larger is refused, never truncated.
const MAX_SUMMARY: usize = 2_000;
const MAX_QUESTION: usize = 4_000;
const MAX_MEMORY: usize = 8_000;
const MAX_QUERY: usize = 2_000;
const MAX_MCP_DESCRIPTION: usize = 64 * 1024;
const MAX_COMMENT: usize = 64 * 1024;

pub static TOOLS: &[ToolSpec] = &[
    ToolSpec {
        name: "create_task",
        description: "Create a task. From a task token it is a subtask of your task: it inherits your task's product, repository and approval policy, and its budget comes out of what is left of yours. Returns the new task's id (the same id again for the same title and description).",
        audience: Audience::Both,
        read_only: false,
        schema: || {
            obj(
                json!({
                    "title": text("What to do, in one line", crate::MAX_TITLE_BYTES),
                    "description": text("Details, acceptance criteria", MAX_MCP_DESCRIPTION),
                    "kind": text("Task type: build, research, deploy, marketing …", 64),
                    "role": text("The role the task needs (builder, research, …)", 64),
                    "assigned_to": text("An agent's name; leave out to let REEF route it", 64),
                    "action_class": text("The approval policy's class (e.g. production_deploy); a subtask's may not be less guarded than its parent's", 64),
                    "priority": {"type": "integer", "minimum": -100, "maximum": 100},
                    "budget_usd": {"type": "number", "minimum": 0, "description": "Budget in USD; from a task token it must fit in what is left of yours"},
                    "depends_on": {"type": "array", "items": {"type": "string"}, "maxItems": 20, "description": "Ids of tasks that must be done first"},
                    "idempotency_key": text("The same key returns the same task", 128),
                    "product": text("Operator tokens only: the product the task is for", 64),
                }),
                &["title"],
            )
        },
    },
    ToolSpec {
        name: "task_status",
        description: "A task's status, result, error, recent comments, subtasks, approvals and budget. Without task_id: your own task.",
        audience: Audience::Both,
        read_only: true,
        schema: || obj(json!({"task_id": text("Your task or one of its subtasks", 64)}), &[]),
    },
    ToolSpec {
        name: "add_comment",
        description: "Add a comment to your task's thread (or a subtask's). The operator and the next attempt read it.",
        audience: Audience::Both,
        read_only: false,
        schema: || obj(json!({"task_id": text("Default: your task", 64), "body": text("The comment", MAX_COMMENT)}), &["body"]),
    },
    ToolSpec {
        name: "search_memory",
        description: "Search the factory's memory (past results, research, notes) by meaning.",
        audience: Audience::Both,
        read_only: true,
        schema: || {
            obj(
                json!({
                    "query": text("What you are looking for", MAX_QUERY),
                    "k": {"type": "integer", "minimum": 1, "maximum": 20},
                    "product": text("Only this product's memories", 64),
                    "kind": text("Only this kind (task_result, research, note, …)", 32),
                }),
                &["query"],
            )
        },
    },
    ToolSpec {
        name: "remember",
        description: "Write a note to the factory's memory, under your task's product, for later tasks to find.",
        audience: Audience::Both,
        read_only: false,
        schema: || obj(json!({"content": text("The note", MAX_MEMORY), "kind": text("Default: note", 32)}), &["content"]),
    },
    ToolSpec {
        name: "graph_neighbors",
        description: "Entities related to one in the knowledge graph (products, agents, repositories, customers …).",
        audience: Audience::Both,
        read_only: true,
        schema: || {
            obj(
                json!({"entity": text("An entity id, e.g. entity:product:quickform", 200), "depth": {"type": "integer", "minimum": 1, "maximum": 3}}),
                &["entity"],
            )
        },
    },
    ToolSpec {
        name: "request_approval",
        description: "Ask the operator to approve an action before you take it. Returns a ticket at once; then stop and end your turn: the task waits in awaiting_approval and REEF runs it again with the decision in its comments.",
        audience: Audience::Task,
        read_only: false,
        schema: || {
            obj(
                json!({"action_class": text("The policy's class of the action, e.g. customer_message", 64), "summary": text("Exactly what you want to do, for the operator", MAX_SUMMARY)}),
                &["action_class", "summary"],
            )
        },
    },
    ToolSpec {
        name: "ask_operator",
        description: "Ask the operator a question you cannot answer yourself. Returns a ticket at once; then stop and end your turn: the task waits in needs_human and REEF runs it again with the answer in its comments.",
        audience: Audience::Task,
        read_only: false,
        schema: || obj(json!({"question": text("The question", MAX_QUESTION)}), &["question"]),
    },
    ToolSpec {
        name: "report_progress",
        description: "Tell the operator how far you are (shown live in REEF's window).",
        audience: Audience::Task,
        read_only: false,
        schema: || obj(json!({"message": text("What you did or are doing", MAX_SUMMARY), "percent": {"type": "integer", "minimum": 0, "maximum": 100}}), &["message"]),
    },
    ToolSpec {
        name: "list_approvals",
        description: "Approval requests (default: the pending ones), newest first.",
        audience: Audience::Operator,
        read_only: true,
        schema: || {
            obj(
                json!({"status": {"type": "string", "enum": ["pending", "approved", "rejected", "revision_requested", "expired"]}, "limit": {"type": "integer", "minimum": 1, "maximum": 100}}),
                &[],
            )
        },
    },
    ToolSpec {
        name: "decide_approval",
        description: "Approve, reject or send back (revise) a pending approval request. Reject and revise need a reason.",
        audience: Audience::Operator,
        read_only: false,
        schema: || {
            obj(
                json!({"approval_id": text("The request's id", 64), "decision": {"type": "string", "enum": ["approve", "reject", "revise"]}, "reason": text("Why (needed for reject and revise)", MAX_SUMMARY)}),
                &["approval_id", "decision"],
            )
        },
    },
    ToolSpec {
        name: "answer_question",
        description: "Answer a task's question to the operator (a task in needs_human); the task goes back to its agent with the answer.",
        audience: Audience::Operator,
        read_only: false,
        schema: || obj(json!({"task_id": text("The task", 64), "answer": text("The answer", MAX_QUESTION)}), &["task_id", "answer"]),
    },
];

/// The tools `caller` may use.
pub fn tools_for(caller: &Caller) -> Vec<&'static ToolSpec> {
    TOOLS.iter().filter(|t| t.serves(caller)).collect()
}

/// A resource as listed to clients: (uri, name, description).
pub fn resources_for(caller: &Caller) -> Vec<(&'static str, &'static str, &'static str)> {
    match caller {
        Caller::Task { .. } => vec![
            ("reef://task", "Your task", "The task this token works on: status, thread, subtasks, approvals, budget"),
            ("reef://caps", "Caps", "Today's spend against the factory's and each agent's cap, and what is left of your task's budget"),
        ],
        Caller::Operator { .. } => vec![
            ("reef://caps", "Caps", "Today's spend against the factory's and each agent's cap"),
            ("reef://approvals", "Pending approvals", "Approval requests waiting for a decision"),
        ],
    }
}

fn args<T: DeserializeOwned>(tool: &str, v: Value) -> ToolResult<T> {
    let v = if v.is_null() { json!({}) } else { v };
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            ToolError::Invalid(format!("{tool}: {}", e.inner()))
        } else {
            ToolError::Invalid(format!("{tool}: {path}: {}", e.inner()))
        }
    })
}

/// Refuses empty (when required), oversize and NUL-bearing text, naming the field.
fn check_text(field: &str, s: &str, max: usize, required: bool) -> ToolResult<()> {
    if required && s.trim().is_empty() {
        return Err(ToolError::Invalid(format!("{field} is empty")));
    }
    if s.len() > max {
        return Err(ToolError::Invalid(format!("{field} is {} bytes; the limit is {max}", s.len())));
    }
    if s.contains('\0') {
        return Err(ToolError::Invalid(format!("{field} contains a NUL byte")));
    }
    Ok(())
}

fn check_name(field: &str, s: &str, max: usize) -> ToolResult<()> {
    if s.is_empty() || s.len() > max || !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')) {
        return Err(ToolError::Invalid(format!("{field} {s:?} is not a name (letters, digits, _ - . :, at most {max})")));
    }
    Ok(())
}

/// How strictly a gate guards, least first.
fn strictness(g: Gate) -> u8 {
    match g {
        Gate::Auto => 0,
        Gate::NotifyAfter => 1,
        Gate::ApproveBefore => 2,
        Gate::NeverAuto => 3,
    }
}

fn clip(v: &Value, max: usize) -> Value {
    let s = v.to_string();
    if s.len() <= max {
        v.clone()
    } else {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        json!({"truncated": format!("{}…", &s[..cut]), "bytes": s.len()})
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateArgs {
    title: String,
    #[serde(default)]
    description: String,
    kind: Option<String>,
    role: Option<String>,
    assigned_to: Option<String>,
    action_class: Option<String>,
    #[serde(default)]
    priority: i64,
    budget_usd: Option<f64>,
    #[serde(default)]
    depends_on: Vec<String>,
    idempotency_key: Option<String>,
    product: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskArg {
    task_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentArgs {
    task_id: Option<String>,
    body: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    query: String,
    k: Option<usize>,
    product: Option<String>,
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RememberArgs {
    content: String,
    kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GraphArgs {
    entity: String,
    depth: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalArgs {
    action_class: String,
    summary: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuestionArgs {
    question: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgressArgs {
    message: String,
    percent: Option<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListApprovalsArgs {
    status: Option<ApprovalStatus>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum DecisionArg {
    Approve,
    Reject,
    Revise,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideArgs {
    approval_id: String,
    decision: DecisionArg,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerArgs {
    task_id: String,
    answer: String,
}

/// The tools, bound to a factory (and the memory index, when this host has an embedder).
#[derive(Clone)]
pub struct Toolbox {
    pub factory: Factory,
    pub memory: Option<MemoryIndex>,
}

impl Toolbox {
    pub fn new(factory: Factory, memory: Option<MemoryIndex>) -> Self {
        Self { factory, memory }
    }

    /// Resolves the token, runs the tool, and audits the call whatever its outcome.
    pub async fn call(&self, token: &str, tool: &str, arguments: Value) -> ToolResult<Value> {
        let caller = match resolve(&self.factory, token).await {
            Ok(c) => c,
            Err(e) => {
                let name: String = tool.chars().take(64).collect();
                self.record("mcp:unauthenticated", &name, "-", &arguments, Some(&e)).await;
                return Err(e);
            }
        };
        self.call_as(&caller, tool, arguments).await
    }

    /// Runs one tool for an already resolved caller, and audits it.
    pub async fn call_as(&self, caller: &Caller, tool: &str, arguments: Value) -> ToolResult<Value> {
        let r = match TOOLS.iter().find(|t| t.name == tool) {
            None => Err(ToolError::UnknownTool(tool.chars().take(64).collect())),
            Some(spec) if !spec.serves(caller) => Err(ToolError::OutOfScope(match caller {
                Caller::Task { .. } => format!("{tool} is for the operator's clients, not for agents"),
                Caller::Operator { .. } => format!("{tool} is for an agent working on a task"),
            })),
            Some(_) => self.dispatch(caller, tool, arguments.clone()).await,
        };
        // What the call is about: the caller's task, else the task or approval it names.
        let named = |k: &str| arguments.get(k).and_then(|v| v.as_str()).map(|s| s.chars().take(64).collect::<String>());
        let subject = caller.task_id().map(String::from).or_else(|| named("task_id")).or_else(|| named("approval_id"));
        let name: String = tool.chars().take(64).collect();
        self.record(&caller.actor(), &name, subject.as_deref().unwrap_or("-"), &arguments, r.as_ref().err()).await;
        if let (Err(e), true) = (&r, r.as_ref().err().is_some_and(ToolError::is_refusal)) {
            let _ = self
                .factory
                .event(
                    "mcp.refused",
                    &caller.actor(),
                    subject.as_deref(),
                    json!({"tool": name, "code": e.code(), "message": e.to_string()}),
                )
                .await;
        }
        r
    }

    async fn record(&self, actor: &str, tool: &str, subject: &str, arguments: &Value, err: Option<&ToolError>) {
        let action = if err.is_some() { format!("mcp.{tool}.refused") } else { format!("mcp.{tool}") };
        let new = json!({"args": clip(arguments, 2048), "code": err.map(|e| e.code())});
        let reason = err.map(|e| e.to_string());
        if let Err(e) = self.factory.audit(actor, &action, subject, Value::Null, new, reason.as_deref()).await {
            tracing::warn!(error = %e, tool, "could not audit an MCP call");
        }
    }

    async fn dispatch(&self, c: &Caller, tool: &str, a: Value) -> ToolResult<Value> {
        match tool {
            "create_task" => self.create_task(c, args(tool, a)?).await,
            "task_status" => {
                let t: TaskArg = args(tool, a)?;
                let task = self.readable(c, t.task_id.as_deref()).await?;
                self.status_of(&task).await
            }
            "add_comment" => self.add_comment(c, args(tool, a)?).await,
            "search_memory" => self.search(c, args(tool, a)?).await,
            "remember" => self.remember(c, args(tool, a)?).await,
            "graph_neighbors" => self.graph(args(tool, a)?).await,
            "request_approval" => self.request_approval(c, args(tool, a)?).await,
            "ask_operator" => self.ask_operator(c, args(tool, a)?).await,
            "report_progress" => self.progress(c, args(tool, a)?).await,
            "list_approvals" => {
                let l: ListApprovalsArgs = args(tool, a)?;
                let items = self
                    .factory
                    .ports
                    .approvals
                    .list(Some(l.status.unwrap_or(ApprovalStatus::Pending)), l.limit.unwrap_or(20).min(100))
                    .await?;
                Ok(json!({"approvals": items.items.iter().map(approval_json).collect::<Vec<_>>()}))
            }
            "decide_approval" => {
                let d: DecideArgs = args(tool, a)?;
                check_name("approval_id", &d.approval_id, 64)?;
                if let Some(r) = &d.reason {
                    check_text("reason", r, MAX_SUMMARY, false)?;
                }
                let decision = match d.decision {
                    DecisionArg::Approve => Decision::Approve,
                    DecisionArg::Reject => Decision::Reject,
                    DecisionArg::Revise => Decision::Revise,
                };
                let who = format!("{} (mcp)", c.actor());
                let a = self.factory.decide(&d.approval_id, decision, &who, d.reason.as_deref()).await?;
                Ok(approval_json(&a))
            }
            "answer_question" => {
                let q: AnswerArgs = args(tool, a)?;
                check_name("task_id", &q.task_id, 64)?;
                check_text("answer", &q.answer, MAX_QUESTION, true)?;
                let t = self.factory.answer(&q.task_id, &format!("{} (mcp)", c.actor()), &q.answer).await?;
                Ok(json!({"task_id": t.id, "status": t.status}))
            }
            other => Err(ToolError::UnknownTool(other.chars().take(64).collect())),
        }
    }

    /// The caller's own task, which must still be live.
    async fn own(&self, c: &Caller) -> ToolResult<Task> {
        let Some(id) = c.task_id() else { return Err(ToolError::OutOfScope("this needs a task token".into())) };
        let t = self.factory.ports.tasks.get(id).await?;
        if t.status.is_terminal() {
            return Err(ToolError::OutOfScope(format!("task {id} is {}: its token no longer acts", t.status)));
        }
        Ok(t)
    }

    /// A task the caller may read or comment on: any for an operator; for a task token its own
    /// task or one below it.
    async fn readable(&self, c: &Caller, id: Option<&str>) -> ToolResult<Task> {
        let f = &self.factory;
        match (c, id) {
            (Caller::Operator { .. }, None) => Err(ToolError::Invalid("task_id is required with an operator token".into())),
            (Caller::Operator { .. }, Some(id)) => {
                check_name("task_id", id, 64)?;
                Ok(f.ports.tasks.get(id).await?)
            }
            (Caller::Task { task_id, .. }, None) => Ok(f.ports.tasks.get(task_id).await?),
            (Caller::Task { task_id, .. }, Some(id)) => {
                check_name("task_id", id, 64)?;
                if id == task_id {
                    return Ok(f.ports.tasks.get(id).await?);
                }
                let refuse =
                    || ToolError::OutOfScope(format!("task {id} is not yours: this token acts on task {task_id} and its subtasks only"));
                let t =
                    f.ports.tasks.get(id).await.map_err(|e| if matches!(e, StoreError::NotFound { .. }) { refuse() } else { e.into() })?;
                if self.ancestors(&t, f.config.mcp.max_depth + 1).await.contains(task_id) {
                    Ok(t)
                } else {
                    Err(refuse())
                }
            }
        }
    }

    /// The tasks directly below `t`.
    async fn children(&self, t: &Task) -> ToolResult<Vec<Task>> {
        let q = TaskQuery { parent_id: Some(t.id.clone()), limit: Some(10_000), ..Default::default() };
        Ok(self.factory.ports.tasks.list(&q).await?.items)
    }

    /// The ids above `t`, nearest first, at most `max` of them.
    async fn ancestors(&self, t: &Task, max: u32) -> Vec<String> {
        let mut v = vec![];
        let mut cur = t.parent_id.clone();
        while let Some(p) = cur.filter(|_| v.len() < max as usize) {
            cur = self.factory.ports.tasks.get(&p).await.ok().and_then(|x| x.parent_id);
            v.push(p);
        }
        v
    }

    /// The task's budget: (cap, what is left after its spend, reservations and its subtasks' budgets).
    async fn budget_left(&self, t: &Task, children: &[Task]) -> ToolResult<(Usd, Usd)> {
        let f = &self.factory;
        let cap = t.budget_usd.unwrap_or(f.config.task_default_cap);
        let totals = f.ports.ledger.totals(&[ScopeKey::task(&t.id)]).await?;
        let used = totals.first().map(|x| x.spent + x.reserved).unwrap_or_default();
        let allotted: Usd = children.iter().map(|c| c.budget_usd.unwrap_or(f.config.task_default_cap)).sum();
        Ok((cap, cap - used - allotted))
    }

    async fn create_task(&self, c: &Caller, a: CreateArgs) -> ToolResult<Value> {
        let f = &self.factory;
        check_text("title", &a.title, crate::MAX_TITLE_BYTES, true)?;
        check_text("description", &a.description, MAX_MCP_DESCRIPTION, false)?;
        for (field, v) in [
            ("kind", &a.kind),
            ("role", &a.role),
            ("assigned_to", &a.assigned_to),
            ("action_class", &a.action_class),
            ("product", &a.product),
        ] {
            if let Some(v) = v {
                check_name(field, v, 64)?;
            }
        }
        if !(-100..=100).contains(&a.priority) {
            return Err(ToolError::Invalid(format!("priority {} is outside -100..100", a.priority)));
        }
        if let Some(b) = a.budget_usd {
            if !b.is_finite() || b < 0.0 {
                return Err(ToolError::Invalid(format!("budget_usd {b} is not a non-negative amount")));
            }
        }
        if a.depends_on.len() > 20 {
            return Err(ToolError::Invalid(format!("depends_on names {} tasks; the limit is 20", a.depends_on.len())));
        }
        for d in &a.depends_on {
            check_name("depends_on", d, 64)?;
            f.ports.tasks.get(d).await.map_err(|e| match e {
                StoreError::NotFound { .. } => ToolError::Invalid(format!("depends_on: there is no task {d}")),
                e => e.into(),
            })?;
        }
        if let Some(k) = &a.idempotency_key {
            check_text("idempotency_key", k, 128, true)?;
        }
        let live = f.live().await?;
        if let Some(agent) = &a.assigned_to {
            if live.agent(agent).is_none() {
                return Err(ToolError::Invalid(format!(
                    "assigned_to: there is no agent {agent:?} (agents: {})",
                    live.agents.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
        }
        let mut new = NewTask {
            title: a.title.clone(),
            description: a.description.clone(),
            priority: a.priority,
            assigned_to: a.assigned_to.clone(),
            role: a.role.clone(),
            kind: a.kind.clone(),
            action_class: a.action_class.clone(),
            depends_on: a.depends_on.clone(),
            ..Default::default()
        };
        match c {
            Caller::Operator { .. } => {
                new.product = a.product.clone();
                new.budget_usd = a.budget_usd.map(Usd::from_dollars);
                new.idempotency_key = a.idempotency_key.clone();
            }
            Caller::Task { .. } => {
                let parent = self.own(c).await?;
                if a.product.is_some() && a.product != parent.product {
                    return Err(ToolError::Policy(format!(
                        "a subtask inherits its parent's product ({}); product {:?} refused",
                        parent.product.as_deref().unwrap_or("none"),
                        a.product.as_deref().unwrap_or_default()
                    )));
                }
                // The parent's gate binds its subtasks: none may run less guarded than it.
                let parent_gate = live.gate(parent.action_class.as_deref());
                let class = a.action_class.clone().or(parent.action_class.clone());
                let gate = live.gate(class.as_deref());
                if strictness(gate) < strictness(parent_gate) {
                    return Err(ToolError::Policy(format!(
                        "action class {:?} ({}) is less guarded than the parent's {:?} ({}): a subtask inherits its parent's approval policy",
                        class.as_deref().unwrap_or(""),
                        gate.as_str(),
                        parent.action_class.as_deref().unwrap_or(""),
                        parent_gate.as_str()
                    )));
                }
                // The new task sits one below the parent, which sits below its ancestors.
                let depth = 1 + self.ancestors(&parent, f.config.mcp.max_depth).await.len() as u32;
                if depth > f.config.mcp.max_depth {
                    return Err(ToolError::Policy(format!(
                        "subtasks may go {} levels below their root task; this one would be deeper (mcp.max_depth)",
                        f.config.mcp.max_depth
                    )));
                }
                let key = format!(
                    "mcp:{}:{}",
                    parent.id,
                    a.idempotency_key.clone().unwrap_or_else(|| sha(&format!("{}\n{}", a.title, a.description))[..24].to_string())
                );
                // The same subtask asked for twice (a retried attempt) is the one already made.
                let siblings = self.children(&parent).await?;
                if let Some(t) = siblings.iter().find(|t| t.idempotency_key.as_deref() == Some(key.as_str())) {
                    return Ok(
                        json!({"task_id": t.id, "status": t.status, "created": false, "budget_usd": t.budget_usd.map(|b| b.dollars())}),
                    );
                }
                if siblings.len() as u32 >= f.config.mcp.max_subtasks {
                    return Err(ToolError::Policy(format!(
                        "task {} already has {} subtasks, the most one task may create (mcp.max_subtasks)",
                        parent.id,
                        siblings.len()
                    )));
                }
                let (cap, left) = self.budget_left(&parent, &siblings).await?;
                let want = a.budget_usd.map(Usd::from_dollars).unwrap_or_else(|| {
                    if left < f.config.task_default_cap {
                        left
                    } else {
                        f.config.task_default_cap
                    }
                });
                if left.micros() <= 0 || want > left {
                    return Err(ToolError::OverBudget(format!(
                        "subtask budget {want} is more than task {}'s budget has left: {} of {cap} (spent, reserved and given to other subtasks)",
                        parent.id,
                        if left.micros() < 0 { Usd(0) } else { left },
                    )));
                }
                new.product = parent.product.clone();
                new.parent_id = Some(parent.id.clone());
                new.action_class = class;
                new.budget_usd = Some(want);
                new.idempotency_key = Some(key);
                new.repository = parent.work_products.repository.clone();
            }
        }
        new.validate().map_err(ToolError::Invalid)?;
        let (task, created) = f.ports.tasks.create(new, f.now()).await?;
        if created {
            f.announce_created(&task, &c.actor()).await?;
        }
        Ok(json!({
            "task_id": task.id, "status": task.status, "created": created, "product": task.product,
            "parent_id": task.parent_id, "action_class": task.action_class, "budget_usd": task.budget_usd.map(|b| b.dollars()),
        }))
    }

    async fn status_of(&self, t: &Task) -> ToolResult<Value> {
        let f = &self.factory;
        let children = self.children(t).await?;
        let approvals = f.ports.approvals.for_task(&t.id).await?;
        let (cap, left) = self.budget_left(t, &children).await?;
        let comments: Vec<Value> =
            t.comments.iter().rev().take(20).rev().map(|c| json!({"author": c.author, "body": c.body, "at": fmt_ts(&c.at)})).collect();
        Ok(json!({
            "id": t.id, "title": t.title, "description": t.description, "status": t.status, "product": t.product,
            "assigned_to": t.assigned_to, "action_class": t.action_class, "parent_id": t.parent_id, "attempts": t.attempts,
            "result": t.result, "error": t.error, "comments": comments,
            "subtasks": children.iter().take(200).map(|c| json!({"id": c.id, "title": c.title, "status": c.status, "result": c.result})).collect::<Vec<_>>(),
            "approvals": approvals.iter().map(approval_json).collect::<Vec<_>>(),
            "budget": {"cap_usd": cap.dollars(), "left_usd": left.dollars()},
        }))
    }

    async fn add_comment(&self, c: &Caller, a: CommentArgs) -> ToolResult<Value> {
        check_text("body", &a.body, MAX_COMMENT, true)?;
        let t = self.readable(c, a.task_id.as_deref()).await?;
        if t.status.is_terminal() {
            return Err(ToolError::Store(StoreError::Conflict(format!("task {} is {}; its thread is closed", t.id, t.status))));
        }
        let t = self.factory.comment(&t.id, &c.actor(), &a.body).await?;
        Ok(json!({"task_id": t.id, "comments": t.comments.len()}))
    }

    fn index(&self) -> ToolResult<&MemoryIndex> {
        self.memory
            .as_ref()
            .ok_or_else(|| ToolError::Unavailable("this REEF has no embedder, so memory cannot be searched or written here".into()))
    }

    async fn search(&self, _c: &Caller, a: SearchArgs) -> ToolResult<Value> {
        check_text("query", &a.query, MAX_QUERY, true)?;
        for (field, v) in [("product", &a.product), ("kind", &a.kind)] {
            if let Some(v) = v {
                check_name(field, v, 64)?;
            }
        }
        let k = a.k.unwrap_or(5);
        if !(1..=20).contains(&k) {
            return Err(ToolError::Invalid(format!("k {k} is outside 1..20")));
        }
        let filter = MemoryFilter { product: a.product, kind: a.kind, ..Default::default() };
        let r = self.index()?.search(&a.query, &filter, k).await.map_err(memory_err)?;
        Ok(json!({
            "method": r.method,
            "hits": r.hits.iter().map(|h| json!({
                "id": h.doc.id, "score": h.score, "kind": h.doc.kind, "product": h.doc.product, "agent": h.doc.agent,
                "content": h.doc.content.chars().take(2000).collect::<String>(),
            })).collect::<Vec<_>>(),
        }))
    }

    async fn remember(&self, c: &Caller, a: RememberArgs) -> ToolResult<Value> {
        check_text("content", &a.content, MAX_MEMORY, true)?;
        let kind = a.kind.unwrap_or_else(|| "note".into());
        check_name("kind", &kind, 32)?;
        let (task, product) = match c {
            Caller::Task { .. } => {
                let t = self.own(c).await?;
                (Some(t.id.clone()), t.product.clone())
            }
            Caller::Operator { .. } => (None, None),
        };
        let id = format!("mcp:{}:{}", task.as_deref().unwrap_or("operator"), &sha(&a.content)[..24]);
        let agent = match c {
            Caller::Task { agent, .. } => Some(agent.clone()),
            Caller::Operator { .. } => None,
        };
        let n = self
            .index()?
            .remember(vec![NewMemory {
                id: id.clone(),
                content: a.content,
                kind,
                agent,
                product,
                created_at: self.factory.now(),
                metadata: json!({"task_id": task, "source": "mcp", "by": c.actor()}),
            }])
            .await
            .map_err(memory_err)?;
        Ok(json!({"id": id, "written": n}))
    }

    async fn graph(&self, a: GraphArgs) -> ToolResult<Value> {
        check_name("entity", &a.entity, 200)?;
        let depth = a.depth.unwrap_or(1);
        if !(1..=3).contains(&depth) {
            return Err(ToolError::Invalid(format!("depth {depth} is outside 1..3")));
        }
        let start = if a.entity.starts_with("entity:") { a.entity } else { format!("entity:{}", a.entity) };
        let t = self.factory.ports.graph.traverse(&start, depth).await?;
        Ok(json!({
            "start": t.start,
            "nodes": t.nodes.iter().take(200).map(|(e, d)| json!({"id": e.id, "type": e.kind, "name": e.name, "depth": d})).collect::<Vec<_>>(),
            "edges": t.edges.iter().take(400).map(|r| json!({"from": r.from, "to": r.to, "type": r.kind})).collect::<Vec<_>>(),
        }))
    }

    /// Parks the caller's task for an answer: at once when no worker holds it, else through the
    /// wait marker the worker reads when the attempt ends.
    async fn park(&self, t: &Task, wait: TaskStatus, marker: Value, note: Option<&str>) -> ToolResult<()> {
        let f = &self.factory;
        if t.status.is_leased() {
            f.ports.settings.put(&format!("{WAIT_KEY}{}", t.id), marker).await?;
            return Ok(());
        }
        let from = [TaskStatus::Pending, TaskStatus::Backlog, TaskStatus::Blocked];
        if !from.contains(&t.status) {
            return Err(ToolError::Store(StoreError::Conflict(format!("task {} is {}; it cannot wait for an answer now", t.id, t.status))));
        }
        f.ports.tasks.transition(&t.id, &from, wait, note, f.now()).await?;
        Ok(())
    }

    async fn request_approval(&self, c: &Caller, a: ApprovalArgs) -> ToolResult<Value> {
        let f = &self.factory;
        check_name("action_class", &a.action_class, 64)?;
        check_text("summary", &a.summary, MAX_SUMMARY, true)?;
        let t = self.own(c).await?;
        let live = f.live_fresh().await?;
        if live.gate(Some(&a.action_class)) == Gate::NeverAuto {
            return Err(ToolError::Policy(format!(
                "action class {:?} is never automatic: no approval lets an agent do it; a person must (use ask_operator to hand it over)",
                a.action_class
            )));
        }
        let existing = f.ports.approvals.for_task(&t.id).await?;
        if let Some(p) = existing.iter().find(|x| x.in_task && x.status == ApprovalStatus::Pending) {
            if p.action_class == a.action_class {
                return Ok(json!({"ticket": p.id, "status": "pending", "created": false, "next": STOP_NOTE}));
            }
            return Err(ToolError::Policy(format!(
                "task {} already waits for approval {} ({}); one request at a time",
                t.id, p.id, p.action_class
            )));
        }
        let now = f.now();
        let req = NewApproval {
            task_id: t.id.clone(),
            action_class: a.action_class.clone(),
            summary: a.summary.clone(),
            work_products: t.work_products.clone(),
            requested_by: c.actor(),
            expires_at: Some(now + chrono::Duration::from_std(f.config.policy.expiry).unwrap_or_default()),
            attempt: t.attempts + 1,
            in_task: true,
        };
        let ap = f.ports.approvals.request(req, now).await?;
        self.park(
            &t,
            TaskStatus::AwaitingApproval,
            json!({"kind": "approval", "ticket": ap.id, "at": fmt_ts(&now), "attempt": t.attempts}),
            None,
        )
        .await?;
        f.event(
            "approval.requested",
            &c.actor(),
            Some(&t.id),
            json!({"approval": ap.id, "action_class": ap.action_class, "summary": ap.summary, "in_task": true}),
        )
        .await?;
        Ok(json!({"ticket": ap.id, "status": "pending", "created": true, "next": STOP_NOTE}))
    }

    async fn ask_operator(&self, c: &Caller, a: QuestionArgs) -> ToolResult<Value> {
        let f = &self.factory;
        check_text("question", &a.question, MAX_QUESTION, true)?;
        let t = self.own(c).await?;
        let ticket = new_id();
        let now = f.now();
        f.comment(&t.id, &c.actor(), &format!("{QUESTION_PREFIX}{}", a.question)).await?;
        let reason = format!("asked the operator: {}", a.question);
        self.park(
            &t,
            TaskStatus::NeedsHuman,
            json!({"kind": "question", "ticket": ticket, "question": a.question, "at": fmt_ts(&now), "attempt": t.attempts}),
            Some(&reason),
        )
        .await?;
        f.event("task.question", &c.actor(), Some(&t.id), json!({"ticket": ticket, "question": a.question, "alert": true})).await?;
        Ok(json!({"ticket": ticket, "status": "needs_human", "next": STOP_NOTE}))
    }

    async fn progress(&self, c: &Caller, a: ProgressArgs) -> ToolResult<Value> {
        check_text("message", &a.message, MAX_SUMMARY, true)?;
        if a.percent.is_some_and(|p| p > 100) {
            return Err(ToolError::Invalid("percent is above 100".into()));
        }
        let t = self.own(c).await?;
        self.factory.event("task.progress", &c.actor(), Some(&t.id), json!({"message": a.message, "percent": a.percent})).await?;
        Ok(json!({"ok": true}))
    }

    /// A resource's contents as JSON.
    pub async fn read(&self, caller: &Caller, uri: &str) -> ToolResult<Value> {
        let f = &self.factory;
        match (caller, uri) {
            (Caller::Task { .. }, "reef://task") => {
                let t = self.readable(caller, None).await?;
                self.status_of(&t).await
            }
            (_, "reef://caps") => {
                let caps = f.caps_today().await?;
                let mut v = json!({"caps_today": caps.iter().map(|c| json!({"scope": c.scope, "cap_usd": c.cap.dollars(), "spent_usd": c.spent.dollars(), "reserved_usd": c.reserved.dollars()})).collect::<Vec<_>>()});
                if let Caller::Task { task_id, .. } = caller {
                    let t = f.ports.tasks.get(task_id).await?;
                    let (cap, left) = self.budget_left(&t, &self.children(&t).await?).await?;
                    v["task_budget"] = json!({"task": t.id, "cap_usd": cap.dollars(), "left_usd": left.dollars()});
                }
                Ok(v)
            }
            (Caller::Operator { .. }, "reef://approvals") => {
                let l = f.ports.approvals.list(Some(ApprovalStatus::Pending), 100).await?;
                Ok(json!({"approvals": l.items.iter().map(approval_json).collect::<Vec<_>>()}))
            }
            _ => Err(ToolError::Invalid(format!("no resource {:?} for this token", uri.chars().take(200).collect::<String>()))),
        }
    }
}

/// What an agent is told after asking: stop, REEF resumes it with the answer.
const STOP_NOTE: &str =
    "Stop here and end your turn. REEF parks this task until the operator answers, then runs it again with the answer in its comments.";

fn approval_json(a: &Approval) -> Value {
    json!({
        "id": a.id, "task_id": a.task_id, "action_class": a.action_class, "summary": a.summary, "status": a.status,
        "requested_by": a.requested_by, "created_at": fmt_ts(&a.created_at), "decided_by": a.decided_by, "reason": a.reason,
    })
}

fn memory_err(e: crate::memory::MemoryError) -> ToolError {
    match e {
        crate::memory::MemoryError::Store(s) => ToolError::Store(s),
        other => ToolError::Unavailable(other.to_string()),
    }
}

/// The wait an agent asked for during this attempt, if any (for the worker). One left by an
/// earlier attempt (REEF was killed before it parked the task) is dropped: this attempt's agent
/// has seen the request in its task and asks again if it still needs to.
pub async fn waiting(f: &Factory, task_id: &str, attempt: u32) -> StoreResult<Option<(Value, Timestamp)>> {
    let key = format!("{WAIT_KEY}{task_id}");
    let Some(v) = f.ports.settings.get(&key).await? else { return Ok(None) };
    if v["attempt"].as_u64() != Some(attempt as u64) {
        f.ports.settings.delete(&key).await?;
        return Ok(None);
    }
    let at = v["at"].as_str().and_then(|s| parse_ts(s).ok()).unwrap_or_else(|| f.now());
    Ok(Some((v, at)))
}

/// Parks a task whose agent asked for an approval or a person during its attempt: releases the
/// lease into awaiting_approval / needs_human. Returns whether there was anything to park.
pub async fn park_after_attempt(f: &Factory, task: &Task, lease_token: &str) -> StoreResult<bool> {
    let Some((marker, _)) = waiting(f, &task.id, task.attempts).await? else { return Ok(false) };
    let now = f.now();
    let ticket = marker["ticket"].as_str().unwrap_or_default().to_string();
    match marker["kind"].as_str() {
        Some("question") => {
            let q = marker["question"].as_str().unwrap_or_default();
            f.ports.tasks.finish(&task.id, lease_token, Outcome::NeedsHuman { reason: format!("asked the operator: {q}") }, now).await?;
            // Answered while the agent was still finishing: straight back to it.
            let t = f.ports.tasks.get(&task.id).await?;
            if t.open_question().is_none() {
                f.ports.tasks.transition(&task.id, &[TaskStatus::NeedsHuman], TaskStatus::Pending, None, now).await?;
            }
        }
        _ => {
            let leased = [TaskStatus::Claimed, TaskStatus::Running];
            f.ports.tasks.transition(&task.id, &leased, TaskStatus::AwaitingApproval, None, now).await?;
            // Decided while the agent was still finishing: the decision's move did not happen
            // (the task was running), so make it now.
            if let Ok(a) = f.ports.approvals.get(&ticket).await {
                if a.status != ApprovalStatus::Pending {
                    f.ports.tasks.transition(&task.id, &[TaskStatus::AwaitingApproval], TaskStatus::Pending, None, now).await?;
                }
            }
        }
    }
    f.ports.settings.delete(&format!("{WAIT_KEY}{}", task.id)).await?;
    f.event("task.parked", "reef", Some(&task.id), json!({"kind": marker["kind"], "ticket": ticket})).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_parsed_strictly_naming_the_field() {
        let e = args::<CreateArgs>("create_task", json!({"title": "x", "budget": 5})).err().unwrap().to_string();
        assert!(e.contains("unknown field `budget`"), "{e}");
        let e = args::<CreateArgs>("create_task", json!({"title": "x", "budget_usd": "lots"})).err().unwrap().to_string();
        assert!(e.contains("budget_usd"), "{e}");
        let e = args::<CreateArgs>("create_task", json!({})).err().unwrap().to_string();
        assert!(e.contains("missing field `title`"), "{e}");
        assert!(check_text("body", "a\0b", 10, true).is_err());
        assert!(check_text("body", "   ", 10, true).is_err());
        assert!(check_text("body", &"x".repeat(11), 10, true).unwrap_err().to_string().contains("11 bytes"));
        assert!(check_name("action_class", "prod deploy", 64).is_err());
    }

    #[test]
    fn task_tokens_and_operator_tokens_see_different_tools() {
        let task = Caller::Task { task_id: "t".into(), agent: "a".into() };
        let op = Caller::Operator { name: "openclaw".into() };
        let names = |c: &Caller| tools_for(c).iter().map(|t| t.name).collect::<Vec<_>>();
        assert!(names(&task).contains(&"request_approval") && !names(&task).contains(&"decide_approval"));
        assert!(names(&op).contains(&"decide_approval") && !names(&op).contains(&"ask_operator"));
        for t in TOOLS {
            assert_eq!(t.input_schema()["type"], "object", "{}", t.name);
        }
    }
}
