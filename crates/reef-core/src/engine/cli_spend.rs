//! What a CLI run is charged when it ends. In a sealed sandbox (no network but REEF's) the
//! meter's count is the spend: the meter is the only way to a model. With the host's network, the
//! larger of the meter's count and the agent's report. Unmetered, its report (counted for at most
//! ten times its hold), else its whole soft cap.
//!
//! Invariant: what an agent reports never lowers what the meter counted; a report far from the
//! meter is raised as an alert; every hold is settled.

use super::budget::{Budget, Hold};
use super::exec::Job;
use super::meter::RunPass;
use crate::Usd;
use std::time::Duration;

/// How long the calls a run still had in flight when it stopped get to be counted.
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(10);

/// How a run ended, as far as its spend goes.
pub(crate) struct Ended<'a> {
    pub executor: &'a str,
    pub soft_cap: Option<Usd>,
    /// Its network was REEF's alone.
    pub sealed: bool,
    /// What the agent said it spent.
    pub reported: Option<Usd>,
    pub elapsed: Duration,
}

impl Ended<'_> {
    /// Settles `hold`; returns (what the hold was settled at, the run's cost to show).
    pub async fn settle(&self, b: &Budget, job: &Job, hold: Option<&Hold>, pass: Option<RunPass>) -> (Usd, Usd) {
        // A report is the agent's word: a wild number can neither overflow the ledger nor take
        // the whole factory's day with it.
        let reported = match (self.reported, hold) {
            (Some(c), Some(h)) => Some(c.min(Usd(h.reservation.amount.0.saturating_mul(10)))),
            (c, _) => c,
        };
        // The meter's count once the calls still in flight are settled; the credential goes
        // first, so nothing new starts.
        let metered = match pass {
            Some(p) => {
                let run = p.run.clone();
                drop(p);
                run.quiet(IN_FLIGHT_GRACE).await;
                Some(run.books())
            }
            None => None,
        };
        // A call still in flight after the grace is counted at its worst case: a run cannot end
        // just before a long answer lands and leave it off the ledger.
        let counted = metered.map(|m| Usd(m.spent.0.saturating_add(m.pending.0)));
        let spent = match (counted, self.sealed) {
            (Some(m), true) => m,
            (Some(m), false) => m.max(reported.unwrap_or_default()),
            (None, _) => reported.or(self.soft_cap).unwrap_or_default(),
        };
        if let Some(h) = hold {
            let _ = b.settle(h, spent).await;
        }
        let actor = format!("agent:{}", job.agent.name);
        match (&metered, reported) {
            (Some(m), Some(r)) if r.0.abs_diff(m.spent.0) > (m.spent.0 / 10).max(10_000) as u64 => {
                // Sealed, the meter's count is what was charged and the report changed nothing: kept
                // in the log, not marked as an alert (a CLI that prices REEF's model names by its
                // own table, as Claude Code does, disagrees on every run). Unsealed, a report above
                // the meter may be spend around it: an alert.
                let data = serde_json::json!({
                    "task": job.task.id, "executor": self.executor, "reported": r, "metered": m.spent,
                    "calls": m.calls, "settled": spent, "alert": !self.sealed, "sealed": self.sealed,
                });
                let _ = b.factory.event("budget.report_mismatch", &actor, Some(&job.task.id), data).await;
            }
            // Metered calls are in llm_calls already, one by one.
            (Some(_), _) => {}
            (None, Some(c)) => {
                // An unmetered CLI agent's spend goes into llm_calls under the executor's name.
                let _ = b.record_call(job, format!("cli:{}", self.executor), None, (0, 0), c, self.elapsed).await;
            }
            (None, None) => {}
        }
        (spent, if metered.is_some() { spent } else { reported.unwrap_or_default() })
    }
}
