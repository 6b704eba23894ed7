//! Review of a builder's result by another agent: who reviews, the verdict, and what it does to
//! the task (done; back to the builder with the feedback, up to the round limit; or a person).

use super::exec::Job;
use super::runtime::Engine;
use super::worker::summary;
use crate::domain::change::{ChangeRecord, LineComment, ReviewRecord};
use crate::*;
use tokio_util::sync::CancellationToken;

/// Bytes of a change's patch a reviewer is sent.
const PATCH_FOR_REVIEW: usize = 48 * 1024;
/// Line comments kept of one verdict.
const MAX_LINE_COMMENTS: usize = 50;

/// A reviewer's verdict.
#[derive(Debug)]
pub(super) enum Review {
    Approved {
        reviewer: String,
        note: String,
        comments: Vec<LineComment>,
    },
    Revise {
        reviewer: String,
        feedback: String,
        comments: Vec<LineComment>,
    },
    /// The review could not run (budget, gateway): the result waits in `review` for a person.
    Unavailable(String),
}

/// A reviewer other than the builder: the orchestrator, else the first other agent.
pub(super) fn pick_reviewer(cfg: &crate::config::Config, builder: &str) -> Option<AgentConfig> {
    cfg.agents
        .iter()
        .find(|a| a.name != builder && a.role == "orchestrator")
        .or_else(|| cfg.agents.iter().find(|a| a.name != builder))
        .cloned()
}

/// What a reviewer is told of a change: its size, flags, check results and patch.
async fn change_brief(e: &Engine, rec: &ChangeRecord) -> String {
    let mut s = format!(
        "\n\nThe change: commit {} against main at {}, {} files, +{} -{}.\n",
        rec.head, rec.base, rec.files, rec.added, rec.deleted
    );
    if !rec.flags.is_empty() {
        s.push_str("FLAGGED (a change that edits or deletes tests or check definitions never merges without a person; judge whether it is justified):\n");
        for f in &rec.flags {
            s.push_str(&format!("- {}\n", f.describe()));
        }
    }
    for c in &rec.checks {
        s.push_str(&format!("Check {} (`{}`): {}\n", c.name, c.command, if c.passed { "passed" } else { "FAILED" }));
    }
    match e.factory.change_patch(&rec.task, None, PATCH_FOR_REVIEW).await {
        Ok((patch, cut)) => {
            s.push_str(&format!("\nThe diff{}:\n```diff\n{patch}\n```\n", if cut { " (cut short; it is larger)" } else { "" }));
        }
        Err(err) => s.push_str(&format!("\n(The diff could not be read: {err})\n")),
    }
    s
}

/// Reads a verdict: one JSON object `{verdict, summary, comments: [{file, line, body}]}`
/// anywhere in the answer, else the text's first word (APPROVE or anything else).
pub(super) fn parse_verdict(text: &str) -> (bool, String, Vec<LineComment>) {
    if let (Some(a), Some(b)) = (text.find('{'), text.rfind('}')) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text[a..=b.max(a)]) {
            if let Some(verdict) = v["verdict"].as_str() {
                let approved = verdict.trim().eq_ignore_ascii_case("approve");
                let summary = v["summary"].as_str().unwrap_or(verdict).chars().take(8000).collect();
                let comments = v["comments"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|c| {
                                Some(LineComment {
                                    file: c["file"].as_str()?.chars().take(500).collect(),
                                    line: c["line"].as_u64()?,
                                    body: c["body"].as_str()?.chars().take(2000).collect(),
                                    author: String::new(),
                                })
                            })
                            .take(MAX_LINE_COMMENTS)
                            .collect()
                    })
                    .unwrap_or_default();
                return (approved, summary, comments);
            }
        }
    }
    (text.trim().to_uppercase().starts_with("APPROVE"), text.trim().to_string(), vec![])
}

pub(super) async fn review(
    e: &Engine,
    job: &Job,
    output: &str,
    change: Option<&ChangeRecord>,
    tx: super::exec::ProgressTx,
    cancel: CancellationToken,
) -> Review {
    let f = &e.factory;
    let Some(reviewer) = pick_reviewer(&f.config, &job.agent.name) else { return Review::Unavailable("no other agent to review".into()) };
    // A different model too: at least one rung above the builder's, never below mid.
    let tier = job.tier.escalate().unwrap_or(ModelTier::Frontier).max(ModelTier::Mid);
    let mut t = job.task.clone();
    t.title = format!("Review: {}", job.task.title);
    let (brief, ask) = match change {
        Some(rec) => (
            change_brief(e, rec).await,
            "Answer with one JSON object: {\"verdict\": \"approve\" or \"revise\", \"summary\": \"what you found\", \"comments\": [{\"file\": \"path\", \"line\": 12, \"body\": \"what must change there\"}]}. Approve only a complete, correct change.",
        ),
        None => (String::new(), "Answer APPROVE if it is complete and correct, otherwise REVISE followed by what must change."),
    };
    t.description = format!(
        "You review work done by {} for this task:\n\n{}\n{}\n\nTheir result:\n{}{brief}\n\n{ask}",
        job.agent.name, job.task.title, job.task.description, output
    );
    t.error = None;
    let rjob = Job { task: t, agent: AgentConfig { model: None, tools: vec![], ..reviewer.clone() }, tier, ..job.clone() };
    match e.llm.run(&rjob, tx, cancel).await {
        Ok(v) => {
            let (approved, text, mut comments) = parse_verdict(&v.output);
            for c in &mut comments {
                c.author = format!("agent:{}", reviewer.name);
            }
            if approved {
                Review::Approved { reviewer: reviewer.name, note: text, comments }
            } else {
                Review::Revise { reviewer: reviewer.name, feedback: text, comments }
            }
        }
        Err(err) => Review::Unavailable(err.to_string()),
    }
}

