//! Wire types of the window's approvals area. The approvals inbox and agents' questions.

use super::*;

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
    pub status: ApprovalStatus,
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
            status: a.status,
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

/// One line the agent printed.
#[derive(Debug, Clone, Serialize, Type)]
pub struct OutputLineDto {
    pub at: String,
    pub line: String,
}

/// What a decision on one approval is made on.
#[derive(Debug, Clone, Serialize, Type)]
pub struct EvidenceDto {
    pub approval: ApprovalDto,
    pub task: Option<TaskDto>,
    pub task_error: Option<String>,
    pub output: Vec<OutputLineDto>,
    pub trace_steps: u32,
    pub cost_usd: f64,
    /// The request as the store holds it, pretty-printed JSON.
    pub raw: String,
}

impl From<&reef_core::factory::Evidence> for EvidenceDto {
    fn from(e: &reef_core::factory::Evidence) -> Self {
        Self {
            approval: (&e.approval).into(),
            task: e.task.as_ref().map(Into::into),
            task_error: e.task_error.clone(),
            output: e.output.iter().map(|(at, l)| OutputLineDto { at: fmt_ts(at), line: l.clone() }).collect(),
            trace_steps: e.trace_steps as u32,
            cost_usd: e.cost.dollars(),
            raw: serde_json::to_string_pretty(&e.raw).unwrap_or_default(),
        }
    }
}
