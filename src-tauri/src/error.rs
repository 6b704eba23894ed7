//! The one error the window receives: a `code` it can branch on and a message for people.

use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize, specta::Type, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NotFound,
    LeaseLost,
    Conflict,
    BudgetRefused,
    Malformed,
    Invalid,
    DimensionMismatch,
    HistoryLost,
    Unavailable,
    Backend,
    /// The store is still being opened (or could not be).
    NotReady,
}

#[derive(Debug, Clone, Serialize, specta::Type, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
}

impl From<reef_core::ErrorCode> for ErrorCode {
    fn from(c: reef_core::ErrorCode) -> Self {
        use reef_core::ErrorCode as C;
        match c {
            C::NotFound => ErrorCode::NotFound,
            C::LeaseLost => ErrorCode::LeaseLost,
            C::Conflict => ErrorCode::Conflict,
            C::BudgetRefused => ErrorCode::BudgetRefused,
            C::Malformed => ErrorCode::Malformed,
            C::Invalid => ErrorCode::Invalid,
            C::DimensionMismatch => ErrorCode::DimensionMismatch,
            C::HistoryLost => ErrorCode::HistoryLost,
            C::Unavailable => ErrorCode::Unavailable,
            C::Backend => ErrorCode::Backend,
        }
    }
}

impl From<reef_core::StoreError> for AppError {
    fn from(e: reef_core::StoreError) -> Self {
        Self { code: e.code().into(), message: e.to_string() }
    }
}

impl From<reef_core::memory::MemoryError> for AppError {
    fn from(e: reef_core::memory::MemoryError) -> Self {
        Self { code: e.code().into(), message: e.to_string() }
    }
}

impl AppError {
    pub fn invalid(m: impl Into<String>) -> Self {
        Self { code: ErrorCode::Invalid, message: m.into() }
    }
}

pub type AppResult<T> = Result<T, AppError>;
