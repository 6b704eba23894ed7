//! Transactions retried as the driver documents: the whole transaction again on an error labelled
//! `TransientTransactionError`, the commit alone again on `UnknownTransactionCommitResult`, both
//! for at most two minutes (the driver's own convenient API's limit). Invariant: a retried body
//! runs in a fresh transaction — the failed one was aborted (a dropped session aborts it) — so
//! nothing it did counts twice.

use super::mongo_err;
use mongodb::error::{Error as MongoError, TRANSIENT_TRANSACTION_ERROR, UNKNOWN_TRANSACTION_COMMIT_RESULT};
use mongodb::ClientSession;
use reef_core::StoreError;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long a transaction is retried, as the driver's `and_run` does.
pub const RETRY_FOR: Duration = Duration::from_secs(120);

/// How `mongo_err` marks an error the server says the whole transaction may be retried after.
pub(crate) const TRANSIENT: &str = "transient transaction error";

/// Whether the driver labelled `e` as one the whole transaction may be retried after.
pub(crate) fn labelled_transient(e: &MongoError) -> bool {
    e.contains_label(TRANSIENT_TRANSACTION_ERROR)
}

pub(crate) fn is_transient(e: &StoreError) -> bool {
    matches!(e, StoreError::Unavailable(m) if m.starts_with(TRANSIENT))
}

/// Commits, again while the outcome is unknown (the commit is idempotent on the server).
pub(crate) async fn commit(s: &mut ClientSession) -> Result<(), StoreError> {
    let start = Instant::now();
    let mut attempt = 0u32;
    loop {
        match s.commit_transaction().await {
            Ok(()) => return Ok(()),
            Err(e) if e.contains_label(UNKNOWN_TRANSACTION_COMMIT_RESULT) && start.elapsed() < RETRY_FOR => {
                attempt += 1;
                tracing::warn!(attempt, error = %e, "MongoDB: commit outcome unknown; committing again");
                tokio::time::sleep(backoff(attempt)).await;
            }
            Err(e) => return Err(mongo_err(e)),
        }
    }
}

/// Runs `once` (which starts, fills and commits its own transaction) until it succeeds, fails
/// for a reason other than a transient one, or `RETRY_FOR` has passed.
pub(crate) async fn retrying<T, F, Fut>(what: &str, mut once: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let start = Instant::now();
    let mut attempt = 0u32;
    loop {
        match once().await {
            Err(e) if is_transient(&e) && start.elapsed() < RETRY_FOR => {
                attempt += 1;
                tracing::warn!(what, attempt, error = %e, "MongoDB: transient transaction error; running the transaction again");
                tokio::time::sleep(backoff(attempt)).await;
            }
            other => return other,
        }
    }
}

/// 5 ms doubling to at most 500 ms, with jitter so that two contenders do not collide again.
fn backoff(attempt: u32) -> Duration {
    let base = 5u64.saturating_mul(1 << attempt.min(7)).min(500);
    Duration::from_millis(base / 2 + rand::random_range(0..=base / 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn transient_failures_run_the_transaction_again_and_others_do_not() {
        let calls = AtomicU32::new(0);
        let out = retrying("test", || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n < 3 {
                Err(StoreError::Unavailable(format!("{TRANSIENT}: write conflict")))
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(out.unwrap(), 3, "three transient failures, then the fourth run commits");

        let calls = AtomicU32::new(0);
        let out: Result<(), _> = retrying("test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::BudgetRefused {
                scope: "global:day".into(),
                cap: reef_core::Usd(1),
                spent: reef_core::Usd(1),
                reserved: reef_core::Usd(0),
                requested: reef_core::Usd(1),
            })
        })
        .await;
        assert!(matches!(out, Err(StoreError::BudgetRefused { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a refusal is an answer, not a reason to retry");

        let out: Result<(), _> = retrying("test", || async { Err(StoreError::Unavailable("no server answered".into())) }).await;
        assert!(!is_transient(&out.unwrap_err()), "an outage is not a transient transaction error");
    }

    #[test]
    fn backoff_grows_and_stays_bounded() {
        assert!(backoff(1) <= Duration::from_millis(10));
        assert!((1..40).all(|a| backoff(a) <= Duration::from_millis(500)));
    }
}
