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
    /// The store's connection as last announced (none until the store first answered or failed).
    pub store: std::sync::Mutex<Option<crate::bridge::StoreStatus>>,
    /// The memory embedder, made on the first search (its model loads then, not at start-up).
    embedder: std::sync::OnceLock<std::sync::Arc<dyn reef_core::embed::Embedder>>,
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

    pub fn embedder(&self) -> AppResult<std::sync::Arc<dyn reef_core::embed::Embedder>> {
        let f = self.factory()?;
        if let Some(e) = self.embedder.get() {
            return Ok(e.clone());
        }
        let e = reef_host::embedder(&f.config).map_err(|e| AppError::invalid(e.to_string()))?;
        Ok(self.embedder.get_or_init(|| e).clone())
    }

    /// Who acts from this window, even before (or without) a store: for secrets, which may be
    /// what is being fixed.
    pub fn operator_or_host(&self) -> String {
        self.operator().unwrap_or_else(|_| format!("operator:{}", reef_host::host_name()))
    }

    /// Who acts from this window, for the audit log.
    pub fn operator(&self) -> AppResult<String> {
        Ok(self.factory()?.operator())
    }
}
