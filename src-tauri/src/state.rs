//! What the commands share: the factory, once the store is open.

use crate::error::{AppError, AppResult, ErrorCode};
use reef_core::factory::Factory;
use tokio::sync::OnceCell;

#[derive(Default)]
pub struct AppState {
    factory: OnceCell<Factory>,
    /// Why the store could not be opened, for the window's banner.
    pub open_error: std::sync::Mutex<Option<String>>,
    /// Whether this app runs the engine.
    pub engine: std::sync::Mutex<Option<crate::engine::EngineDto>>,
}

impl AppState {
    pub fn set(&self, f: Factory) {
        let _ = self.factory.set(f);
    }

    pub fn factory(&self) -> AppResult<&Factory> {
        self.factory.get().ok_or_else(|| AppError {
            code: ErrorCode::NotReady,
            message: self.open_error.lock().ok().and_then(|e| e.clone()).unwrap_or_else(|| "the store is still opening".into()),
        })
    }

    /// Who acts from this window, for the audit log.
    pub fn operator(&self) -> AppResult<String> {
        Ok(format!("operator:{}", self.factory()?.config.operator))
    }
}
