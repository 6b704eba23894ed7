//! The webhook relay: delivers the events each subscription wants, at least once, in order, from
//! the event log itself — the log is the outbox (every state change writes its event in the same
//! store write), so a crash or an unreachable receiver loses nothing.
//!
//! Invariant: a subscription follows the log by position, in the store's own order (never by
//! clock), page after page however many other events surround the ones it wants; its position
//! moves past an event only once the receiver answered 2xx (or the event was dead-lettered), and
//! is saved after every delivery, so a kill between the answer and the save means one repeat,
//! never a loss. Where the log is not commit order (MongoDB), a look-back pass fills what late
//! writers put behind the position. Receivers dedupe by `X-Reef-Event-Id`. One relay is active
//! per factory (a lease).

use crate::factory::Factory;
use crate::rules::webhook::Subscription;
use crate::time::Timestamp;
use crate::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

mod desk;
pub use desk::*;

const LEASE_NAME: &str = "webhooks";
/// Events written up to this long after their own timestamp (another process's clock, a slow
/// write) are still delivered: each pass reads back this far behind the watermark.
const LOOKBACK: Duration = Duration::from_secs(120);
const PAGE: usize = 500;
/// Pages one pass reads before it yields to the other subscriptions.
const PAGES_PER_PASS: usize = 20;
/// Refusals (4xx but 408 and 429) of one event before it is dead-lettered and the subscription
/// moves on; other failures (5xx, transport) are retried for as long as it takes.
pub const MAX_REFUSALS: u32 = 5;
/// Dead-lettered event ids kept per subscription (oldest dropped first).
const MAX_DEAD: usize = 200;
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// The delivery log's event kind; never itself delivered.
pub const DELIVERY_KIND: &str = "webhook.delivery";

pub use crate::links::Links;

/// A subscription's progress, in the store's settings (`webhook.state:<name>`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Progress {
    /// Every wanted event up to this place in the log is delivered (or dead-lettered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
    /// When the subscription started (and, for progress saved before positions existed, how
    /// far it had got): a subscription without a position starts at the log's end.
    #[serde(with = "crate::time::ts_opt", default)]
    pub watermark: Option<Timestamp>,
    /// Ids delivered at or after `watermark - LOOKBACK`, with their event times.
    #[serde(default)]
    pub delivered: BTreeMap<String, String>,
    /// Consecutive failures of the event at the head of the queue (for backoff and the log).
    #[serde(default)]
    pub failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Events the receiver kept refusing, passed over (newest last); `reef webhooks redeliver`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dead_letters: Vec<String>,
}

fn key(name: &str) -> String {
    crate::settings::Key::Relay(name).id()
}

pub async fn progress(f: &Factory, name: &str) -> StoreResult<Progress> {
    Ok(f.ports.settings.get(&key(name)).await?.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default())
}

async fn save(f: &Factory, name: &str, p: &Progress) -> StoreResult<()> {
    f.ports.settings.put(&key(name), serde_json::to_value(p).unwrap_or_default()).await
}

/// Delay before retry number `failures` (1, 2, 4 … seconds, at most ten minutes).
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(20).saturating_sub(1)).min(MAX_BACKOFF)
}

/// The events `sub` still has to receive, in log order (at most a page), with their positions.
pub async fn pending(f: &Factory, sub: &Subscription, p: &Progress) -> StoreResult<Vec<(String, Event)>> {
    let since = match (&p.position, p.watermark) {
        (Some(_), _) => None,
        // Progress from before positions: go on from its watermark, looking back as it did.
        (None, Some(w)) => Some(w - chrono::Duration::from_std(LOOKBACK).unwrap_or_default()),
        (None, None) => return Ok(vec![]),
    };
    let page = f.ports.events.log(p.position.as_deref(), since, PAGE).await?;
    Ok(page.into_iter().filter(|(_, e)| wanted(sub, p, e)).collect())
}

fn wanted(sub: &Subscription, p: &Progress, e: &Event) -> bool {
    e.kind != DELIVERY_KIND && e.kind != DEAD_KIND && sub.wants(&e.kind) && !p.delivered.contains_key(&e.id)
}

/// The kind of the alert raised when an event is dead-lettered; never itself delivered.
pub const DEAD_KIND: &str = "webhook.dead_letter";

/// What one pass over one subscription did.
#[derive(Debug, Default, PartialEq)]
pub struct Pass {
    pub delivered: usize,
    /// The receiver failed: retry after this long.
    pub retry_in: Option<Duration>,
}

