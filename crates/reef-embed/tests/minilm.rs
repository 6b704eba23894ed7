//! The in-process model on its real weights: semantic neighbours rank above unrelated text.

use reef_core::embed::Embedder;
use reef_embed::{model_present, MiniLm, MINILM_DIM};
use std::path::PathBuf;

fn model_dir() -> Option<PathBuf> {
    let dir = std::env::var("REEF_EMBED_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/reef/models/all-minilm-l6-v2"));
    if model_present(&dir) {
        return Some(dir);
    }
    // scripts/test.sh fetches the model and sets REEF_REQUIRE_MODEL, so CI never skips this.
    assert!(std::env::var("REEF_REQUIRE_MODEL").is_err(), "REEF_REQUIRE_MODEL is set but the model is not in {}", dir.display());
    eprintln!("SKIPPED: the MiniLM model is not in {} (run scripts/setup-model.sh)", dir.display());
    None
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test]
async fn semantic_neighbours_rank_above_unrelated_text() {
    let Some(dir) = model_dir() else { return };
    let m = MiniLm::new(dir);
    assert!(!m.is_loaded(), "the model loads on first use, not at construction");
    let texts: Vec<String> = [
        "The cat sat on the mat.",
        "A kitten was sleeping on the rug.",
        "Quarterly revenue grew by twelve percent.",
        "Deploy the landing page to Vercel",
        "Publish the marketing site to production hosting",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let v = m.embed(&texts).await.unwrap();
    assert!(m.is_loaded());
    assert_eq!(v.len(), 5);
    for e in &v {
        assert_eq!(e.len(), MINILM_DIM);
        let n: f32 = e.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((n - 1.0).abs() < 1e-3, "vectors are unit length, got {n}");
    }
    let (cat_kitten, cat_revenue) = (cos(&v[0], &v[1]), cos(&v[0], &v[2]));
    assert!(cat_kitten > 0.4 && cat_revenue < 0.2, "cat~kitten {cat_kitten}, cat~revenue {cat_revenue}");
    // No shared words, same meaning: this is what the hashing embedder cannot do.
    let (deploy_publish, deploy_revenue) = (cos(&v[3], &v[4]), cos(&v[3], &v[2]));
    assert!(deploy_publish > deploy_revenue + 0.2, "deploy~publish {deploy_publish}, deploy~revenue {deploy_revenue}");
}

#[tokio::test]
async fn batches_give_the_same_vectors_as_single_texts() {
    let Some(dir) = model_dir() else { return };
    let m = MiniLm::new(dir);
    // Padding in a batch must not change a short text's vector (mean over real tokens only).
    let short = "billing".to_string();
    let long = "a much longer sentence about invoices, subscriptions and the customers who pay them every month".to_string();
    let alone = m.embed(std::slice::from_ref(&short)).await.unwrap().remove(0);
    let batched = m.embed(&[long, short]).await.unwrap().remove(1);
    assert!(cos(&alone, &batched) > 0.9999, "same text, same vector: {}", cos(&alone, &batched));
    assert!(m.embed(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_missing_model_is_a_clear_error_on_first_use() {
    let dir = tempfile_dir();
    let m = MiniLm::new(dir.clone());
    let e = m.embed(&["x".to_string()]).await.unwrap_err();
    assert!(e.contains("config.json") && e.contains("setup-model.sh"), "{e}");
    std::fs::remove_dir_all(dir).ok();
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("reef-embed-missing-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
