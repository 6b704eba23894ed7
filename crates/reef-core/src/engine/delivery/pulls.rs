//! Pull requests, where a product's forge takes its changes: the approved merge step pushes the
//! reviewed commit to REEF's branch for the change and opens (or finds) its pull request; the
//! watcher reads each open one and brings back what happened on the forge — review comments
//! (with their file and line), reviews, CI results — as comments on the builder's task, sends
//! the change back to its builder when a person asks for changes or CI fails, and makes the
//! deploy step once the pull request is merged.
//!
//! Invariants: only an approved merge step opens or updates a pull request (the push is of the
//! commit the step names); the watcher runs in one process at a time (a lease) and is the only
//! writer of its list; each comment, review and CI result is passed on once; the forge token
//! never leaves `forge::GitHub`.

use super::forge::{ForgeError, GitHub, Pull};
use super::steps::{deploy_after_merge, git};
use crate::config::{Forge, Pipeline};
use crate::domain::change::{ChangeRecord, LineComment, PullRequest};
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
const FORGE_ACTOR: &str = "forge:github";
/// The lease that keeps the watcher to one process.
const WATCH_LEASE: &str = "forge.watch";
/// How often the watcher looks again while no product has a forge.
const IDLE_POLL: Duration = Duration::from_secs(60);
/// Bytes of one review comment or CI summary passed on.
const MAX_NOTE: usize = 8 * 1024;

fn client(f: &Factory, forge: &Forge) -> Result<GitHub, String> {
    let token = f.config.forge_token.clone().ok_or_else(|| {
        "this product takes changes as pull requests on GitHub, but REEF has no REEF_GITHUB_TOKEN (reef secret set REEF_GITHUB_TOKEN)"
            .to_string()
    })?;
    GitHub::new(forge, token).map_err(|e| e.to_string())
}

/// The merge step where a forge is configured: pushes the reviewed commit to `reef/<task>` and
/// opens that branch's pull request (or finds the one an earlier attempt opened). Answers what
/// it did and the pull request's URL.
pub(super) async fn open(e: &Engine, task: &Task, p: &Pipeline, change: &str, sha: &str) -> Result<(String, String), ExecError> {
    let f = &e.factory;
    let forge = p.forge.as_ref().ok_or_else(|| ExecError::NotRunnable("the product has no forge".into()))?;
    let gh = client(f, forge).map_err(ExecError::NotRunnable)?;
    let actor = format!("agent:{}", task.assigned_to.as_deref().unwrap_or("reef"));
    let mut rec = f
        .change(change)
        .await
        .map_err(|x| ExecError::Failed(x.to_string()))?
        .ok_or_else(|| ExecError::NotRunnable(format!("task {change} has no recorded change")))?;
    if rec.head != sha {
        return Err(ExecError::NotRunnable(format!(
            "superseded: task {change}'s change is now at {}, not {} (this merge was for an earlier attempt)",
            short(&rec.head),
            short(sha)
        )));
    }
    let branch = format!("reef/{}", ref_safe(change));
    let (dir, repo, remote, sha2, b2) =
        (mirror_dir(&f.config.data_dir, &rec.repository), p.repository.clone(), p.remote.clone(), sha.to_string(), branch.clone());
    // REEF's own branch: each approved attempt replaces what the last one pushed.
    git(move || Mirror::open(&dir)?.replace_branch(&remote_url(&repo, &remote)?, &sha2, &b2))
        .await
        .map_err(|x| ExecError::Failed(format!("pushing {} to {branch}: {x}", short(sha))))?;
    let title = task.title.trim_start_matches("Merge: ").to_string();
    let body = f.redactor.redact(&describe(&rec));
    let forge_err = |x: ForgeError| ExecError::Failed(format!("GitHub {}: {x}", forge.repository));
    let (pull, opened) = match gh.find_open(&branch).await.map_err(forge_err)? {
        Some(pr) => (pr, false),
        None => (gh.open(&title, &branch, &p.main, &body).await.map_err(forge_err)?, true),
    };
    let same = rec.pull.as_ref().filter(|x| x.number == pull.number);
    rec.pull = Some(PullRequest {
        number: pull.number,
        url: pull.html_url.clone(),
        branch: branch.clone(),
        head: sha.into(),
        state: "open".into(),
        merge_commit: None,
        seen: same.map(|x| x.seen.clone()).unwrap_or_default(),
        ci: same.map(|x| x.ci.clone()).unwrap_or_default(),
    });
    rec.stage = "pr_open".into();
    rec.steps.insert("merge".into(), task.id.clone());
    f.save_change(&rec).await.map_err(|x| ExecError::Failed(x.to_string()))?;
    let data =
        serde_json::json!({"change": change, "number": pull.number, "url": pull.html_url, "sha": sha, "branch": branch, "opened": opened});
    let _ = f.event("change.pr_opened", &actor, Some(change), data.clone()).await;
    let _ = f.audit(&actor, "delivery.pull_request", &task.id, serde_json::Value::Null, data, None).await;
    let said = if opened { "opened" } else { "updated" };
    Ok((format!("{said} pull request #{} ({}) with {}", pull.number, pull.html_url, short(sha)), pull.html_url))
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
        match f.ports.leases.acquire(WATCH_LEASE, &me, ttl, f.now()).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "the forge watcher's lease");
                continue;
            }
        }
        if let Err(e) = watch_once(&f).await {
            tracing::warn!(error = %e, "reading pull requests");
        }
    }
}

