//! `reef doctor`'s proofs: REEF's guarantees tried for real on a scratch store of the configured
//! kind — concurrent claims take each task once, concurrent reservations never pass a cap, a watch
//! resumed from its token misses nothing written while it was down. Invariant: it is handed a
//! scratch store and writes nowhere else; each check says what held, what fell back, what failed.

use crate::*;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// What REEF relies on is there and behaves.
    Holds,
    /// Not there; REEF uses its documented fallback (named in the detail).
    FallsBack,
    /// A guarantee does not hold on this store: REEF must not be trusted with it as it is.
    Fails,
    /// Not tried, and why.
    Skipped,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::FallsBack => "falls back",
            Verdict::Fails => "FAILS",
            Verdict::Skipped => "skipped",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Check {
    pub name: String,
    pub verdict: Verdict,
    pub detail: String,
}

impl Check {
    pub fn new(name: &str, verdict: Verdict, detail: impl Into<String>) -> Self {
        Self { name: name.into(), verdict, detail: detail.into() }
    }
}

/// Tasks, claimers and reservations the proofs use: enough contention to catch a store that
/// hands one document to two callers, small enough to run in seconds.
const TASKS: usize = 48;
const CLAIMERS: usize = 8;
const RESERVERS: usize = 32;

/// Runs every proof against `ports` (a scratch store: it writes tasks, ledger scopes and changes),
/// reading `clock` as each one starts (a polling watch follows writes by their time).
pub async fn prove(ports: &Ports, clock: &dyn Clock) -> Vec<Check> {
    let claims = claims(ports, clock.now()).await;
    let reservations = reservations(ports, clock.now()).await;
    vec![claims, reservations, watch(ports, clock).await]
}

async fn claims(p: &Ports, now: Timestamp) -> Check {
    const NAME: &str = "concurrent claims";
    for i in 0..TASKS {
        if let Err(e) = p.tasks.create(NewTask::titled(format!("doctor task {i}")), now).await {
            return Check::new(NAME, Verdict::Fails, format!("cannot create a task: {e}"));
        }
    }
    let claimers = (0..CLAIMERS).map(|w| {
        let tasks = p.tasks.clone();
        tokio::spawn(async move {
            let mut got = vec![];
            loop {
                match tasks.claim(&format!("doctor-{w}"), &ClaimFilter::default(), Duration::from_secs(600), now).await {
                    Ok(Some(t)) => got.push(t.id),
                    Ok(None) => return Ok(got),
                    Err(e) => return Err(e),
                }
            }
        })
    });
    let mut count: HashMap<String, usize> = HashMap::new();
    for r in futures::future::join_all(claimers).await {
        match r {
            Ok(Ok(ids)) => ids.into_iter().for_each(|id| *count.entry(id).or_default() += 1),
            Ok(Err(e)) => return Check::new(NAME, Verdict::Fails, format!("a claim failed: {e}")),
            Err(e) => return Check::new(NAME, Verdict::Fails, format!("a claimer panicked: {e}")),
        }
    }
    let twice: Vec<&String> = count.iter().filter(|(_, n)| **n > 1).map(|(id, _)| id).collect();
    if !twice.is_empty() {
        return Check::new(
            NAME,
            Verdict::Fails,
            format!("{} of {TASKS} tasks were handed to two claimers at once (e.g. {})", twice.len(), twice[0]),
        );
    }
    if count.len() != TASKS {
        return Check::new(
            NAME,
            Verdict::Fails,
            format!("{CLAIMERS} claimers took {} of {TASKS} tasks; the rest were never handed out", count.len()),
        );
    }
    Check::new(NAME, Verdict::Holds, format!("{CLAIMERS} claimers took {TASKS} tasks, each exactly once"))
}

