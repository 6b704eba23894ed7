//! Memory: which embedder, where its model lives, and how much is recalled per task.

use super::{bad, ConfigError, Defaults, FileConfig};
use std::path::PathBuf;

/// Which embedder turns text into vectors for memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedderChoice {
    Auto,
    MiniLm,
    Gateway,
    Hashing,
}

#[derive(Debug, Clone)]
pub struct MemoryConfig {
    pub embedder: EmbedderChoice,
    pub model_dir: PathBuf,
    pub gateway_model: String,
    pub gateway_dimension: usize,
    pub recall: usize,
}

pub fn memory(file: &FileConfig, env: &dyn Fn(&str) -> Option<String>, defaults: &Defaults) -> Result<MemoryConfig, ConfigError> {
    let m = &file.memory;
    let embedder_name = env("REEF_EMBEDDER").filter(|s| !s.is_empty()).or(m.embedder.clone()).unwrap_or_else(|| "auto".into());
    let embedder = match embedder_name.as_str() {
        "auto" => EmbedderChoice::Auto,
        "minilm" => EmbedderChoice::MiniLm,
        "gateway" => EmbedderChoice::Gateway,
        "hashing" => EmbedderChoice::Hashing,
        o => {
            return Err(bad("REEF_EMBEDDER / memory.embedder", format!("{o:?} is not an embedder"), "use auto, minilm, gateway or hashing"))
        }
    };
    let gateway_dimension = match m.gateway_dimension {
        Some(0) => return Err(bad("memory.gateway_dimension", "must be greater than 0", "nomic-embed-text returns 768")),
        Some(d) if d > 8192 => {
            return Err(bad("memory.gateway_dimension", format!("{d} dimensions is more than REEF indexes (8192)"), "check the model"))
        }
        Some(d) => d,
        None => 768,
    };
    Ok(MemoryConfig {
        embedder,
        model_dir: env("REEF_EMBED_MODEL_DIR")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .or(m.model_dir.clone())
            .unwrap_or_else(|| defaults.cache_dir.join("models").join("all-minilm-l6-v2")),
        gateway_model: m.gateway_model.clone().unwrap_or_else(|| "embed".into()),
        gateway_dimension,
        recall: m.recall.unwrap_or(5).min(50),
    })
}
