//! all-MiniLM-L6-v2 in-process: a BERT encoder run by candle on the CPU, mean-pooled over the
//! attention mask and L2-normalised, as sentence-transformers does. The model loads once, on
//! first use, and inference runs on the blocking pool so it never stalls the async runtime.

use super::EmbedError;
use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use reef_core::embed::Embedder;
use std::path::PathBuf;
use std::sync::Arc;
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};
use tokio::sync::OnceCell;

pub const MINILM_NAME: &str = "all-minilm-l6-v2";
pub const MINILM_DIM: usize = 384;
/// sentence-transformers' `max_seq_length` for this model; longer text is truncated (memories
/// are chunked well below it).
const MAX_TOKENS: usize = 256;
/// Texts per forward pass: bounds the activation memory of one call.
const BATCH: usize = 32;

struct Loaded {
    model: BertModel,
    tokenizer: Tokenizer,
}

pub struct MiniLm {
    dir: PathBuf,
    loaded: OnceCell<Arc<Loaded>>,
}

impl MiniLm {
    pub fn new(dir: PathBuf) -> Self {
        MiniLm { dir, loaded: OnceCell::new() }
    }

    /// Whether the weights are in memory yet (they load on the first `embed`).
    pub fn is_loaded(&self) -> bool {
        self.loaded.initialized()
    }

    async fn loaded(&self) -> Result<Arc<Loaded>, EmbedError> {
        let dir = self.dir.clone();
        self.loaded
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || load(&dir))
                    .await
                    .map_err(|e| EmbedError::ModelLoad { dir: String::new(), reason: e.to_string() })?
                    .map(Arc::new)
            })
            .await
            .cloned()
    }
}

fn load(dir: &std::path::Path) -> Result<Loaded, EmbedError> {
    let d = dir.display().to_string();
    if let Some(p) = super::missing_model_file(dir) {
        return Err(EmbedError::ModelMissing { dir: d, missing: p.display().to_string() });
    }
    let err = |reason: String| EmbedError::ModelLoad { dir: d.clone(), reason };
    let config: BertConfig = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).map_err(|e| err(e.to_string()))?)
        .map_err(|e| err(format!("config.json: {e}")))?;
    let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).map_err(|e| err(format!("tokenizer.json: {e}")))?;
    tokenizer.with_padding(Some(PaddingParams::default()));
    tokenizer
        .with_truncation(Some(TruncationParams { max_length: MAX_TOKENS, ..Default::default() }))
        .map_err(|e| err(format!("tokenizer truncation: {e}")))?;
    // Read into memory rather than mmap: mapping a file is `unsafe` (it may change under us), and
    // 90 MB read once is cheap next to the model's lifetime.
    let weights = std::fs::read(dir.join("model.safetensors")).map_err(|e| err(format!("model.safetensors: {e}")))?;
    let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu).map_err(|e| err(e.to_string()))?;
    let model = BertModel::load(vb, &config).map_err(|e| err(format!("weights: {e}")))?;
    tracing::info!(dir = %d, "MiniLM embedding model loaded");
    Ok(Loaded { model, tokenizer })
}

fn embed_batch(l: &Loaded, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
    let enc = l.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| e.to_string())?;
    let n = enc.len();
    let len = enc.first().map(|e| e.get_ids().len()).unwrap_or(0);
    let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> { enc.iter().flat_map(|e| f(e).to_vec()).collect() };
    let dev = Device::Cpu;
    let ids = Tensor::from_vec(flat(&|e| e.get_ids()), (n, len), &dev).map_err(|e| e.to_string())?;
    let types = Tensor::from_vec(flat(&|e| e.get_type_ids()), (n, len), &dev).map_err(|e| e.to_string())?;
    let mask = Tensor::from_vec(flat(&|e| e.get_attention_mask()), (n, len), &dev).map_err(|e| e.to_string())?;
    let out = l.model.forward(&ids, &types, Some(&mask)).map_err(|e| e.to_string())?; // (n, len, 384)
                                                                                      // Mean over real tokens only: padding must not dilute short texts.
    let m = mask.to_dtype(DType::F32).and_then(|m| m.unsqueeze(2)).map_err(|e| e.to_string())?;
    let summed = out.broadcast_mul(&m).and_then(|x| x.sum(1)).map_err(|e| e.to_string())?;
    let counts = m.sum(1).and_then(|c| c.clamp(1e-9, f32::MAX)).map_err(|e| e.to_string())?;
    let mean = summed.broadcast_div(&counts).map_err(|e| e.to_string())?;
    let norm = mean
        .sqr()
        .and_then(|x| x.sum_keepdim(1))
        .and_then(|x| x.sqrt())
        .and_then(|x| x.clamp(1e-12, f32::MAX))
        .map_err(|e| e.to_string())?;
    mean.broadcast_div(&norm).and_then(|x| x.to_vec2::<f32>()).map_err(|e| e.to_string())
}

#[async_trait]
impl Embedder for MiniLm {
    fn name(&self) -> &str {
        MINILM_NAME
    }
    fn dimension(&self) -> usize {
        MINILM_DIM
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        if texts.is_empty() {
            return Ok(vec![]);
        }
        let l = self.loaded().await.map_err(|e| e.to_string())?;
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::with_capacity(texts.len());
            for chunk in texts.chunks(BATCH) {
                out.extend(embed_batch(&l, chunk)?);
            }
            if let Some(v) = out.iter().find(|v| v.len() != MINILM_DIM) {
                return Err(format!("the model returned {} dimensions, not {MINILM_DIM}", v.len()));
            }
            Ok(out)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|reason| EmbedError::Inference { embedder: MINILM_NAME.into(), reason }.to_string())
    }
}
