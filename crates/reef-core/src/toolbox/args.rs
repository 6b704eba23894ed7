//! Arguments: parsed strictly (unknown fields, wrong types, oversize or NUL-bearing text are
//! refused naming the field) before the store is touched.

use super::caller::{ToolError, ToolResult};
use crate::ApprovalStatus;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

pub(super) fn args<T: DeserializeOwned>(tool: &str, v: Value) -> ToolResult<T> {
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
pub(super) fn check_text(field: &str, s: &str, max: usize, required: bool) -> ToolResult<()> {
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

pub(super) fn check_name(field: &str, s: &str, max: usize) -> ToolResult<()> {
    if s.is_empty() || s.len() > max || !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')) {
        return Err(ToolError::Invalid(format!("{field} {s:?} is not a name (letters, digits, _ - . :, at most {max})")));
    }
    Ok(())
}

pub(super) fn clip(v: &Value, max: usize) -> Value {
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
pub(super) struct CreateArgs {
    pub(super) title: String,
    #[serde(default)]
    pub(super) description: String,
    pub(super) kind: Option<String>,
    pub(super) role: Option<String>,
    pub(super) assigned_to: Option<String>,
    pub(super) action_class: Option<String>,
    #[serde(default)]
    pub(super) priority: i64,
    pub(super) budget_usd: Option<f64>,
    #[serde(default)]
    pub(super) depends_on: Vec<String>,
    pub(super) idempotency_key: Option<String>,
    pub(super) product: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TaskArg {
    pub(super) task_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CommentArgs {
    pub(super) task_id: Option<String>,
    pub(super) body: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchArgs {
    pub(super) query: String,
    pub(super) k: Option<usize>,
    pub(super) product: Option<String>,
    pub(super) kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RememberArgs {
    pub(super) content: String,
    pub(super) kind: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GraphArgs {
    pub(super) entity: String,
    pub(super) depth: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ApprovalArgs {
    pub(super) action_class: String,
    pub(super) summary: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct QuestionArgs {
    pub(super) question: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProgressArgs {
    pub(super) message: String,
    pub(super) percent: Option<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListApprovalsArgs {
    pub(super) status: Option<ApprovalStatus>,
    pub(super) limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub(super) enum DecisionArg {
    Approve,
    Reject,
    Revise,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DecideArgs {
    pub(super) approval_id: String,
    pub(super) decision: DecisionArg,
    pub(super) reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AnswerArgs {
    pub(super) task_id: String,
    pub(super) answer: String,
}
