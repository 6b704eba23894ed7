//! One read of an open pull request: what people with write access said on it (line comments
//! with their file and line, reviews), the CI runs on the commit REEF pushed, and whether it was
//! merged or closed — passed on to the builder's task as comments, the change sent back on a
//! request for changes or failing CI, and the deploy step made once it merged.
//!
//! Invariants: what was passed on is recorded before it is posted, so a round that fails later
//! never posts it again; words from people without write access never reach the builder (anyone
//! may comment on a public repository); a merge of a commit REEF did not review, or into another
//! branch than the product's main, makes no deploy step (an alert instead); every field the
//! forge sends is bounded before it is kept.

use super::forge::{has_write_access, is_sha, Pull};
use super::pulls::{client, FORGE_ACTOR};
use super::steps::{deploy_after_merge, git};
use crate::config::Pipeline;
use crate::domain::change::{ChangeRecord, LineComment, PullRequest};
use crate::factory::delivery::short;
use crate::factory::Factory;
use crate::git::{mirror_dir, remote_url, Mirror};
use crate::*;

/// Bytes of one review comment or CI summary passed on.
const MAX_NOTE: usize = 8 * 1024;

/// At most `max` characters of `s` (with … where cut).
fn bounded(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn keep_last<T>(v: &mut Vec<T>, n: usize) {
    let over = v.len().saturating_sub(n);
    v.drain(..over);
}

/// What one read found, before anything is written.
#[derive(Default)]
struct Found {
    notes: Vec<String>,
    comments: Vec<LineComment>,
    changes_requested: Vec<String>,
    failed: Vec<String>,
    untrusted: usize,
    events: Vec<(&'static str, serde_json::Value)>,
    /// The merge, audited once it is recorded.
    audit: Option<serde_json::Value>,
}

/// Reads `pull` (the change `rec`'s) and passes on what is new; `Ok(false)` once it is merged or
/// closed, or no longer the pipeline's forge's.
pub(super) async fn read(f: &Factory, p: &Pipeline, rec: &ChangeRecord, mut pull: PullRequest) -> Result<bool, String> {
    let n = pull.number;
    let Some(forge) = p.forge.as_ref().filter(|x| x.repository == pull.repository && x.api_url == pull.api_url) else {
        // The pipeline now names another forge (or none): pull request #n of another repository
        // is not this one.
        let data = serde_json::json!({"number": n, "repository": pull.repository, "alert": true});
        let _ = f.event("change.pr_unwatched", FORGE_ACTOR, Some(&rec.task), data).await;
        return Ok(false);
    };
    let gh = client(f, forge)?;
    let pr = gh.pull(n).await.map_err(|e| e.to_string())?;
    if !is_sha(&pr.head.sha) {
        return Err(format!("pull request #{n}'s head {:?} is not a commit id", short(&pr.head.sha)));
    }
    let comments = gh.review_comments(n).await.map_err(|e| e.to_string())?;
    let reviews = gh.reviews(n).await.map_err(|e| e.to_string())?;
    let conversation = gh.conversation(n).await.map_err(|e| e.to_string())?;
    let runs = gh.check_runs(&pull.head).await.map_err(|e| e.to_string())?;
    let who = |u: &Option<super::forge::User>| bounded(u.as_ref().map(|u| u.login.as_str()).unwrap_or("someone"), 100);
    let mut found = Found::default();
    let already: std::collections::HashSet<String> = pull.seen.iter().cloned().collect();
    let seen = |kind: &str, id: u64| already.contains(&format!("{kind}:{id}"));
    for c in comments.iter().filter(|c| !seen("comment", c.id)) {
        pull.seen.push(format!("comment:{}", c.id));
        if !has_write_access(&c.author_association) {
            found.untrusted += 1;
            continue;
        }
        let (path, line, body) = (bounded(&c.path, 4096), c.line.or(c.original_line).unwrap_or(0), bounded(&c.body, MAX_NOTE));
        found.comments.push(LineComment { file: path.clone(), line, body: body.clone(), author: format!("github:{}", who(&c.user)) });
        found.notes.push(format!("On {path} line {line}: {body} ({} on pull request #{n})", who(&c.user)));
    }
    for c in conversation.iter().filter(|c| !seen("conversation", c.id)) {
        pull.seen.push(format!("conversation:{}", c.id));
        let body = bounded(c.body.trim(), MAX_NOTE);
        if !has_write_access(&c.author_association) {
            found.untrusted += usize::from(!body.is_empty());
        } else if !body.is_empty() {
            found.notes.push(format!("{} on pull request #{n}: {body}", who(&c.user)));
        }
    }
    for r in reviews.iter().filter(|r| !seen("review", r.id)) {
        pull.seen.push(format!("review:{}", r.id));
        let body = bounded(r.body.as_deref().unwrap_or("").trim(), MAX_NOTE);
        if !has_write_access(&r.author_association) {
            found.untrusted += usize::from(!body.is_empty() || r.state == "CHANGES_REQUESTED");
            continue;
        }
        match r.state.as_str() {
            "CHANGES_REQUESTED" => {
                found.changes_requested.push(who(&r.user));
                found.notes.push(format!("{} requested changes on pull request #{n}: {body}", who(&r.user)));
            }
            "APPROVED" => found.notes.push(format!("{} approved pull request #{n}. {body}", who(&r.user))),
            _ if !body.is_empty() => found.notes.push(format!("{} reviewed pull request #{n}: {body}", who(&r.user))),
            _ => {}
        }
    }
    if found.untrusted > 0 {
        found.notes.push(format!(
            "{} comment(s) on pull request #{n} from people without write access to the repository were not passed on.",
            found.untrusted
        ));
    }
    for run in runs.iter().filter(|r| r.status == "completed") {
        let (name, conclusion) = (bounded(&run.name, 200), bounded(run.conclusion.as_deref().unwrap_or("unknown"), 40));
        let mark = format!("{name}@{}:{conclusion}", pull.head);
        if pull.ci.contains(&mark) {
            continue;
        }
        pull.ci.push(mark);
        let url = run.html_url.as_deref().map(|u| format!(" ({})", bounded(u, 2000))).unwrap_or_default();
        if run.failed() {
            let detail =
                run.output.as_ref().map(|o| format!("{} {}", o.title.as_deref().unwrap_or(""), o.summary.as_deref().unwrap_or("")));
            found.failed.push(name.clone());
            found.notes.push(format!(
                "CI `{name}` {conclusion} on {}{url}: {}",
                short(&pull.head),
                bounded(detail.as_deref().unwrap_or("").trim(), MAX_NOTE)
            ));
        } else {
            found.notes.push(format!("CI `{name}` {conclusion} on {}{url}.", short(&pull.head)));
        }
    }
    // REEF pushed the reviewed commit; anything else on the branch was pushed by someone else
    // and has had no review REEF knows of.
    let foreign = pr.head.sha != pull.head;
    let mark = format!("pushed@{}", pr.head.sha);
    if foreign && !pull.ci.contains(&mark) {
        pull.ci.push(mark);
        found.notes.push(format!(
            "Pull request #{n}'s branch now holds {}, not the reviewed {}: someone else pushed to it. REEF did not review that commit.",
            short(&pr.head.sha),
            short(&pull.head)
        ));
        found
            .events
            .push(("change.pr_foreign_push", serde_json::json!({"number": n, "reviewed": pull.head, "found": pr.head.sha, "alert": true})));
    }
    let (mut stage, mut still_open, mut deploy_version) = (None, true, None);
    if pr.is_merged() {
        still_open = false;
        deploy_version = merged(f, p, rec, &mut pull, &pr, foreign, &mut found).await?;
        stage = Some("merged");
    } else if pr.state == "closed" {
        still_open = false;
        pull.state = "closed".into();
        stage = Some("pr_closed");
        found.notes.push(format!("Pull request #{n} was closed without merging."));
        found.events.push(("change.pr_closed", serde_json::json!({"number": n, "alert": true})));
    }
    keep_last(&mut pull.seen, PullRequest::KEPT);
    keep_last(&mut pull.ci, PullRequest::KEPT);
    // Recorded first: a round that fails after this point never posts the same thing twice.
    save(f, &rec.task, &pull, &found.comments).await?;
    for note in &found.notes {
        let _ = f.comment(&rec.task, FORGE_ACTOR, note).await;
    }
    for (kind, data) in &found.events {
        let _ = f.event(kind, FORGE_ACTOR, Some(&rec.task), data.clone()).await;
    }
    if let Some(data) = found.audit.take() {
        let _ = f.audit(FORGE_ACTOR, "delivery.merge", &rec.task, serde_json::Value::Null, data, None).await;
    }
    if let Some(version) = deploy_version {
        deploy(f, p, rec, &pull, &version).await;
    }
    if still_open && (!found.changes_requested.is_empty() || !found.failed.is_empty()) {
        stage = send_back(f, &rec.task, n, &found).await.or(stage);
    }
    if let Some(s) = stage {
        // Only the stage is written over the record as it is now (the builder's next attempt may
        // have recorded a new commit meanwhile).
        if let Ok(Some(mut now)) = f.change(&rec.task).await {
            now.stage = s.into();
            let _ = f.save_change(&now).await;
        }
    }
    Ok(still_open)
}

/// Writes this round's findings over the pull request as it is stored now: what was passed on
/// joins what was; its state only while it is still the one this round read (the merge step may
/// have pushed another commit to it meanwhile).
async fn save(f: &Factory, task: &str, pull: &PullRequest, comments: &[LineComment]) -> Result<(), String> {
    let mut now = f.pull_of(task).await.map_err(|e| e.to_string())?.unwrap_or_else(|| pull.clone());
    if now.number == pull.number {
        for id in &pull.seen {
            if !now.seen.contains(id) {
                now.seen.push(id.clone());
            }
        }
        for m in &pull.ci {
            if !now.ci.contains(m) {
                now.ci.push(m.clone());
            }
        }
        now.comments.extend(comments.iter().cloned());
        keep_last(&mut now.seen, PullRequest::KEPT);
        keep_last(&mut now.ci, PullRequest::KEPT);
        keep_last(&mut now.comments, PullRequest::COMMENTS_KEPT);
        if now.head == pull.head {
            now.state = pull.state.clone();
            now.merge_commit = pull.merge_commit.clone();
        }
    }
    f.save_pull(task, &now).await.map_err(|e| e.to_string())
}

/// The change goes back to its builder (whose next attempt reads the thread, and whose merge is
/// asked for again) — or to a person once its attempts are spent. While the builder is at work,
/// the thread alone carries it.
async fn send_back(f: &Factory, task: &str, n: u64, found: &Found) -> Option<&'static str> {
    let why = match (found.changes_requested.is_empty(), found.failed.is_empty()) {
        (false, true) => format!("{} asked for changes", found.changes_requested.join(", ")),
        (true, false) => format!("CI failed: {}", found.failed.join(", ")),
        _ => format!("{} asked for changes and CI failed: {}", found.changes_requested.join(", "), found.failed.join(", ")),
    };
    let data = serde_json::json!({"number": n, "changes_requested": found.changes_requested, "ci_failed": found.failed, "alert": true});
    let _ = f.event("change.pr_feedback", FORGE_ACTOR, Some(task), data).await;
    let t = f.ports.tasks.get(task).await.ok()?;
    if t.status != TaskStatus::Done {
        return None;
    }
    let spent = t.attempts >= f.config.engine.max_attempts;
    let (to, note) = if spent {
        (TaskStatus::NeedsHuman, format!("Pull request #{n} needs changes ({why}), and the task's {} attempts are spent.", t.attempts))
    } else {
        (TaskStatus::Pending, format!("Pull request #{n} needs another attempt: {why}. The comments above say what."))
    };
    let _ = f.comment(task, FORGE_ACTOR, &note).await;
    f.ports.tasks.transition(task, &[TaskStatus::Done], to, Some(&note), f.now()).await.ok()?;
    Some(if spent { "pr_needs_person" } else { "changes_requested" })
}

/// A pull request merged on the forge: the change is merged. Answers the version the deploy step
/// should ship, or `None` where it must not make one (a commit REEF did not review, or a merge
/// into another branch).
async fn merged(
    f: &Factory,
    p: &Pipeline,
    rec: &ChangeRecord,
    pull: &mut PullRequest,
    pr: &Pull,
    foreign: bool,
    found: &mut Found,
) -> Result<Option<String>, String> {
    let n = pull.number;
    let merge = pr.merge_commit_sha.clone().filter(|s| is_sha(s)).unwrap_or_default();
    // The version to ship is main as the remote has it, fetched into REEF's mirror (the deploy
    // runs an export of it): the forge's merge commit where main holds it, else main.
    let (dir, repo, remote, main) =
        (mirror_dir(&f.config.data_dir, &rec.repository), p.repository.clone(), p.remote.clone(), p.main.clone());
    let m2 = merge.clone();
    let version = git(move || {
        let m = Mirror::open(&dir)?;
        let head = m.fetch_branch(&remote_url(&repo, &remote)?, &main)?;
        let on_main = !m2.is_empty() && m.has(&m2) && m.merge_base(&m2, &head).is_ok_and(|b| b == m2);
        Ok(if on_main { m2 } else { head })
    })
    .await
    .map_err(|e| format!("fetching {} after pull request #{n} merged: {e}", p.main))?;
    pull.state = "merged".into();
    pull.merge_commit = Some(version.clone());
    let into = bounded(&pr.base.branch, 200);
    let data = serde_json::json!({"change": rec.task, "number": n, "merge": version, "forge_merge": merge, "into": into, "forge": true});
    found.audit = Some(data.clone());
    found.events.push(("change.merged", data));
    if foreign || into != p.main {
        let why = if foreign {
            "its branch held a commit REEF did not review".to_string()
        } else {
            format!("it merged into {into}, not {}", p.main)
        };
        found.notes.push(format!("Pull request #{n} was merged, but {why}: REEF makes no deploy of it. Deploy by hand after checking."));
        found.events.push(("change.merged_unreviewed", serde_json::json!({"number": n, "why": why, "alert": true})));
        return Ok(None);
    }
    found.notes.push(format!("Pull request #{n} was merged into {} as {}.", p.main, short(&version)));
    Ok(Some(version))
}

/// The deploy step after a merge on the forge (where the product deploys).
async fn deploy(f: &Factory, p: &Pipeline, rec: &ChangeRecord, pull: &PullRequest, version: &str) {
    let Some(step) = rec.steps.get("merge").cloned() else { return };
    let made = match f.ports.tasks.get(&step).await {
        Ok(merge_task) => deploy_after_merge(f, &merge_task, p, &rec.task, version, FORGE_ACTOR).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match made {
        Ok(Some(d)) => {
            if let Ok(Some(mut now)) = f.change(&rec.task).await {
                now.steps.insert("deploy".into(), d.id);
                let _ = f.save_change(&now).await;
            }
        }
        Ok(None) => {}
        Err(why) => {
            let data = serde_json::json!({"number": pull.number, "why": why, "alert": true});
            let _ = f.event("change.deploy_not_made", FORGE_ACTOR, Some(&rec.task), data).await;
        }
    }
}
