//! Embedders turn text into vectors for memory search. This module holds the port and the one
//! implementation that needs no model: feature hashing, used for demo data and as a fallback.
//! Real sentence embeddings (MiniLM in-process, the gateway's `embed` tier) implement the same port.

use async_trait::async_trait;

#[async_trait]
pub trait Embedder: Send + Sync {
    /// A name stored with each memory, so a later `reembed` knows what made the vectors.
    fn name(&self) -> &str;
    fn dimension(&self) -> usize;
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String>;
}

/// The dimension REEF's hashing embedder uses (the demo's memories are made with it).
pub const HASHING_DIM: usize = 384;

/// Signed feature hashing of lower-cased words and word pairs. Not semantic: texts sharing words
/// score high, synonyms do not. Deterministic and instant, so demo data needs no model.
#[derive(Debug, Clone)]
pub struct HashingEmbedder {
    pub dim: usize,
}

/// FNV-1a, 64 bits: a fast, stable hash of text (feature hashing here, content ids elsewhere).
pub fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

impl HashingEmbedder {
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; self.dim];
        let words: Vec<String> = text.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() > 1).map(|w| w.to_lowercase()).collect();
        let mut add = |feat: &str, w: f32| {
            let h = fnv(feat);
            let sign = if h >> 63 == 0 { 1.0 } else { -1.0 };
            v[(h % self.dim as u64) as usize] += sign * w;
        };
        for w in &words {
            add(w, 1.0);
        }
        for p in words.windows(2) {
            add(&format!("{} {}", p[0], p[1]), 0.5);
        }
        if v.iter().all(|x| *x == 0.0) {
            v[0] = 1.0;
        }
        v
    }
}

#[async_trait]
impl Embedder for HashingEmbedder {
    fn name(&self) -> &str {
        "hashing"
    }
    fn dimension(&self) -> usize {
        self.dim
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cos(a: &[f32], b: &[f32]) -> f32 {
        let d: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        d / (a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt())
    }

    #[test]
    fn shared_words_score_higher_than_unrelated_text() {
        let e = HashingEmbedder { dim: 384 };
        let a = e.embed_one("Stripe webhook signature verification failed");
        let b = e.embed_one("verify the Stripe webhook signature");
        let c = e.embed_one("tweet thread about the product launch");
        assert!(cos(&a, &b) > cos(&a, &c) + 0.2, "{} vs {}", cos(&a, &b), cos(&a, &c));
        assert_eq!(a, e.embed_one("Stripe webhook signature verification failed"), "deterministic");
    }
}
