//! Pull requests, where a product's forge takes its changes: the approved merge step pushes the
//! reviewed commit to REEF's branch for the change and opens (or finds) its pull request; the
//! watcher reads each open one (`pull_read`) and brings back what happened on the forge.
//!
//! Invariants: only an approved merge step opens or updates a pull request (the push is of the
//! commit the step names, and the step always waits for a person: approving it runs the change in
//! the forge's CI); the watcher runs in one process at a time (a lease, renewed before each pull
//! request) and is the only writer of its list; the forge token never leaves `forge::GitHub`.

use super::forge::{ForgeError, GitHub};
use super::steps::{git, reviewed_change};
use crate::config::{Forge, Pipeline};
use crate::domain::change::{ChangeRecord, PullRequest};
use crate::engine::exec::ExecError;
use crate::engine::runtime::Engine;
use crate::factory::delivery::short;
use crate::factory::Factory;
use crate::git::{mirror_dir, ref_safe, remote_url, Mirror};
use crate::settings::Key;
use crate::*;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Who the forge's words are attributed to in the thread and the audit log.
pub(super) const FORGE_ACTOR: &str = "forge:github";
/// The lease that keeps the watcher to one process.
const WATCH_LEASE: &str = "forge.watch";
/// How often the watcher looks again while no product has a forge.
const IDLE_POLL: Duration = Duration::from_secs(60);

pub(super) fn client(f: &Factory, forge: &Forge) -> Result<GitHub, String> {
    let token = f.config.forge_token.clone().ok_or_else(|| {
        "this product takes changes as pull requests on GitHub, but REEF has no REEF_GITHUB_TOKEN (reef secret set REEF_GITHUB_TOKEN)"
            .to_string()
    })?;
    GitHub::new(forge, token).map_err(|e| e.to_string())
}

/// What the approval card of a merge step says where a forge takes it (the gate is always a
/// person's: the forge's CI runs what is pushed, with the repository's secrets).
pub fn forge_warning(forge: &Forge) -> String {
    format!(
        " — approving pushes it to GitHub ({}) as a pull request: the repository's CI runs the change there, with what that CI can reach",
        forge.repository
    )
}

/// The merge step where a forge is configured: pushes the reviewed commit to `reef/<task>` and
/// opens that branch's pull request (or finds the one an earlier attempt opened). Answers what
/// it did and the pull request's URL.
pub(super) async fn open(e: &Engine, task: &Task, p: &Pipeline, change: &str, sha: &str) -> Result<(String, String), ExecError> {
    let f = &e.factory;
    let forge = p.forge.as_ref().ok_or_else(|| ExecError::NotRunnable("the product has no forge".into()))?;
    let gh = client(f, forge).map_err(ExecError::NotRunnable)?;
    let actor = format!("agent:{}", task.assigned_to.as_deref().unwrap_or("reef"));
    let rec = reviewed_change(f, change, sha).await?;
    let branch = format!("reef/{}", ref_safe(change));
    let (dir, repo, remote, sha2, b2) =
        (mirror_dir(&f.config.data_dir, &rec.repository), p.repository.clone(), p.remote.clone(), sha.to_string(), branch.clone());
    // REEF's own branch: each approved attempt replaces what the last one pushed.
    git(move || Mirror::open(&dir)?.replace_branch(&remote_url(&repo, &remote)?, &sha2, &b2))
        .await
        .map_err(|x| ExecError::Failed(format!("pushing {} to {branch}: {x}", short(sha))))?;
    // The title is partly an agent's words, as the description is: both are redacted.
    let title = f.redactor.redact(task.title.trim_start_matches("Merge: "));
    let body = f.redactor.redact(&describe(&rec));
    let forge_err = |x: ForgeError| ExecError::Failed(format!("GitHub {}: {x}", forge.repository));
    let (pull, opened) = match gh.find_open(&branch).await.map_err(forge_err)? {
        Some(pr) => (pr, false),
        None => (gh.open(&title, &branch, &p.main, &body).await.map_err(forge_err)?, true),
    };
    let same = f
        .pull_of(change)
        .await
        .map_err(|x| ExecError::Failed(x.to_string()))?
        .filter(|x| x.number == pull.number && x.repository == forge.repository && x.api_url == forge.api_url);
    let record = PullRequest {
        number: pull.number,
        url: pull.html_url.chars().take(2000).collect(),
        repository: forge.repository.clone(),
        api_url: forge.api_url.clone(),
        branch: branch.clone(),
        head: sha.into(),
        state: "open".into(),
        merge_commit: None,
        seen: same.as_ref().map(|x| x.seen.clone()).unwrap_or_default(),
        ci: same.as_ref().map(|x| x.ci.clone()).unwrap_or_default(),
        comments: same.map(|x| x.comments).unwrap_or_default(),
    };
    f.save_pull(change, &record).await.map_err(|x| ExecError::Failed(x.to_string()))?;
    // The record's stage, only while this is still its latest commit (the builder's next attempt
    // may have recorded another meanwhile).
    if let Some(mut now) = f.change(change).await.map_err(|x| ExecError::Failed(x.to_string()))?.filter(|r| r.head == sha) {
        now.stage = "pr_open".into();
        now.steps.insert("merge".into(), task.id.clone());
        f.save_change(&now).await.map_err(|x| ExecError::Failed(x.to_string()))?;
    }
    let data =
        serde_json::json!({"change": change, "number": pull.number, "url": record.url, "sha": sha, "branch": branch, "opened": opened});
    // The watcher finds new pull requests by this event: without it, this one is never read.
    f.event("change.pr_opened", &actor, Some(change), data.clone()).await.map_err(|x| ExecError::Failed(x.to_string()))?;
    let _ = f.audit(&actor, "delivery.pull_request", &task.id, serde_json::Value::Null, data, None).await;
    let said = if opened { "opened" } else { "updated" };
    Ok((format!("{said} pull request #{} ({}) with {}", pull.number, record.url, short(sha)), record.url))
}

