//! Settings documents that hold a map several REEF processes edit (saved schedules, pipelines'
//! revisions): read as a map, changed under a lease.
//!
//! Invariant: two processes saving at once do not undo each other (each read-change-write holds
//! the document's lease), and a document that is not a map is never written over (that would lose
//! what it holds).

use super::Factory;
use crate::settings::Key;
use crate::*;
use std::future::Future;
use std::time::Duration;

impl Factory {
    /// The document under `key` as a map (empty when absent); `what` says what it maps, for the
    /// error when another program wrote something else there.
    pub(crate) async fn settings_map(&self, key: Key<'_>, what: &str) -> StoreResult<serde_json::Map<String, serde_json::Value>> {
        match self.ports.settings.get(&key.id()).await? {
            None => Ok(Default::default()),
            Some(serde_json::Value::Object(m)) => Ok(m),
            Some(_) => Err(StoreError::Malformed { collection: "settings".into(), id: key.id(), reason: format!("not a map of {what}") }),
        }
    }

    /// Runs `change` holding the lease `lock` (waiting up to 2 s for another process's).
    pub(crate) async fn under_lock<T, F, Fut>(&self, lock: &str, change: F) -> StoreResult<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        let me = format!("{lock}:{}", new_id());
        let ttl = Duration::from_secs(10);
        let mut tries = 0;
        while !self.ports.leases.acquire(lock, &me, ttl, self.now()).await? {
            tries += 1;
            if tries > 100 {
                return Err(StoreError::Conflict(format!("another process is saving {lock}; try again")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let r = change().await;
        let _ = self.ports.leases.release(lock, &me).await;
        r
    }
}