/// How one delivery went.
enum Answer {
    Ok(u16),
    /// 4xx (but 408, 429): the receiver will not take this event.
    Refused(String),
    /// 5xx, 408, 429, transport: try again.
    Failed(String),
}

async fn send(f: &Factory, http: &reqwest::Client, sub: &Subscription, e: &Event, links: &Links) -> Answer {
    let l = if sub.approve_links && e.kind == "approval.requested" { links(e) } else { None };
    let (headers, body) = sub.delivery(e, l.as_ref(), f.now().timestamp());
    let mut req = http.post(sub.url.expose()).header("Content-Type", "application/json").body(body);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => Answer::Ok(r.status().as_u16()),
        Ok(r) if r.status().is_client_error() && !matches!(r.status().as_u16(), 408 | 429) => {
            Answer::Refused(format!("HTTP {}", r.status().as_u16()))
        }
        Ok(r) => Answer::Failed(format!("HTTP {}", r.status().as_u16())),
        Err(err) => Answer::Failed(describe(&err)),
    }
}

/// Delivers what `sub` is owed, in log order, stopping at the first failure; an event refused
/// `MAX_REFUSALS` times is dead-lettered (with an alert) and passed over.
pub async fn pass(f: &Factory, http: &reqwest::Client, sub: &Subscription, links: &Links) -> StoreResult<Pass> {
    let mut p = progress(f, &sub.name).await?;
    if p.position.is_none() && p.watermark.is_none() {
        // A new subscription starts at the log's end: it is not sent the factory's history.
        p.position = Some(f.ports.events.log_tail().await?.unwrap_or_default());
        p.watermark = Some(f.now());
        save(f, &sub.name, &p).await?;
        return Ok(Pass::default());
    }
    let mut out = Pass::default();
    for _ in 0..PAGES_PER_PASS {
        let since =
            if p.position.is_none() { p.watermark.map(|w| w - chrono::Duration::from_std(LOOKBACK).unwrap_or_default()) } else { None };
        let page = f.ports.events.log(p.position.as_deref().filter(|s| !s.is_empty()), since, PAGE).await?;
        let full = page.len() == PAGE;
        let mut moved = false;
        for (pos, e) in page {
            if !wanted(sub, &p, &e) {
                p.position = Some(pos);
                moved = true;
                continue;
            }
            if deliver_one(f, http, sub, &e, links, &mut p).await? {
                p.position = Some(pos);
                moved = false;
                save(f, &sub.name, &p).await?;
                out.delivered += 1;
            } else {
                if moved {
                    save(f, &sub.name, &p).await?;
                }
                out.retry_in = Some(backoff(p.failures));
                return Ok(out);
            }
        }
        if moved {
            save(f, &sub.name, &p).await?;
        }
        if !full {
            break;
        }
    }
    if !f.ports.events.log_is_commit_order() {
        if let Some(r) = look_back(f, http, sub, links, &mut p).await? {
            out.retry_in = Some(r);
            return Ok(out);
        }
    }
    // Forget delivered ids too old for any look-back to meet again.
    let floor = f.now() - chrono::Duration::from_std(LOOKBACK * 2).unwrap_or_default();
    let before = p.delivered.len();
    p.delivered.retain(|_, at| crate::time::parse_ts(at).map(|t| t >= floor).unwrap_or(false));
    if p.delivered.len() != before {
        save(f, &sub.name, &p).await?;
    }
    Ok(out)
}

/// One delivery attempt and its bookkeeping. `Ok(true)`: handled (delivered or dead-lettered),
/// the subscription may move past it; `Ok(false)`: retry later.
async fn deliver_one(
    f: &Factory,
    http: &reqwest::Client,
    sub: &Subscription,
    e: &Event,
    links: &Links,
    p: &mut Progress,
) -> StoreResult<bool> {
    let attempt = p.failures + 1;
    match send(f, http, sub, e, links).await {
        Answer::Ok(status) => {
            p.delivered.insert(e.id.clone(), crate::time::fmt_ts(&e.at));
            p.failures = 0;
            p.last_error = None;
            log(f, sub, e, attempt, Some(status), None).await?;
            Ok(true)
        }
        Answer::Refused(err) if attempt >= MAX_REFUSALS => {
            log(f, sub, e, attempt, None, Some(&err)).await?;
            p.delivered.insert(e.id.clone(), crate::time::fmt_ts(&e.at));
            p.dead_letters.push(e.id.clone());
            if p.dead_letters.len() > MAX_DEAD {
                p.dead_letters.remove(0);
            }
            p.failures = 0;
            p.last_error = Some(format!("{} dead-lettered after {attempt} refusals ({err})", e.id));
            f.event(
                DEAD_KIND,
                "reef:webhooks",
                Some(&sub.name),
                serde_json::json!({"event": e.id, "kind": e.kind, "attempts": attempt, "error": err, "alert": true}),
            )
            .await?;
            tracing::warn!(subscription = %sub.name, event = %e.id, "dead-lettered after {attempt} refusals");
            Ok(true)
        }
        Answer::Refused(err) | Answer::Failed(err) => {
            p.failures += 1;
            p.last_error = Some(err.clone());
            save(f, &sub.name, p).await?;
            log(f, sub, e, attempt, None, Some(&err)).await?;
            Ok(false)
        }
    }
}

