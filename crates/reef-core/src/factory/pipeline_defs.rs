//! Products' pipelines as revisions: each edit — in the window, with `reef pipeline set`, or of
//! the config file's `[[products]]` table — is a new revision kept in the store
//! (`pipelines.defs`), so every REEF process runs the same pipeline and an earlier one can be put
//! back.
//!
//! Invariants: a revision is validated as the config file is before it is kept; history is never
//! rewritten (a rollback is a new revision); an edit made against an older revision than the
//! latest is refused (two people editing at once do not undo each other); what the store holds
//! wins over the file until the file's table itself changes; every change is audited and evented.

use super::Factory;
use crate::config::products::{parse_section, section_text};
use crate::config::Pipeline;
use crate::settings::Key;
use crate::*;
use serde::{Deserialize, Serialize};

/// Revisions kept per product (the oldest go first).
pub const REVISIONS_KEPT: usize = 50;
/// Who the config file's revisions are by.
pub const FILE_AUTHOR: &str = "config file";

/// One revision of a product's pipeline: its `[[products]]` table as TOML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineRevision {
    pub revision: u32,
    pub text: String,
    pub author: String,
    /// RFC 3339.
    pub at: String,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Def {
    revisions: Vec<PipelineRevision>,
}

/// A product's revisions in the stored document (empty when absent or unreadable).
fn revisions_in(raw: &serde_json::Map<String, serde_json::Value>, product: &str) -> Vec<PipelineRevision> {
    raw.get(product).and_then(|v| serde_json::from_value::<Def>(v.clone()).ok()).map(|d| d.revisions).unwrap_or_default()
}

fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::Invalid(msg.into())
}

impl Factory {
    async fn raw_pipeline_defs(&self) -> StoreResult<serde_json::Map<String, serde_json::Value>> {
        self.settings_map(Key::PipelineDefs, "product names to pipeline revisions").await
    }

    /// A product's stored revisions, oldest first (empty when none, or when another program
    /// wrote the entry in a shape REEF cannot read — it is then left as it is).
    pub async fn pipeline_revisions(&self, product: &str) -> StoreResult<Vec<PipelineRevision>> {
        Ok(revisions_in(&self.raw_pipeline_defs().await?, product))
    }

    /// The pipeline in force for `product`: its latest stored revision, else the config file's.
    /// A latest revision that does not validate (another program, or another REEF version, wrote
    /// it) is an error, never a quiet fall back to an older one (which could drop its forge or
    /// its protected paths).
    pub async fn pipeline(&self, product: Option<&str>) -> StoreResult<Option<Pipeline>> {
        let Some(name) = product else { return Ok(None) };
        self.in_force(&self.raw_pipeline_defs().await?, name)
    }

    fn in_force(&self, raw: &serde_json::Map<String, serde_json::Value>, name: &str) -> StoreResult<Option<Pipeline>> {
        let Some(r) = revisions_in(raw, name).pop() else { return Ok(self.config.pipeline(Some(name)).cloned()) };
        let bad = |reason: String| StoreError::Malformed {
            collection: "settings".into(),
            id: format!("{}.{name}", Key::PipelineDefs.id()),
            reason,
        };
        match parse_section(&r.text) {
            Ok(p) if p.product == name => Ok(Some(p)),
            Ok(p) => Err(bad(format!("revision {} names product {:?}", r.revision, p.product))),
            Err(e) => {
                Err(bad(format!("revision {} does not validate: {e} (save a corrected one with `reef pipeline set {name}`)", r.revision)))
            }
        }
    }

    /// Every product with a pipeline (the file's and the store's), each as it is in force (the
    /// store's document read once).
    pub async fn all_pipelines(&self) -> StoreResult<Vec<Pipeline>> {
        let raw = self.raw_pipeline_defs().await?;
        let mut names: Vec<String> = self.config.pipelines.iter().map(|p| p.product.clone()).collect();
        for k in raw.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
        let mut out = vec![];
        for n in names {
            // One product's broken revision stops that product's steps (`pipeline`), not the
            // views and loops that list every product.
            match self.in_force(&raw, &n) {
                Ok(Some(p)) => out.push(p),
                Ok(None) => {}
                Err(e) => tracing::warn!(product = %n, error = %e, "a product's pipeline is left out"),
            }
        }
        Ok(out)
    }

    /// The table to edit for `product`: its pipeline in force as TOML, and the latest revision
    /// (0 when only the file defines it, or nothing does).
    pub async fn pipeline_text(&self, product: &str) -> StoreResult<(String, u32)> {
        let latest = self.pipeline_revisions(product).await?.pop();
        let text = match self.pipeline(Some(product)).await {
            Ok(Some(p)) => section_text(&p),
            Ok(None) => format!("name = {product:?}\nrepository = \"/path/to/checkout\"\nchecks = []\n"),
            // A latest revision that does not validate is shown as it is, to be mended.
            Err(_) => latest.as_ref().map(|r| r.text.clone()).unwrap_or_default(),
        };
        Ok((text, latest.map(|r| r.revision).unwrap_or(0)))
    }

