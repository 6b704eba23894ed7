//! The toolbox behind REEF's MCP server: who a token speaks for, what each tool does, and the
//! rules every call passes — scope, budget, approval policy, audit. The protocol itself (rmcp,
//! stdio, HTTP) lives in the hosts; this module never sees it.
//!
//! Invariants: a task token acts on its own task only (it may also read and comment on the
//! subtasks below it); every call, allowed or refused, leaves an audit entry naming the caller;
//! arguments are parsed strictly (unknown fields, wrong types, oversize or NUL-bearing text are
//! refused naming the field) before the store is touched; tokens are kept in the store only as
//! SHA-256 hashes.

use crate::factory::Factory;
use crate::memory::{MemoryIndex, NewMemory};
use crate::rules::policy::Gate;
use crate::time::fmt_ts;
use crate::*;
use serde_json::{json, Value};

mod args;
mod asks;
mod caller;
mod catalog;
mod knowledge;
mod tasks;

use args::*;
use caller::sha;
pub use caller::{issue_token, issue_token_on_request, resolve, revoke_token, Caller, ToolError, ToolResult, TOKEN_PREFIX};
use catalog::*;
pub use catalog::{resources_for, tools_for, Audience, ToolSpec};

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
        // An agent's words are stored (tasks, comments, questions, approvals, memories) and sent
        // (webhooks): no known secret value goes in with them.
        let mut arguments = arguments;
        if matches!(caller, Caller::Task { .. }) {
            self.factory.redactor.redact_json(&mut arguments);
        }
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
            "graph_neighbors" => self.graph(c, args(tool, a)?).await,
            "request_approval" => self.request_approval(c, args(tool, a)?).await,
            "ask_operator" => self.ask_operator(c, args(tool, a)?).await,
            "report_progress" => self.progress(c, args(tool, a)?).await,
            "wait_for_subtasks" => self.wait_for_subtasks(c).await,
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

pub(super) fn approval_json(a: &Approval) -> Value {
    json!({
        "id": a.id, "task_id": a.task_id, "action_class": a.action_class, "summary": a.summary, "status": a.status,
        "requested_by": a.requested_by, "created_at": fmt_ts(&a.created_at), "decided_by": a.decided_by, "reason": a.reason,
    })
}

pub(super) fn memory_err(e: crate::memory::MemoryError) -> ToolError {
    match e {
        crate::memory::MemoryError::Store(s) => ToolError::Store(s),
        other => ToolError::Unavailable(other.to_string()),
    }
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

    #[test]
    fn the_tools_an_agent_may_be_given_are_the_task_tokens_tools() {
        let task = Caller::Task { task_id: "t".into(), agent: "a".into() };
        let mut served: Vec<&str> = tools_for(&task).iter().map(|t| t.name).collect();
        let mut listed = crate::domain::agent::AGENT_TOOLS.to_vec();
        served.sort();
        listed.sort();
        assert_eq!(served, listed, "domain::agent::AGENT_TOOLS and the catalog's task tools are one list");
    }
}
