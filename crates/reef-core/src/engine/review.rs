//! Review of a builder's result by another agent: who reviews, the verdict, and what it does to
//! the task (done; back to the builder with the feedback, up to the round limit; or a person).

use super::exec::Job;
use super::runtime::Engine;
use super::worker::summary;
use crate::*;
use tokio_util::sync::CancellationToken;

/// A reviewer's verdict.
#[derive(Debug)]
pub(super) enum Review {
    Approved {
        reviewer: String,
        note: String,
    },
    Revise {
        reviewer: String,
        feedback: String,
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

pub(super) async fn review(e: &Engine, job: &Job, output: &str, tx: super::exec::ProgressTx, cancel: CancellationToken) -> Review {
    let f = &e.factory;
    let Some(reviewer) = pick_reviewer(&f.config, &job.agent.name) else { return Review::Unavailable("no other agent to review".into()) };
    // A different model too: at least one rung above the builder's, never below mid.
    let tier = job.tier.escalate().unwrap_or(ModelTier::Frontier).max(ModelTier::Mid);
    let mut t = job.task.clone();
    t.title = format!("Review: {}", job.task.title);
    t.description = format!(
        "You review work done by {} for this task:\n\n{}\n{}\n\nTheir result:\n{}\n\nAnswer APPROVE if it is complete and correct, otherwise REVISE followed by what must change.",
        job.agent.name, job.task.title, job.task.description, output
    );
    t.error = None;
    let rjob = Job { task: t, agent: AgentConfig { model: None, tools: vec![], ..reviewer.clone() }, tier, ..job.clone() };
    match e.llm.run(&rjob, tx, cancel).await {
        Ok(v) => {
            let text = v.output.trim().to_string();
            if text.to_uppercase().starts_with("APPROVE") {
                Review::Approved { reviewer: reviewer.name, note: text }
            } else {
                Review::Revise { reviewer: reviewer.name, feedback: text }
            }
        }
        Err(err) => Review::Unavailable(err.to_string()),
    }
}

/// Records a reviewed result: approved → done; changes asked → back to the builder with the
/// feedback in the thread (up to the round limit, then a person); no reviewer → waits in review.
pub(super) async fn finish_reviewed(e: &Engine, task: &Task, token: &str, actor: &str, s: super::exec::ExecSuccess, verdict: Review) {
    let f = &e.factory;
    let now = f.now();
    let max_rounds = f.config.engine.max_review_rounds;
    // The verdict joins the thread as a review mark, through the one marked-comment operation
    // (redacted and evented like every other).
    let record = |reviewer: String, body: String| async move {
        let _ = f.comment_marked(&task.id, Mark::Review, &format!("agent:{reviewer}"), &body).await;
    };
    let (outcome, kind, note) = match verdict {
        Review::Approved { reviewer, note } => {
            record(reviewer.clone(), format!("{REVIEW_PREFIX}approved: {note}")).await;
            (
                Outcome::Succeeded { result: s.output, work_products: s.work_products, review: false },
                "task.done",
                serde_json::json!({"reviewed_by": reviewer}),
            )
        }
        Review::Revise { reviewer, feedback } => {
            record(reviewer.clone(), format!("{REVIEW_PREFIX}{feedback}")).await;
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
