//! The metered LLM endpoint's books: which credential belongs to which live CLI run, what that run
//! may still spend, what it has spent — counted from the gateway's answers, never from what the
//! agent says — and where its network may go (`egress`).
//!
//! Invariants: a credential is good only while its run lives (dropping the `RunPass` revokes it);
//! a request is admitted only when its worst case fits what the run has left after what it spent
//! and what its requests in flight may still cost, and its token limit is lowered until it does;
//! the moment a request would pass the reservation, the run is told to stop.

use super::budget::Budget;
use super::exec::Job;
use crate::rules::egress::EgressRule;
use crate::rules::pricing::PriceBook;
use crate::secret::Secret;
use crate::Usd;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The loopback ports a contained agent finds REEF on inside its own network namespace (nothing
/// else listens there, so they are always free): the metered endpoint and the egress proxy.
pub const INSIDE_LLM_PORT: u16 = 4100;
pub const INSIDE_PROXY_PORT: u16 = 3128;
/// Credentials start with this, so a leaked one is recognisable (it is dead once its run ends).
pub const CREDENTIAL_PREFIX: &str = "reef-run-";
/// Calls of one run in flight at once: more are answered 429. With the worst cases admitted
/// together this bounds how far an underestimated prompt can carry a run past its hold.
pub const MAX_IN_FLIGHT: u64 = 8;
/// Connections of one run open through the egress proxy at once.
pub const MAX_TUNNELS: usize = 32;

/// Why the meter refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeterError {
    #[error("this credential is not valid (runs hold one only while they live)")]
    Unknown,
    #[error("the run's budget is spent: {spent} of its {limit} reservation, {pending} in flight")]
    Exhausted { spent: Usd, pending: Usd, limit: Usd },
    #[error("the run's calls in flight hold what it has left ({pending} of {limit}, {in_flight} calls): retry when one ends")]
    Busy { pending: Usd, limit: Usd, in_flight: u64 },
    #[error("{0}")]
    BadRequest(String),
}

