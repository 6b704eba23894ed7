//! The one error the window receives: a `code` it can branch on and a message for people.

use serde::Serialize;

/// The codes are reef-core's own ([`reef_core::ErrorCode`]), typed for the window by its `specta`
/// feature: one list, no mirror here.
pub use reef_core::ErrorCode;

#[derive(Debug, Clone, Serialize, specta::Type, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
}

impl From<reef_core::StoreError> for AppError {
    fn from(e: reef_core::StoreError) -> Self {
        Self { code: e.code(), message: e.to_string() }
    }
}

impl From<reef_core::memory::MemoryError> for AppError {
    fn from(e: reef_core::memory::MemoryError) -> Self {
        Self { code: e.code(), message: e.to_string() }
    }
}

impl AppError {
    pub fn invalid(m: impl Into<String>) -> Self {
        Self { code: ErrorCode::Invalid, message: m.into() }
    }
}

pub type AppResult<T> = Result<T, AppError>;