    /// Saves `text` as the next revision of `product`'s pipeline. `base`: the revision the editor
    /// started from; refused when another was saved since.
    pub async fn edit_pipeline(
        &self,
        product: &str,
        text: &str,
        base: Option<u32>,
        who: &str,
        reason: Option<&str>,
    ) -> StoreResult<PipelineRevision> {
        if text.len() > 64 * 1024 {
            return Err(invalid(format!("the pipeline is {} bytes; the limit is 65536", text.len())));
        }
        let p = parse_section(text).map_err(|e| invalid(e.to_string()))?;
        if p.product != product {
            return Err(invalid(format!("the table names product {:?}, not {product:?} (a pipeline cannot be renamed)", p.product)));
        }
        // Read, checked and written under the document's lease: two saves at once (of any
        // products) do not undo each other.
        let saved = self.under_lock("pipelines.defs", || self.save_revision(product, &p, base, who, reason)).await?;
        let Some((rev, before)) = saved else {
            return self.pipeline_revisions(product).await?.pop().ok_or_else(|| invalid("nothing to save"));
        };
        self.audit(
            who,
            "pipeline.edit",
            &format!("product:{product}"),
            serde_json::json!(before.as_ref().map(section_text)),
            serde_json::json!(rev.text),
            reason,
        )
        .await?;
        self.event("pipeline.revised", who, Some(&format!("product:{product}")), serde_json::json!({"revision": rev.revision})).await?;
        Ok(rev)
    }

    /// The read-check-write of one revision (under the lock); `None` when `p` is already in force.
    async fn save_revision(
        &self,
        product: &str,
        p: &Pipeline,
        base: Option<u32>,
        who: &str,
        reason: Option<&str>,
    ) -> StoreResult<Option<(PipelineRevision, Option<Pipeline>)>> {
        let mut raw = self.raw_pipeline_defs().await?;
        let mut def: Def = match raw.get(product) {
            None => Def::default(),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| StoreError::Malformed {
                collection: "settings".into(),
                id: format!("{}.{product}", Key::PipelineDefs.id()),
                reason: e.to_string(),
            })?,
        };
        let stored = def.revisions.last().map(|r| r.revision).unwrap_or(0);
        if let Some(b) = base.filter(|b| *b != stored) {
            return Err(StoreError::Conflict(format!(
                "the pipeline of {product} is at revision {stored} now, not {b}: someone saved it meanwhile; reload it and edit again"
            )));
        }
        // The first edit of a product the file defines keeps the file's table as revision 1 (so
        // it can be rolled back to, and the engine's next start does not apply it over the edit).
        let file = self.config.pipeline(Some(product)).filter(|_| def.revisions.is_empty() && who != FILE_AUTHOR);
        if let Some(file) = file {
            let text = section_text(file);
            def.revisions.push(PipelineRevision {
                revision: 1,
                text: text.clone(),
                author: FILE_AUTHOR.into(),
                at: time::fmt_ts(&self.now()),
                reason: Some("the config file's [[products]] table".into()),
            });
            self.ports.settings.put(&Key::LiveFileApplied(&format!("pipeline:{product}")).id(), serde_json::json!(text)).await?;
        }
        let latest = def.revisions.last().map(|r| r.revision).unwrap_or(0);
        // What was in force (none where the latest stored revision is broken: this save mends it).
        let before = self.pipeline(Some(product)).await.ok().flatten();
        // Saving what is already in force makes no revision.
        if before.as_ref() == Some(p) && !def.revisions.is_empty() {
            if file.is_some() {
                raw.insert(product.into(), serde_json::to_value(&def).map_err(|e| invalid(e.to_string()))?);
                self.ports.settings.put(&Key::PipelineDefs.id(), serde_json::Value::Object(raw)).await?;
            }
            return Ok(None);
        }
        let rev = PipelineRevision {
            revision: latest + 1,
            text: section_text(p),
            author: who.into(),
            at: time::fmt_ts(&self.now()),
            reason: reason.map(|r| self.redactor.redact(r)),
        };
        def.revisions.push(rev.clone());
        let over = def.revisions.len().saturating_sub(REVISIONS_KEPT);
        def.revisions.drain(..over);
        raw.insert(product.into(), serde_json::to_value(&def).map_err(|e| invalid(e.to_string()))?);
        self.ports.settings.put(&Key::PipelineDefs.id(), serde_json::Value::Object(raw)).await?;
        Ok(Some((rev, before)))
    }

    /// Puts an earlier revision back, as a new revision.
    pub async fn rollback_pipeline(&self, product: &str, revision: u32, who: &str) -> StoreResult<PipelineRevision> {
        let revs = self.pipeline_revisions(product).await?;
        let Some(r) = revs.iter().find(|r| r.revision == revision) else {
            return Err(StoreError::NotFound { what: format!("revision {revision} of the pipeline of {product:?}") });
        };
        self.edit_pipeline(product, &r.text, revs.last().map(|l| l.revision), who, Some(&format!("rollback to revision {revision}"))).await
    }

    /// Applies the config file's tables that changed since they were last applied (or never
    /// were) as new revisions; otherwise what the store holds stands.
    pub async fn sync_pipelines(&self) -> StoreResult<()> {
        for p in &self.config.pipelines {
            let key = Key::LiveFileApplied(&format!("pipeline:{}", p.product)).id();
            let file = section_text(p);
            if self.ports.settings.get(&key).await?.as_ref().and_then(|v| v.as_str()) == Some(file.as_str()) {
                continue;
            }
            let latest = self.pipeline_revisions(&p.product).await?.last().map(|r| r.revision);
            self.edit_pipeline(&p.product, &file, latest, FILE_AUTHOR, Some("the config file's [[products]] table changed")).await?;
            self.ports.settings.put(&key, serde_json::json!(file)).await?;
        }
        Ok(())
    }
}
