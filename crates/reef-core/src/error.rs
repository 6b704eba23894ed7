//! The one error type every port returns; `code()` is what a UI or script branches on.

use serde::Serialize;

/// What went wrong behind a port. Messages name the thing that was wrong and, where one exists,
/// the fix.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} not found")]
    NotFound { what: String },
    /// The caller no longer holds the lease it acted under (fencing).
    #[error("lease lost on task {task_id}: another worker holds it or it expired")]
    LeaseLost { task_id: String },
    /// A conditional write found the document in another state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A ledger reservation would pass a cap.
    #[error("budget refused: scope {scope} has {spent} spent + {reserved} reserved of cap {cap}; {requested} more does not fit")]
    BudgetRefused { scope: String, cap: crate::Usd, spent: crate::Usd, reserved: crate::Usd, requested: crate::Usd },
    /// A document written by someone else that REEF cannot read. It is left as it is.
    #[error("malformed document {id} in {collection}: {reason}")]
    Malformed { collection: String, id: String, reason: String },
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A change that weakens a guarantee (lowering a risky class's gate) asked without confirming.
    #[error("needs confirmation: {0}")]
    NeedsConfirmation(String),
    /// Vectors of another dimension than the memory index holds.
    #[error("embedding has {got} dimensions but the memory index holds {expected}; run `reef memory reembed` to change models")]
    DimensionMismatch { expected: usize, got: usize },
    /// Resuming a watch from a point the store no longer keeps.
    #[error("watch history lost: resume point {0} is older than the retained change history")]
    HistoryLost(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store error: {0}")]
    Backend(String),
}

/// Stable codes for [`StoreError`], for UIs and `--json` output.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NotFound,
    LeaseLost,
    Conflict,
    BudgetRefused,
    Malformed,
    Invalid,
    NeedsConfirmation,
    DimensionMismatch,
    HistoryLost,
    Unavailable,
    Backend,
    /// A host has not finished opening its store yet (or could not): no store error, the host's.
    NotReady,
}

impl StoreError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::LeaseLost { .. } => ErrorCode::LeaseLost,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::BudgetRefused { .. } => ErrorCode::BudgetRefused,
            Self::Malformed { .. } => ErrorCode::Malformed,
            Self::Invalid(_) => ErrorCode::Invalid,
            Self::NeedsConfirmation(_) => ErrorCode::NeedsConfirmation,
            Self::DimensionMismatch { .. } => ErrorCode::DimensionMismatch,
            Self::HistoryLost(_) => ErrorCode::HistoryLost,
            Self::Unavailable(_) => ErrorCode::Unavailable,
            Self::Backend(_) => ErrorCode::Backend,
        }
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
