//! The catalog: every tool with its description, audience and argument schema, and the
//! resources each kind of caller may read.

use super::caller::Caller;
use serde_json::{json, Value};

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
    pub(super) fn serves(&self, c: &Caller) -> bool {
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
pub(super) const MAX_SUMMARY: usize = 2_000;
pub(super) const MAX_QUESTION: usize = 4_000;
pub(super) const MAX_MEMORY: usize = 8_000;
pub(super) const MAX_QUERY: usize = 2_000;
pub(super) const MAX_MCP_DESCRIPTION: usize = 64 * 1024;
pub(super) const MAX_COMMENT: usize = 64 * 1024;

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
                    "budget_usd": {"type": "number", "minimum": 0, "description": "Budget in USD; from a task token it must fit in what is left of yours (default: half of what is left)"},
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
                json!({"entity": text("An entity id, e.g. product:quickform or agent:rex", 200), "depth": {"type": "integer", "minimum": 1, "maximum": 3}}),
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
        name: "wait_for_subtasks",
        description: "Wait until the subtasks you created have ended (done, failed or cancelled). If any is still open, stop and end your turn: the task waits (blocked) and REEF runs it again when they have all ended; read how with task_status. If none is open it answers their results at once.",
        audience: Audience::Task,
        read_only: false,
        schema: || obj(json!({}), &[]),
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