impl MeterError {
    /// The HTTP status an agent's client understands: 401 re-authenticate, 402 no budget, 400 fix it.
    pub fn status(&self) -> u16 {
        match self {
            MeterError::Unknown => 401,
            MeterError::Exhausted { .. } => 402,
            MeterError::Busy { .. } => 429,
            MeterError::BadRequest(_) => 400,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Books {
    pub spent: Usd,
    /// Worst cases of the requests in flight.
    pub pending: Usd,
    pub calls: u64,
    /// Requests refused for want of budget.
    pub refused: u64,
    pub in_flight: u64,
}

/// One live run as the meter sees it.
pub struct MeteredRun {
    pub job: Job,
    pub executor: String,
    pub limit: Usd,
    /// Where its network may go through REEF's proxy (empty: nowhere).
    pub egress: Vec<EgressRule>,
    books: Mutex<Books>,
    stop: CancellationToken,
    /// Woken whenever a request in flight settles.
    settled: tokio::sync::Notify,
    egress_refusals: std::sync::atomic::AtomicU64,
    /// Cancelled when the run's pass is dropped: its proxy tunnels close with it.
    closed: CancellationToken,
    tunnels: std::sync::atomic::AtomicUsize,
}

/// One open egress tunnel of a run; the slot frees when this drops.
pub struct Tunnel(Arc<MeteredRun>);

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.0.tunnels.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A request admitted against a run: its worst case is held until `charge` (or drop) settles it.
pub struct Admission {
    run: Arc<MeteredRun>,
    worst: Usd,
    settled: bool,
}

impl Drop for Admission {
    fn drop(&mut self) {
        // A request that never reached `charge` (its handler failed or was dropped) may have been
        // billed by the gateway all the same: the worst case is counted, never forgotten.
        if !self.settled {
            let mut b = self.run.lock();
            b.pending = Usd(b.pending.0.saturating_sub(self.worst.0));
            b.spent = Usd(b.spent.0.saturating_add(self.worst.0));
            b.in_flight = b.in_flight.saturating_sub(1);
            drop(b);
            self.run.settled.notify_waiters();
        }
    }
}

impl MeteredRun {
    fn new(job: Job, executor: &str, limit: Usd, egress: Vec<EgressRule>) -> Self {
        Self {
            job,
            executor: executor.to_string(),
            limit,
            egress,
            books: Mutex::new(Books::default()),
            stop: CancellationToken::new(),
            settled: Default::default(),
            egress_refusals: Default::default(),
            closed: CancellationToken::new(),
            tunnels: Default::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn books(&self) -> Books {
        *self.lock()
    }

    /// What the run may still put in flight.
    pub fn remaining(&self) -> Usd {
        let b = self.lock();
        Usd(self.limit.0.saturating_sub(b.spent.0).saturating_sub(b.pending.0).max(0))
    }

    /// Counts one refused egress connection; returns how many so far.
    pub fn count_refusal(&self) -> u64 {
        self.egress_refusals.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }

    /// What the run has not spent (calls in flight not deducted): what one call may be shaped to.
    pub fn unspent(&self) -> Usd {
        Usd(self.limit.0.saturating_sub(self.lock().spent.0).max(0))
    }

    /// Cancelled when the run reached its reservation (the executor stops the agent).
    pub fn stopped(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Waits (at most `within`) until no request of this run is in flight: a call that was still
    /// streaming when the agent stopped is counted before the run is settled.
    pub async fn quiet(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let woken = self.settled.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.lock().pending.0 <= 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return;
            }
        }
    }

    /// Holds `worst` for one request. Refused with `Busy` when only the calls in flight are in
    /// the way (the run goes on); with `Exhausted` — and the run told to stop — when what it has
    /// spent leaves no room for it at all.
    pub fn admit(self: &Arc<Self>, worst: Usd) -> Result<Admission, MeterError> {
        let mut b = self.lock();
        if self.stop.is_cancelled() || b.spent.0.saturating_add(worst.0) > self.limit.0 {
            b.refused += 1;
            let e = MeterError::Exhausted { spent: b.spent, pending: b.pending, limit: self.limit };
            drop(b);
            self.stop.cancel();
            return Err(e);
        }
        if b.in_flight >= MAX_IN_FLIGHT || b.spent.0.saturating_add(b.pending.0).saturating_add(worst.0) > self.limit.0 {
            b.refused += 1;
            return Err(MeterError::Busy { pending: b.pending, limit: self.limit, in_flight: b.in_flight });
        }
        b.pending = Usd(b.pending.0.saturating_add(worst.0));
        b.in_flight += 1;
        Ok(Admission { run: self.clone(), worst, settled: false })
    }

    /// Tells the run to stop: what it has spent leaves no room for another call.
    pub fn stop_now(&self) {
        self.lock().refused += 1;
        self.stop.cancel();
    }

    /// Cancelled when the run ends (its pass dropped).
    pub fn closed(&self) -> CancellationToken {
        self.closed.clone()
    }

    /// A slot for one egress tunnel, or `None` when the run has `MAX_TUNNELS` open.
    pub fn tunnel(self: &Arc<Self>) -> Option<Tunnel> {
        use std::sync::atomic::Ordering;
        let n = self.tunnels.fetch_add(1, Ordering::Relaxed);
        let t = Tunnel(self.clone());
        (n < MAX_TUNNELS).then_some(t)
    }
}

impl Admission {
    pub fn worst(&self) -> Usd {
        self.worst
    }

    /// Counts what the request really cost; a run whose next smallest call would not fit is stopped.
    pub fn charge(mut self, cost: Usd) -> Books {
        self.settled = true;
        let mut b = self.run.lock();
        b.pending = Usd(b.pending.0.saturating_sub(self.worst.0));
        b.spent = Usd(b.spent.0.saturating_add(cost.0.max(0)));
        b.calls += 1;
        b.in_flight = b.in_flight.saturating_sub(1);
        let out = *b;
        drop(b);
        if out.spent.0 >= self.run.limit.0 {
            self.run.stop.cancel();
        }
        self.run.settled.notify_waiters();
        out
    }
}

/// The meter: credentials of live runs, and what to price their calls with.
#[derive(Clone)]
pub struct Meter {
    pub budget: Budget,
    /// Token limit put on a request that names none.
    pub default_max_tokens: u64,
    runs: Arc<Mutex<HashMap<String, Arc<MeteredRun>>>>,
}

/// A run's credential; the run's entry goes when this is dropped.
pub struct RunPass {
    pub credential: Secret,
    pub run: Arc<MeteredRun>,
    runs: Arc<Mutex<HashMap<String, Arc<MeteredRun>>>>,
}

impl Drop for RunPass {
    fn drop(&mut self) {
        self.runs.lock().unwrap_or_else(|p| p.into_inner()).remove(self.credential.expose());
        self.run.closed.cancel();
    }
}

impl Meter {
    pub fn new(budget: Budget, default_max_tokens: u64) -> Self {
        Self { budget, default_max_tokens, runs: Default::default() }
    }

    pub fn prices(&self) -> &PriceBook {
        &self.budget.prices
    }

    /// A credential for one run of `executor` that may spend up to `limit`.
    pub fn open(&self, job: &Job, executor: &str, limit: Usd, egress: Vec<EgressRule>) -> RunPass {
        let credential = format!("{CREDENTIAL_PREFIX}{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let run = Arc::new(MeteredRun::new(job.clone(), executor, limit, egress));
        self.runs.lock().unwrap_or_else(|p| p.into_inner()).insert(credential.clone(), run.clone());
        RunPass { credential: Secret::new(credential), run, runs: self.runs.clone() }
    }

    /// The live run `credential` belongs to.
    pub fn authorize(&self, credential: &str) -> Result<Arc<MeteredRun>, MeterError> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner()).get(credential.trim()).cloned().ok_or(MeterError::Unknown)
    }

    /// Records a metered call in `llm_calls` (with its roll-ups) and raises an overshoot: a
    /// backend that answered past the limit it was sent is settled at its real cost, loudly.
    #[allow(clippy::too_many_arguments)]
    pub async fn record(&self, run: &MeteredRun, model: &str, tokens: (u64, u64), cost: Usd, limit_tokens: u64, latency: Duration) {
        let provider = self.budget.prices.provider(model).map(String::from);
        let _ = self.budget.record_call(&run.job, model.to_string(), provider, tokens, cost, latency).await;
        if limit_tokens > 0 && tokens.1 > limit_tokens {
            let data = serde_json::json!({
                "task": run.job.task.id, "agent": run.job.agent.name, "model": model, "executor": run.executor,
                "limit_tokens": limit_tokens, "completion_tokens": tokens.1, "cost": cost, "alert": true,
            });
            let _ =
                self.budget.factory.event("budget.overshoot", &format!("agent:{}", run.job.agent.name), Some(&run.job.task.id), data).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(limit: i64) -> Arc<MeteredRun> {
        let task = crate::NewTask::titled("t").into_task("t1".into(), crate::Timestamp::default());
        Arc::new(MeteredRun::new(
            Job {
                task,
                agent: crate::domain::agent::default_agents().remove(1),
                tier: crate::ModelTier::Cheap,
                attempt: 1,
                idempotency_key: "k".into(),
                workdir: "/tmp".into(),
                memories: vec![],
            },
            "x",
            Usd(limit),
            vec![],
        ))
    }

    #[test]
    fn requests_in_flight_count_against_what_is_left() {
        let r = run(100);
        let a = r.admit(Usd(60)).unwrap();
        assert!(matches!(r.admit(Usd(50)), Err(MeterError::Busy { .. })), "60 in flight + 50 would pass 100: wait");
        assert!(!r.stopped().is_cancelled(), "calls in flight alone do not stop a run");
        let b = a.charge(Usd(10));
        assert_eq!((b.spent, b.pending, b.calls, b.in_flight), (Usd(10), Usd(0), 1, 0));
        assert!(r.admit(Usd(50)).is_ok(), "room again once it settled");
        assert!(matches!(r.admit(Usd(95)), Err(MeterError::Exhausted { .. })), "10 spent + 95 passes 100 whatever is in flight");
        assert!(r.stopped().is_cancelled(), "a request past what is left stops the run");
    }

    #[test]
    fn a_run_holds_at_most_its_share_of_calls_and_tunnels() {
        let r = run(1_000_000);
        let held: Vec<_> = (0..MAX_IN_FLIGHT).map(|_| r.admit(Usd(1)).unwrap()).collect();
        assert!(matches!(r.admit(Usd(1)), Err(MeterError::Busy { .. })));
        drop(held);
        let t: Vec<_> = (0..MAX_TUNNELS).map(|_| r.tunnel().unwrap()).collect();
        assert!(r.tunnel().is_none());
        drop(t);
        assert!(r.tunnel().is_some(), "slots free when tunnels close");
    }

    #[test]
    fn a_request_that_never_settles_counts_its_worst_case() {
        let r = run(100);
        drop(r.admit(Usd(30)).unwrap());
        assert_eq!(r.books().spent, Usd(30));
        assert_eq!(r.remaining(), Usd(70));
        assert!(!r.stopped().is_cancelled());
    }

    #[test]
    fn reaching_the_reservation_stops_the_run() {
        let r = run(100);
        r.admit(Usd(100)).unwrap().charge(Usd(100));
        assert!(r.stopped().is_cancelled());
        assert!(matches!(r.admit(Usd(0)), Err(MeterError::Exhausted { .. })));
    }
}