/// Records a reviewed result: approved → done; changes asked → back to the builder with the
/// feedback in the thread (up to the round limit, then a person); no reviewer → waits in review.
pub(super) async fn finish_reviewed(
    e: &Engine,
    task: &Task,
    token: &str,
    actor: &str,
    s: super::exec::ExecSuccess,
    verdict: Review,
    change: Option<ChangeRecord>,
) {
    let f = &e.factory;
    // The verdict joins the change's record, with its line comments, for the diff view.
    let change = match (&verdict, change) {
        (Review::Approved { reviewer, note, comments } | Review::Revise { reviewer, feedback: note, comments }, Some(mut rec)) => {
            let approved = matches!(verdict, Review::Approved { .. });
            rec.review =
                Some(ReviewRecord { reviewer: format!("agent:{reviewer}"), approved, summary: note.clone(), comments: comments.clone() });
            rec.stage = if approved { "reviewed" } else { "changes_requested" }.into();
            let data = serde_json::json!({"head": rec.head, "approved": approved, "reviewer": reviewer, "comments": comments.len()});
            let _ = f.event("change.reviewed", actor, Some(&task.id), data).await;
            Some(rec)
        }
        (_, c) => c,
    };
    // A reviewed change of a product with a pipeline goes on to its merge, behind the merge gate:
    // the step is made before the task is finished (it waits, blocked, until the task is done), so
    // a REEF killed in between loses nothing.
    if let (Review::Approved { .. }, Some(rec)) = (&verdict, change.as_ref()) {
        if f.pipeline(task.product.as_deref()).await.ok().flatten().is_some() {
            let mut rec = rec.clone();
            if let Err(err) = f.propose_merge(task, &mut rec, actor).await {
                tracing::warn!(task = %task.id, error = %err, "could not make the merge step; the change waits for a person");
            }
            let _ = f.save_change(&rec).await;
        } else if let Some(rec) = &change {
            let _ = f.save_change(rec).await;
        }
    } else if let Some(rec) = &change {
        let _ = f.save_change(rec).await;
    }
    let now = f.now();
    let max_rounds = f.config.engine.max_review_rounds;
    // The verdict joins the thread as a review mark, through the one marked-comment operation
    // (redacted and evented like every other).
    let record = |reviewer: String, body: String| async move {
        let _ = f.comment_marked(&task.id, Mark::Review, &format!("agent:{reviewer}"), &body).await;
    };
    let lines = |c: &[LineComment]| c.iter().map(|x| format!("\n- {} line {}: {}", x.file, x.line, x.body)).collect::<String>();
    let (outcome, kind, note) = match verdict {
        Review::Approved { reviewer, note, comments } => {
            record(reviewer.clone(), format!("{REVIEW_PREFIX}approved: {note}{}", lines(&comments))).await;
            (
                Outcome::Succeeded { result: s.output, work_products: s.work_products, review: false },
                "task.done",
                serde_json::json!({"reviewed_by": reviewer}),
            )
        }
        Review::Revise { reviewer, feedback, comments } => {
            record(reviewer.clone(), format!("{REVIEW_PREFIX}{feedback}{}", lines(&comments))).await;
            if task.review_rounds() + 1 >= max_rounds {
                (
                    Outcome::NeedsHuman { reason: format!("review still asks for changes after {max_rounds} rounds: {feedback}") },
                    "task.needs_human",
                    serde_json::json!({"reviewed_by": reviewer}),
                )
            } else {
                (
                    Outcome::Retry { error: format!("review by {reviewer} asked for changes") },
                    "task.revise",
                    serde_json::json!({"reviewed_by": reviewer}),
                )
            }
        }
        Review::Unavailable(why) => (
            Outcome::Succeeded { result: s.output, work_products: s.work_products, review: true },
            "task.review",
            serde_json::json!({"review_unavailable": why}),
        ),
    };
    let (status, error) = summary(&outcome);
    let data = serde_json::json!({"status": status, "detail": note, "error": error});
    let ev = Event { id: new_id(), kind: kind.into(), at: now, actor: actor.into(), subject: Some(task.id.clone()), data };
    match f.ports.tasks.finish_with(&task.id, token, f.redacted(outcome), Some(f.redacted_event(ev)), now).await {
        Ok(_) => {}
        Err(err) => tracing::warn!(task = %task.id, error = %err, "could not record the reviewed outcome"),
    }
}