/// Where the log is ordered by writers' clocks: events written late behind the position (up to
/// `LOOKBACK` behind the newest one read) are found here and delivered. Returns a retry delay on
/// failure.
async fn look_back(
    f: &Factory,
    http: &reqwest::Client,
    sub: &Subscription,
    links: &Links,
    p: &mut Progress,
) -> StoreResult<Option<Duration>> {
    let since = f.now() - chrono::Duration::from_std(LOOKBACK).unwrap_or_default();
    let mut after: Option<String> = None;
    for _ in 0..PAGES_PER_PASS {
        let page = f.ports.events.log(after.as_deref(), Some(since), PAGE).await?;
        let full = page.len() == PAGE;
        for (pos, e) in page {
            after = Some(pos.clone());
            // Only what is behind the position: what is ahead is the main pass's.
            if p.position.as_deref().is_some_and(|cur| pos.as_str() > cur) || !wanted(sub, p, &e) {
                continue;
            }
            if deliver_one(f, http, sub, &e, links, p).await? {
                save(f, &sub.name, p).await?;
            } else {
                return Ok(Some(backoff(p.failures)));
            }
        }
        if !full {
            break;
        }
    }
    Ok(None)
}

/// A transport error without the URL (it may carry a token, as Slack's do).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    what.to_string()
}

async fn log(f: &Factory, sub: &Subscription, e: &Event, attempt: u32, status: Option<u16>, error: Option<&str>) -> StoreResult<()> {
    f.event(
        DELIVERY_KIND,
        "reef:webhooks",
        Some(&sub.name),
        serde_json::json!({"event": e.id, "kind": e.kind, "attempt": attempt, "status": status, "error": error, "ok": error.is_none()}),
    )
    .await
}

/// Runs until `shutdown`: the lease holder delivers, others stand by. Woken by the change
/// stream (a new event) and by retry timers.
#[tracing::instrument(skip_all)]
pub async fn run(
    f: Factory,
    subs: Arc<Vec<Subscription>>,
    me: String,
    links: Arc<Links>,
    shutdown: CancellationToken,
) -> Result<(), super::EngineError> {
    use futures::StreamExt;
    if subs.is_empty() {
        return Ok(());
    }
    let ttl = f.config.engine.lease;
    let http =
        reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(|e| super::EngineError::Stopped(e.to_string()))?;
    let mut changes = f.ports.changes.watch(None).await?;
    let mut due: BTreeMap<String, tokio::time::Instant> = BTreeMap::new();
    let mut renew = tokio::time::interval(ttl / 3);
    loop {
        let active = f.ports.leases.acquire(LEASE_NAME, &me, ttl, f.now()).await.unwrap_or(false);
        if active {
            for s in subs.iter() {
                if due.get(&s.name).is_some_and(|t| *t > tokio::time::Instant::now()) {
                    continue;
                }
                match pass(&f, &http, s, links.as_ref()).await {
                    Ok(Pass { retry_in: Some(d), .. }) => {
                        due.insert(s.name.clone(), tokio::time::Instant::now() + d);
                    }
                    Ok(_) => {
                        due.remove(&s.name);
                    }
                    Err(err) => tracing::warn!(subscription = %s.name, %err, "webhook pass failed; retrying"),
                }
            }
        }
        let next_due = due.values().min().copied().unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(5));
        // Only a new event can owe a subscription anything: other changes (tasks, leases, the
        // relay's own progress) do not wake a pass.
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    let _ = f.ports.leases.release(LEASE_NAME, &me).await;
                    return Ok(());
                }
                _ = renew.tick() => break,
                _ = tokio::time::sleep_until(next_due) => break,
                c = changes.next() => match c {
                    None => {
                        changes = f.ports.changes.watch(None).await?;
                        break;
                    }
                    Some(Ok(c)) if c.collection != collections::EVENTS || c.op != ChangeOp::Insert => {}
                    Some(_) => break,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_ten_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(16));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
