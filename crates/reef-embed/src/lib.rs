//! reef-embed: the model-backed implementations of core's `Embedder` port — all-MiniLM-L6-v2
//! run in-process with candle, and the LiteLLM gateway's `/v1/embeddings` — and the choice of
//! one from the config. Invariant: an embedder always returns vectors of the dimension it
//! declares, or an error; it never hands the memory index a vector of another size.

mod gateway;
mod minilm;

pub use gateway::GatewayEmbedder;
pub use minilm::{MiniLm, MINILM_DIM, MINILM_NAME};

use reef_core::config::{Config, EmbedderChoice};
use reef_core::embed::{Embedder, HashingEmbedder, HASHING_DIM};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(
        "the MiniLM model files are not in {dir} ({missing} is missing); run `bash scripts/setup-model.sh` or set REEF_EMBED_MODEL_DIR"
    )]
    ModelMissing { dir: String, missing: String },
    #[error("loading the MiniLM model from {dir}: {reason}")]
    ModelLoad { dir: String, reason: String },
    #[error("embedding with {embedder}: {reason}")]
    Inference { embedder: String, reason: String },
    #[error("the gateway's {model} embeddings: {reason}")]
    Gateway { model: String, reason: String },
}

/// The files the in-process model needs, in the order they are checked.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// Whether `dir` holds a usable copy of the MiniLM model files.
pub fn model_present(dir: &Path) -> bool {
    MODEL_FILES.iter().all(|f| dir.join(f).is_file())
}

/// The first missing model file in `dir`, if any.
pub fn missing_model_file(dir: &Path) -> Option<PathBuf> {
    MODEL_FILES.iter().map(|f| dir.join(f)).find(|p| !p.is_file())
}

/// The embedder the config asks for. `auto` means MiniLM when its files are present, else the
/// hashing embedder (with a warning: its neighbours are lexical, not semantic). The model itself
/// loads on the first `embed` call, so a process that never searches memory never pays for it.
pub fn from_config(cfg: &Config) -> Result<Arc<dyn Embedder>, EmbedError> {
    let m = &cfg.memory;
    Ok(match m.embedder {
        EmbedderChoice::Hashing => Arc::new(HashingEmbedder { dim: HASHING_DIM }),
        EmbedderChoice::MiniLm => {
            if let Some(p) = missing_model_file(&m.model_dir) {
                return Err(EmbedError::ModelMissing { dir: m.model_dir.display().to_string(), missing: p.display().to_string() });
            }
            Arc::new(MiniLm::new(m.model_dir.clone()))
        }
        EmbedderChoice::Gateway => {
            Arc::new(GatewayEmbedder::new(&cfg.llm_base_url, cfg.llm_api_key.clone(), &m.gateway_model, m.gateway_dimension))
        }
        EmbedderChoice::Auto => {
            if model_present(&m.model_dir) {
                Arc::new(MiniLm::new(m.model_dir.clone()))
            } else {
                tracing::warn!(
                    dir = %m.model_dir.display(),
                    "MiniLM model files not found; memory uses the hashing embedder (word overlap, not meaning) — run scripts/setup-model.sh"
                );
                Arc::new(HashingEmbedder { dim: HASHING_DIM })
            }
        }
    })
}
