//! The demo's tasks, each moved to its state through the same store operations the engine uses
//! (claim, start, finish, transition), with the events a real run leaves.

use reef_core::factory::Factory;
use reef_core::*;
use serde_json::json;
use std::time::Duration;

/// Moves a fresh task to `target` through the same store operations the engine uses.
pub(super) async fn drive_to(f: &Factory, t: &Task, target: TaskStatus, agent: &str) -> anyhow::Result<()> {
    let now = f.now();
    let p = &f.ports.tasks;
    let mine = ClaimFilter { agents: Some(vec![agent.to_string()]), include_unassigned: false };
    // Claim exactly this task: it is the only one of this agent's in `pending` at this moment
    // because the demo drives each task to its state before creating the next.
    let claim = || async {
        let c = p.claim(&format!("demo-worker-{agent}"), &mine, Duration::from_secs(3600), now).await?;
        anyhow::ensure!(c.as_ref().map(|c| c.id.as_str()) == Some(t.id.as_str()), "demo claimed an unexpected task");
        Ok::<_, anyhow::Error>(c.and_then(|c| c.lease).map(|l| l.token).unwrap_or_default())
    };
    let ok = |r: &str| Outcome::Succeeded { result: r.to_string(), work_products: WorkProducts::default(), review: false };
    match target {
        TaskStatus::Pending | TaskStatus::Backlog | TaskStatus::Blocked => {}
        TaskStatus::Claimed => {
            claim().await?;
        }
        TaskStatus::Running => {
            let tok = claim().await?;
            p.start(&t.id, &tok, now).await?;
            // What the overview shows as its agent's last line, as a worker records it.
            f.event(
                "task.output",
                &format!("agent:{agent}"),
                Some(&t.id),
                json!({"line": "cargo test: 14 of 22 checks pass; fixing the DNS timeout next"}),
            )
            .await?;
        }
        TaskStatus::Done => {
            let tok = claim().await?;
            p.start(&t.id, &tok, now).await?;
            p.finish(&t.id, &tok, ok("Completed in the demo."), now).await?;
        }
        TaskStatus::Review => {
            let tok = claim().await?;
            p.finish(
                &t.id,
                &tok,
                Outcome::Succeeded {
                    result: "Reminder emails implemented; needs a second pair of eyes.".into(),
                    work_products: WorkProducts {
                        branch: Some("feat/reminders".into()),
                        pr_url: Some("https://github.com/factory/invoicely/pull/42".into()),
                        ..Default::default()
                    },
                    review: true,
                },
                now,
            )
            .await?;
        }
        TaskStatus::Failed => {
            let tok = claim().await?;
            let error = "test still flaky after 3 attempts: timeout waiting for #submit";
            p.finish(&t.id, &tok, Outcome::Failed { error: error.into() }, now).await?;
            f.event("task.failed", &format!("agent:{agent}"), Some(&t.id), json!({"error": error, "agent": agent, "alert": true})).await?;
        }
        TaskStatus::NeedsHuman => {
            let tok = claim().await?;
            p.finish(
                &t.id,
                &tok,
                Outcome::NeedsHuman { reason: "security changes are never automatic: rotate the key in the Stripe dashboard".into() },
                now,
            )
            .await?;
        }
        TaskStatus::AwaitingApproval => {
            claim().await?;
            let wp = WorkProducts {
                preview_url: Some(format!("https://preview.factory.dev/{}", t.product.as_deref().unwrap_or("x"))),
                branch: Some("release".into()),
                ..Default::default()
            };
            p.transition(&t.id, &[TaskStatus::Claimed], TaskStatus::AwaitingApproval, None, now).await?;
            let a = f
                .ports
                .approvals
                .request(
                    NewApproval {
                        task_id: t.id.clone(),
                        action_class: t.action_class.clone().unwrap_or_default(),
                        summary: t.title.clone(),
                        work_products: wp,
                        requested_by: format!("agent:{agent}"),
                        expires_at: Some(now + chrono::Duration::hours(24)),
                        // It covers the run after the decision: the claim that follows is attempt 2.
                        attempt: 2,
                        in_task: false,
                    },
                    now,
                )
                .await?;
            f.ports
                .events
                .append(Event {
                    id: new_id(),
                    kind: "approval.requested".into(),
                    at: now,
                    actor: format!("agent:{agent}"),
                    subject: Some(t.id.clone()),
                    data: json!({"approval": a.id, "action_class": a.action_class}),
                })
                .await?;
        }
        TaskStatus::Paused => {
            p.transition(&t.id, &[TaskStatus::Pending], TaskStatus::Paused, None, now).await?;
        }
        TaskStatus::Cancelled => {
            p.transition(&t.id, &[TaskStatus::Pending], TaskStatus::Cancelled, Some("operator: not a priority this quarter"), now).await?;
        }
    }
    Ok(())
}
