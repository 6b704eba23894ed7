//! The LiteLLM gateway's `/v1/embeddings` (the `embed` tier: Ollama's nomic-embed-text in
//! production). The dimension is configured, not guessed, and every answer is checked against it:
//! a model swapped behind the gateway must not slip vectors of another size into the index.

use super::EmbedError;
use async_openai::types::embeddings::{CreateEmbeddingRequest, CreateEmbeddingResponse, EmbeddingInput};
use async_trait::async_trait;
use reef_core::embed::Embedder;
use reef_core::secret::Secret;
use std::time::Duration;

/// Inputs per request: keeps one request well inside gateways' body limits.
const BATCH: usize = 64;

pub struct GatewayEmbedder {
    url: String,
    key: Option<Secret>,
    model: String,
    dim: usize,
    name: String,
    http: reqwest::Client,
}

impl GatewayEmbedder {
    pub fn new(base_url: &str, key: Option<Secret>, model: &str, dim: usize) -> Self {
        let base = base_url.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        GatewayEmbedder {
            url: format!("{base}/v1/embeddings"),
            key,
            model: model.to_string(),
            dim,
            name: format!("gateway:{model}"),
            http: reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap_or_default(),
        }
    }

    async fn call(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let err = |reason: String| EmbedError::Gateway { model: self.model.clone(), reason };
        let req =
            CreateEmbeddingRequest { model: self.model.clone(), input: EmbeddingInput::StringArray(texts.to_vec()), ..Default::default() };
        let mut rb = self.http.post(&self.url).json(&req);
        if let Some(k) = &self.key {
            rb = rb.bearer_auth(k.expose());
        }
        let resp = rb.send().await.map_err(|e| err(format!("{} unreachable: {e}", self.url)))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| err(e.to_string()))?;
        if !status.is_success() {
            let snippet: String = body.chars().take(300).collect();
            return Err(err(format!("HTTP {status}: {snippet}")));
        }
        let mut parsed: CreateEmbeddingResponse = serde_json::from_str(&body).map_err(|e| err(format!("unexpected answer: {e}")))?;
        if parsed.data.len() != texts.len() {
            return Err(err(format!("asked for {} embeddings, got {}", texts.len(), parsed.data.len())));
        }
        parsed.data.sort_by_key(|d| d.index);
        let mut out = Vec::with_capacity(texts.len());
        for d in parsed.data {
            if d.embedding.len() != self.dim {
                return Err(err(format!(
                    "the model returned {} dimensions but memory.gateway_dimension is {} (fix the config, then `reef memory reembed`)",
                    d.embedding.len(),
                    self.dim
                )));
            }
            out.push(d.embedding);
        }
        Ok(out)
    }
}

#[async_trait]
impl Embedder for GatewayEmbedder {
    fn name(&self) -> &str {
        &self.name
    }
    fn dimension(&self) -> usize {
        self.dim
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(BATCH) {
            out.extend(self.call(chunk).await.map_err(|e| e.to_string())?);
        }
        Ok(out)
    }
}