async fn reservations(p: &Ports, now: Timestamp) -> Check {
    const NAME: &str = "concurrent reservations";
    let (cap, each) = (Usd::from_dollars(1.0), Usd::from_dollars(0.1));
    let fits = (cap.0 / each.0) as usize;
    let scope = ScopeKey(format!("doctor:{}", new_id()));
    let reservers = (0..RESERVERS).map(|_| {
        let (ledger, scope) = (p.ledger.clone(), scope.clone());
        tokio::spawn(async move {
            let req = ReserveRequest {
                id: new_id(),
                scopes: vec![ScopeCap { scope, cap }],
                amount: each,
                expires_at: now + chrono::Duration::minutes(10),
                task_id: None,
                agent: None,
            };
            ledger.reserve(req, now).await
        })
    });
    let (mut granted, mut refused) = (0usize, 0usize);
    for r in futures::future::join_all(reservers).await {
        match r {
            Ok(Ok(_)) => granted += 1,
            Ok(Err(StoreError::BudgetRefused { .. })) => refused += 1,
            Ok(Err(e)) => return Check::new(NAME, Verdict::Fails, format!("a reservation failed: {e}")),
            Err(e) => return Check::new(NAME, Verdict::Fails, format!("a reserver panicked: {e}")),
        }
    }
    let held = match p.ledger.totals(std::slice::from_ref(&scope)).await {
        Ok(t) => t.first().map(|t| t.reserved).unwrap_or_default(),
        Err(e) => return Check::new(NAME, Verdict::Fails, format!("cannot read the scope back: {e}")),
    };
    if granted > fits || held > cap {
        return Check::new(
            NAME,
            Verdict::Fails,
            format!("{granted} holds of {each} were granted under a {cap} cap ({held} held): spending could pass a cap"),
        );
    }
    if granted < fits {
        return Check::new(NAME, Verdict::Holds, format!("never past the cap, but only {granted} of {fits} holds that fit were granted"));
    }
    Check::new(NAME, Verdict::Holds, format!("{RESERVERS} racing holds of {each} under a {cap} cap: {granted} granted, {refused} refused"))
}

async fn watch(p: &Ports, clock: &dyn Clock) -> Check {
    const NAME: &str = "watch resumed after a restart";
    let stream = match p.changes.watch(None).await {
        Ok(s) => s,
        Err(e) => return Check::new(NAME, Verdict::Fails, format!("cannot watch: {e}")),
    };
    let a = match p.tasks.create(NewTask::titled("doctor watch a"), clock.now()).await {
        Ok((t, _)) => t,
        Err(e) => return Check::new(NAME, Verdict::Fails, e.to_string()),
    };
    let (stream, token) = match until_task(stream, &a.id).await {
        Ok(x) => x,
        Err(why) => return Check::new(NAME, Verdict::Fails, why),
    };
    // "Down": the stream is gone while two more changes are written.
    drop(stream);
    let mut missed = vec![];
    for t in ["doctor watch b", "doctor watch c"] {
        match p.tasks.create(NewTask::titled(t), clock.now()).await {
            Ok((t, _)) => missed.push(t.id),
            Err(e) => return Check::new(NAME, Verdict::Fails, e.to_string()),
        }
    }
    let resumed = match p.changes.watch(Some(token)).await {
        Ok(s) => s,
        Err(e) => return Check::new(NAME, Verdict::Fails, format!("cannot resume from the saved token: {e}")),
    };
    let mut s = resumed;
    for id in &missed {
        match until_task(s, id).await {
            Ok((rest, _)) => s = rest,
            Err(why) => return Check::new(NAME, Verdict::Fails, format!("a change written while the watch was down was missed: {why}")),
        }
    }
    Check::new(NAME, Verdict::Holds, "resumed from its token, it saw both changes written while it was down")
}

/// Reads `s` until the change to task `want`; the stream and that change's token, or why not.
async fn until_task(mut s: ChangeStream, want: &str) -> Result<(ChangeStream, ResumeToken), String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(15), s.next()).await {
            Ok(Some(Ok(c))) if c.collection == collections::TASKS && c.id == want => return Ok((s, c.token)),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return Err(format!("the watch failed: {e}")),
            Ok(None) => return Err("the watch ended".to_string()),
            Err(_) => return Err(format!("no change for task {want} within 15 s")),
        }
    }
}
