//! Approval requests: a task that needs a human waits on one of these.

use crate::time::{ts, ts_opt, Timestamp};
use crate::WorkProducts;
use serde::{Deserialize, Serialize};

#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
    RevisionRequested,
    Expired,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::RevisionRequested => "revision_requested",
            Self::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
    Revise,
}

impl Decision {
    pub fn status(self) -> ApprovalStatus {
        match self {
            Self::Approve => ApprovalStatus::Approved,
            Self::Reject => ApprovalStatus::Rejected,
            Self::Revise => ApprovalStatus::RevisionRequested,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    #[serde(rename = "_id")]
    pub id: String,
    pub task_id: String,
    pub action_class: String,
    pub summary: String,
    #[serde(default)]
    pub work_products: WorkProducts,
    pub requested_by: String,
    #[serde(with = "ts")]
    pub created_at: Timestamp,
    #[serde(default, with = "ts_opt", skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    pub status: ApprovalStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, with = "ts_opt", skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Which attempt of the task this approval covers; a retry past it asks again.
    #[serde(default)]
    pub attempt: u32,
    /// Asked by the agent in the middle of its work (MCP `request_approval`): whatever the
    /// decision, the task resumes with it in its thread instead of being cancelled.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_task: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewApproval {
    pub task_id: String,
    pub action_class: String,
    pub summary: String,
    pub work_products: WorkProducts,
    pub requested_by: String,
    pub expires_at: Option<Timestamp>,
    pub attempt: u32,
    pub in_task: bool,
}

impl NewApproval {
    /// The pending request as first stored.
    pub fn into_approval(self, id: String, now: Timestamp) -> Approval {
        Approval {
            id,
            task_id: self.task_id,
            action_class: self.action_class,
            summary: self.summary,
            work_products: self.work_products,
            requested_by: self.requested_by,
            created_at: now,
            expires_at: self.expires_at,
            status: ApprovalStatus::Pending,
            decided_by: None,
            decided_at: None,
            reason: None,
            attempt: self.attempt,
            in_task: self.in_task,
        }
    }
}
