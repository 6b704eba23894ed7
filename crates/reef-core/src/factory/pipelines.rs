//! Each product at a glance for the Products view: its pipeline, the changes still on their way
//! (and where each is), its last deploy and health, and its spend and revenue (all time).
//!
//! Invariant: read-only and bounded — the newest [`TASKS_READ`] tasks of a product are looked at.

use super::delivery::STEP_KEY_PREFIX;
use super::Factory;
use crate::domain::change::Deploy;
use crate::*;
use serde::Serialize;

/// Tasks of one product read to find its open changes.
pub const TASKS_READ: usize = 300;

/// A change on its way to production.
#[derive(Debug, Clone, Serialize)]
pub struct OpenChange {
    pub task: String,
    pub title: String,
    pub status: TaskStatus,
    /// checked, checks_failed, reviewed, changes_requested, merged, conflict, unhealthy, …
    pub stage: String,
    pub flags: usize,
    pub checks_passed: bool,
    pub files: u64,
    pub added: u64,
    pub deleted: u64,
    /// The step it waits on or runs in now (merge, deploy) with that task's id and state.
    pub step: Option<(String, String, TaskStatus)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProductPipeline {
    pub product: String,
    pub has_pipeline: bool,
    pub repository: Option<String>,
    pub main: Option<String>,
    pub checks: Vec<String>,
    pub deploys: bool,
    pub health_url: Option<String>,
    pub auto_rollback: bool,
    /// `owner/name` where changes become pull requests.
    pub forge: Option<String>,
    /// The pipeline's latest stored revision (0: only the config file defines it).
    pub revision: u32,
    pub open: Vec<OpenChange>,
    pub last_deploy: Option<Deploy>,
    /// The product's LLM spend and USD revenue (cents), all time (as the books keep them).
    pub spend: Usd,
    pub revenue_usd_minor: i64,
}

impl Factory {
    pub async fn pipelines(&self) -> StoreResult<Vec<ProductPipeline>> {
        let books = crate::books::books(&self.ports, self.now()).await?;
        let pipelines = self.all_pipelines().await?;
        let mut names: Vec<String> = pipelines.iter().map(|p| p.product.clone()).collect();
        for b in &books.products {
            if !names.contains(&b.product) {
                names.push(b.product.clone());
            }
        }
        let mut out = vec![];
        for name in names {
            let p = pipelines.iter().find(|p| p.product == name);
            let revision = self.pipeline_revisions(&name).await?.last().map(|r| r.revision).unwrap_or(0);
            let tasks =
                self.ports.tasks.list(&TaskQuery { product: Some(name.clone()), limit: Some(TASKS_READ), ..Default::default() }).await?;
            let mut open = vec![];
            for t in tasks.items.iter().filter(|t| !t.idempotency_key.as_deref().is_some_and(|k| k.starts_with(STEP_KEY_PREFIX))) {
                if t.status == TaskStatus::Cancelled {
                    continue;
                }
                let Some(rec) = self.ports.settings.get(&crate::settings::Key::Change(&t.id).id()).await? else { continue };
                let Ok(rec) = serde_json::from_value::<crate::domain::change::ChangeRecord>(rec) else { continue };
                if rec.stage == "deployed" {
                    continue;
                }
                let mut step = None;
                for name in ["deploy", "merge"] {
                    if let Some(id) = rec.steps.get(name) {
                        if let Ok(s) = self.ports.tasks.get(id).await {
                            step = Some((name.to_string(), id.clone(), s.status));
                            break;
                        }
                    }
                }
                open.push(OpenChange {
                    task: t.id.clone(),
                    title: t.title.clone(),
                    status: t.status,
                    checks_passed: rec.checks_passed(),
                    flags: rec.flags.len(),
                    stage: rec.stage,
                    files: rec.files,
                    added: rec.added,
                    deleted: rec.deleted,
                    step,
                });
            }
            let b = books.products.iter().find(|b| b.product == name);
            out.push(ProductPipeline {
                has_pipeline: p.is_some(),
                repository: p.map(|p| p.repository.display().to_string()),
                main: p.map(|p| p.main.clone()),
                checks: p.map(|p| p.checks.iter().map(|c| c.name.clone()).collect()).unwrap_or_default(),
                deploys: p.is_some_and(|p| !p.deploy.is_empty()),
                health_url: p.and_then(|p| p.health_url.clone()),
                auto_rollback: p.is_some_and(|p| p.auto_rollback),
                forge: p.and_then(|p| p.forge.as_ref().map(|f| f.repository.clone())),
                revision,
                open,
                last_deploy: self.deploys(&name).await?.pop(),
                spend: b.map(|b| b.llm_spend).unwrap_or_default(),
                revenue_usd_minor: b.and_then(|b| b.revenue.get("usd").copied()).unwrap_or(0),
                product: name,
            });
        }
        Ok(out)
    }
}