/// One round: finds newly opened pull requests, reads each open one, keeps the list.
pub async fn watch_once(f: &Factory) -> StoreResult<()> {
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
        // Only REEF's own record counts (anyone may write an event): a change without an open
        // pull request in it is dropped.
        let Some(rec) = f.change(&id).await? else { continue };
        if rec.pull.as_ref().is_none_or(|p| p.state != "open") {
            continue;
        }
        let Some(p) = f.pipeline(rec.product.as_deref()).await?.filter(|p| p.forge.is_some()) else { continue };
        match read_pull(f, &p, rec).await {
            Ok(still_open) => {
                if still_open {
                    open.push(id);
                }
            }
            Err(why) => {
                tracing::warn!(change = %id, error = %why, "reading a pull request");
                open.push(id);
            }
        }
    }
    let after = Watch { open, since: Some(started) };
    if after != before {
        f.ports.settings.put(&key, serde_json::to_value(&after).unwrap_or_default()).await?;
    }
    Ok(())
}

fn bounded(s: &str) -> String {
    let mut end = s.len().min(MAX_NOTE);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    if end < s.len() {
        format!("{}…", &s[..end])
    } else {
        s.to_string()
    }
}

/// Reads one pull request and passes on what is new; `Ok(false)` once it is merged or closed.
async fn read_pull(f: &Factory, p: &Pipeline, mut rec: ChangeRecord) -> Result<bool, String> {
    let forge = p.forge.as_ref().ok_or("no forge")?;
    let gh = client(f, forge)?;
    let mut pull = rec.pull.clone().ok_or("no pull request")?;
    let n = pull.number;
    let pr = gh.pull(n).await.map_err(|e| e.to_string())?;
    let comments = gh.review_comments(n).await.map_err(|e| e.to_string())?;
    let reviews = gh.reviews(n).await.map_err(|e| e.to_string())?;
    let runs = gh.check_runs(&pull.head).await.map_err(|e| e.to_string())?;
    let (comments_before, stage_before, steps_before) = (rec.comments.len(), rec.stage.clone(), rec.steps.clone());
    let who = |u: &Option<super::forge::User>| u.as_ref().map(|u| u.login.clone()).unwrap_or_else(|| "someone".into());
    let mut notes: Vec<String> = vec![];
    let (mut changes_requested, mut failed) = (vec![], vec![]);
    let new_comments: Vec<_> = comments.iter().filter(|c| !pull.seen.contains(&c.id)).collect();
    let new_reviews: Vec<_> = reviews.iter().filter(|r| !pull.seen.contains(&r.id)).collect();
    for c in new_comments {
        pull.seen.push(c.id);
        let line = c.line.or(c.original_line).unwrap_or(0);
        let body = bounded(&c.body);
        rec.comments.push(LineComment {
            file: c.path.clone(),
            line,
            body: f.redactor.redact(&body),
            author: format!("github:{}", who(&c.user)),
        });
        notes.push(format!("On {} line {line}: {body} ({} on pull request #{n})", c.path, who(&c.user)));
    }
    for r in new_reviews {
        pull.seen.push(r.id);
        let body = bounded(r.body.as_deref().unwrap_or("").trim());
        match r.state.as_str() {
            "CHANGES_REQUESTED" => {
                changes_requested.push(who(&r.user));
                notes.push(format!("{} requested changes on pull request #{n}: {body}", who(&r.user)));
            }
            "APPROVED" => notes.push(format!("{} approved pull request #{n}. {body}", who(&r.user))),
            _ if !body.is_empty() => notes.push(format!("{} reviewed pull request #{n}: {body}", who(&r.user))),
            _ => {}
        }
    }
    for run in runs.iter().filter(|r| r.status == "completed") {
        let conclusion = run.conclusion.clone().unwrap_or_else(|| "unknown".into());
        let mark = format!("{}@{}:{conclusion}", run.name, pull.head);
        if pull.ci.contains(&mark) {
            continue;
        }
        pull.ci.push(mark);
        let detail = run
            .output
            .as_ref()
            .map(|o| format!("{} {}", o.title.as_deref().unwrap_or(""), o.summary.as_deref().unwrap_or("")).trim().to_string());
        let url = run.html_url.as_deref().map(|u| format!(" ({u})")).unwrap_or_default();
        if run.failed() {
            failed.push(run.name.clone());
            notes.push(format!(
                "CI `{}` {conclusion} on {}{url}: {}",
                run.name,
                short(&pull.head),
                bounded(detail.as_deref().unwrap_or(""))
            ));
        } else {
            notes.push(format!("CI `{}` {conclusion} on {}{url}.", run.name, short(&pull.head)));
        }
    }
    // REEF pushed the reviewed commit; anything else on the branch was pushed by someone else
    // and has had no review REEF knows of.
    let foreign = format!("pushed@{}", pr.head.sha);
    if pr.head.sha != pull.head && !pull.ci.contains(&foreign) {
        pull.ci.push(foreign);
        notes.push(format!(
            "Pull request #{n}'s branch now holds {}, not the reviewed {}: someone else pushed to it. REEF did not review that commit.",
            short(&pr.head.sha),
            short(&pull.head)
        ));
        let data = serde_json::json!({"number": n, "reviewed": pull.head, "found": pr.head.sha, "alert": true});
        let _ = f.event("change.pr_foreign_push", FORGE_ACTOR, Some(&rec.task), data).await;
    }
    for note in &notes {
        let _ = f.comment(&rec.task, FORGE_ACTOR, note).await;
    }
    let mut still_open = true;
    if pr.is_merged() {
        still_open = false;
        merged(f, p, &mut rec, &mut pull, &pr).await?;
    } else if pr.state == "closed" {
        still_open = false;
        pull.state = "closed".into();
        rec.stage = "pr_closed".into();
        let _ = f.comment(&rec.task, FORGE_ACTOR, &format!("Pull request #{n} was closed without merging.")).await;
        let _ = f.event("change.pr_closed", FORGE_ACTOR, Some(&rec.task), serde_json::json!({"number": n, "alert": true})).await;
    } else if !changes_requested.is_empty() || !failed.is_empty() {
        // Back to its builder, whose next attempt reads the thread; its merge is asked for again.
        let why = match (changes_requested.is_empty(), failed.is_empty()) {
            (false, true) => format!("{} asked for changes", changes_requested.join(", ")),
            (true, false) => format!("CI failed: {}", failed.join(", ")),
            _ => format!("{} asked for changes and CI failed: {}", changes_requested.join(", "), failed.join(", ")),
        };
        let note = format!("Pull request #{n} needs another attempt: {why}. The comments above say what.");
        let _ = f.comment(&rec.task, FORGE_ACTOR, &note).await;
        if f.ports.tasks.transition(&rec.task, &[TaskStatus::Done], TaskStatus::Pending, Some(&note), f.now()).await.is_ok() {
            rec.stage = "changes_requested".into();
        }
        let data = serde_json::json!({"number": n, "changes_requested": changes_requested, "ci_failed": failed, "alert": true});
        let _ = f.event("change.pr_feedback", FORGE_ACTOR, Some(&rec.task), data).await;
    }
    if !notes.is_empty() || !still_open || rec.pull.as_ref() != Some(&pull) {
        // The builder's next attempt may have recorded the change meanwhile: only what this
        // round found is written over the record as it is now.
        let mut now = f.change(&rec.task).await.map_err(|e| e.to_string())?.unwrap_or_else(|| rec.clone());
        now.pull = Some(pull);
        now.comments.extend(rec.comments.drain(comments_before..));
        if rec.stage != stage_before {
            now.stage = rec.stage.clone();
        }
        for (k, v) in rec.steps.iter().filter(|(k, _)| !steps_before.contains_key(*k)) {
            now.steps.insert(k.clone(), v.clone());
        }
        f.save_change(&now).await.map_err(|e| e.to_string())?;
    }
    Ok(still_open)
}