/// The pull request's description: what REEF measured and who reviewed it.
fn describe(rec: &ChangeRecord) -> String {
    let mut s = format!(
        "Opened by REEF for task `{}` (attempt {}): {} files, +{} −{}.\n\n",
        rec.task, rec.attempt, rec.files, rec.added, rec.deleted
    );
    for c in &rec.checks {
        s.push_str(&format!("- check `{}`: {}\n", c.name, if c.passed { "passed" } else { "FAILED" }));
    }
    if let Some(r) = &rec.review {
        s.push_str(&format!("\nReviewed by {}: {}\n", r.reviewer, r.summary));
    }
    s
}

/// The watcher's list (settings `forge.watch`).
#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
struct Watch {
    /// Changes whose pull requests are open.
    open: Vec<String>,
    /// When it last read the event log for newly opened ones.
    #[serde(default)]
    since: Option<Timestamp>,
}

/// Reads every open pull request each `poll` (the shortest of the products'), in one process at a
/// time. Ends when `shutdown` is cancelled.
pub async fn run(f: Factory, me: String, shutdown: CancellationToken) -> Result<(), StoreError> {
    tracing::info!("watching pull requests");
    loop {
        // Pipelines are edited while REEF runs: the forges and their polls are read each round
        // (with none, it looks again in a minute).
        let poll = match f.all_pipelines().await {
            Ok(all) => all.iter().filter_map(|p| p.forge.as_ref().map(|x| x.poll)).min().unwrap_or(IDLE_POLL),
            Err(e) => {
                tracing::warn!(error = %e, "reading the pipelines");
                IDLE_POLL
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(poll) => {}
        }
        let ttl = (poll * 3).max(Duration::from_secs(30));
        if let Err(e) = watch_once(&f, &me, ttl).await {
            tracing::warn!(error = %e, "reading pull requests");
        }
    }
}

/// Takes or renews the watcher's lease; `false` when another process holds it.
async fn hold(f: &Factory, me: &str, ttl: Duration) -> bool {
    match f.ports.leases.acquire(WATCH_LEASE, me, ttl, f.now()).await {
        Ok(held) => held,
        Err(e) => {
            tracing::warn!(error = %e, "the forge watcher's lease");
            false
        }
    }
}

/// One round: finds newly opened pull requests, reads each open one, keeps the list. It stops
/// (writing nothing) the moment its lease is another process's.
pub async fn watch_once(f: &Factory, me: &str, ttl: Duration) -> StoreResult<()> {
    if !hold(f, me, ttl).await {
        return Ok(());
    }
    let key = Key::ForgeWatch.id();
    let before: Watch = f.ports.settings.get(&key).await?.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
    let started = f.now();
    // Newly opened ones since the last round, with a margin for clocks that disagree (MongoDB's
    // log is ordered by its writers' clocks).
    let since = before.since.map(|t| t - chrono::Duration::minutes(10));
    let q = crate::ports::EventQuery { kind_prefix: Some("change.pr_opened".into()), since, limit: 500, ..Default::default() };
    let mut ids = before.open.clone();
    for ev in f.ports.events.recent(&q).await?.items {
        if let Some(s) = ev.subject.filter(|s| !ids.contains(s)) {
            ids.push(s);
        }
    }
    let mut open = vec![];
    for id in ids {
        if !hold(f, me, ttl).await {
            return Ok(());
        }
        // Only REEF's own record counts (anyone may write an event): a change without an open
        // pull request is dropped.
        let Some(pull) = f.pull_of(&id).await?.filter(|p| p.state == "open") else { continue };
        let Some(rec) = f.change(&id).await? else { continue };
        let p = match f.pipeline(rec.product.as_deref()).await {
            Ok(Some(p)) => p,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(change = %id, error = %e, "reading a pull request's pipeline");
                open.push(id);
                continue;
            }
        };
        match super::pull_read::read(f, &p, &rec, pull).await {
            Ok(true) => open.push(id),
            Ok(false) => {}
            Err(why) => {
                tracing::warn!(change = %id, error = %why, "reading a pull request");
                open.push(id);
            }
        }
    }
    let after = Watch { open, since: Some(started) };
    if after != before && hold(f, me, ttl).await {
        f.ports.settings.put(&key, serde_json::to_value(&after).unwrap_or_default()).await?;
    }
    Ok(())
}