/// A pull request merged on the forge: the change is merged, and the deploy step follows.
async fn merged(f: &Factory, p: &Pipeline, rec: &mut ChangeRecord, pull: &mut PullRequest, pr: &Pull) -> Result<(), String> {
    // The version to ship is main as the remote has it, fetched into REEF's mirror (the deploy
    // runs an export of it): the forge's merge commit where main holds it, else main.
    let (dir, repo, remote, main) =
        (mirror_dir(&f.config.data_dir, &rec.repository), p.repository.clone(), p.remote.clone(), p.main.clone());
    let merge = pr.merge_commit_sha.clone().unwrap_or_default();
    let m2 = merge.clone();
    let version = git(move || {
        let m = Mirror::open(&dir)?;
        let head = m.fetch_branch(&remote_url(&repo, &remote)?, &main)?;
        let on_main = !m2.is_empty() && m.has(&m2) && m.merge_base(&m2, &head).is_ok_and(|b| b == m2);
        Ok(if on_main { m2 } else { head })
    })
    .await
    .map_err(|e| format!("fetching {} after pull request #{} merged: {e}", p.main, pull.number))?;
    pull.state = "merged".into();
    pull.merge_commit = Some(version.clone());
    rec.stage = "merged".into();
    let data = serde_json::json!({"change": rec.task, "number": pull.number, "merge": version, "forge_merge": merge, "main": p.main, "forge": true});
    let _ = f.event("change.merged", FORGE_ACTOR, Some(&rec.task), data.clone()).await;
    let _ = f.audit(FORGE_ACTOR, "delivery.merge", &rec.task, serde_json::Value::Null, data, None).await;
    let _ = f
        .comment(&rec.task, FORGE_ACTOR, &format!("Pull request #{} was merged into {} as {}.", pull.number, p.main, short(&version)))
        .await;
    let step = rec.steps.get("merge").cloned().ok_or("the change names no merge step")?;
    let merge_task = f.ports.tasks.get(&step).await.map_err(|e| e.to_string())?;
    if let Some(d) = deploy_after_merge(f, &merge_task, p, &rec.task, &version, FORGE_ACTOR).await.map_err(|e| e.to_string())? {
        rec.steps.insert("deploy".into(), d.id);
    }
    Ok(())
}
