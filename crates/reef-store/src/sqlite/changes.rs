//! `ChangeFeed` on SQLite: triggers append every write to `changes`; a watcher reads past its
//! sequence number whenever this process wrote (in-process wake-up) or another process committed
//! (`PRAGMA data_version` moved).
//!
//! Invariant: a watcher sees every change after its resume point exactly once, in commit order,
//! or is told the point is older than the kept history (`HistoryLost`).

use super::{db_err, open_connection, SqliteStore};
use async_trait::async_trait;
use reef_core::*;
use rusqlite::{params, Connection, OptionalExtension};
use std::time::Duration;

/// How long the change history is kept; a watcher further behind must rescan.
pub const CHANGE_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often a watcher looks at `data_version` for other processes' commits.
const POLL: Duration = Duration::from_millis(10);

pub(crate) fn prune(conn: &Connection, now: Timestamp) -> Result<(), StoreError> {
    let cutoff = now.timestamp_millis() - CHANGE_RETENTION.as_millis() as i64;
    // Keep the newest row always, so the sequence (and so resume tokens) never goes backwards.
    conn.execute("DELETE FROM changes WHERE at < ?1 AND seq < (SELECT max(seq) FROM changes)", [cutoff]).map_err(db_err)?;
    Ok(())
}

fn parse_token(t: &ResumeToken) -> Result<i64, StoreError> {
    t.0.parse().map_err(|_| StoreError::Invalid(format!("resume token {:?} is not from the embedded store", t.0)))
}

fn fetch(conn: &Connection, after: i64) -> Result<Vec<Change>, StoreError> {
    let mut st = conn.prepare_cached("SELECT seq, coll, op, doc_id FROM changes WHERE seq > ?1 ORDER BY seq LIMIT 1000").map_err(db_err)?;
    let rows = st
        .query_map([after], |r| {
            let op: String = r.get(2)?;
            Ok(Change {
                token: ResumeToken(r.get::<_, i64>(0)?.to_string()),
                collection: r.get(1)?,
                op: match op.as_str() {
                    "insert" => ChangeOp::Insert,
                    "delete" => ChangeOp::Delete,
                    _ => ChangeOp::Update,
                },
                id: r.get(3)?,
            })
        })
        .map_err(db_err)?;
    rows.collect::<Result<_, _>>().map_err(db_err)
}

#[async_trait]
impl ChangeFeed for SqliteStore {
    async fn watch(&self, from: Option<ResumeToken>) -> StoreResult<ChangeStream> {
        let path = self.path().to_path_buf();
        // The watcher has its own connection so `data_version` reports every other writer,
        // this process's shared connection included.
        let conn = tokio::task::spawn_blocking(move || open_connection(&path)).await.map_err(|e| StoreError::Backend(e.to_string()))??;
        let (mut conn, start) = tokio::task::spawn_blocking(move || {
            let (min, max): (Option<i64>, Option<i64>) =
                conn.query_row("SELECT min(seq), max(seq) FROM changes", [], |r| Ok((r.get(0)?, r.get(1)?))).map_err(db_err)?;
            let start = match &from {
                None => max.unwrap_or(0),
                Some(t) => {
                    let seq = parse_token(t)?;
                    if let Some(min) = min {
                        if seq < min - 1 {
                            return Err(StoreError::HistoryLost(t.0.clone()));
                        }
                    }
                    seq
                }
            };
            Ok::<_, StoreError>((conn, start))
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))??;

        let (tx, rx) = tokio::sync::mpsc::channel::<StoreResult<Change>>(1024);
        let mut woken = self.inner.wake.subscribe();
        tokio::spawn(async move {
            let mut after = start;
            let mut version: i64 = -1;
            loop {
                let res = tokio::task::spawn_blocking(move || {
                    let v: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0)).map_err(db_err)?;
                    let batch = if v != version { fetch(&conn, after)? } else { vec![] };
                    Ok::<_, StoreError>((conn, v, batch))
                })
                .await;
                let (c, v, batch) = match res {
                    Ok(Ok(x)) => x,
                    Ok(Err(e)) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                    Err(_) => return,
                };
                conn = c;
                let full = batch.len() == 1000;
                // A full batch means more is waiting: read again before trusting data_version.
                version = if full { -1 } else { v };
                for ch in batch {
                    after = ch.token.0.parse().unwrap_or(after);
                    if tx.send(Ok(ch)).await.is_err() {
                        return;
                    }
                }
                if full {
                    continue;
                }
                tokio::select! {
                    _ = woken.changed() => version = -1,
                    _ = tokio::time::sleep(POLL) => {}
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })))
    }

    async fn save_cursor(&self, listener: &str, token: &ResumeToken) -> StoreResult<()> {
        let (l, t) = (listener.to_string(), token.0.clone());
        self.write(move |tx| {
            tx.execute("INSERT OR REPLACE INTO cursors (listener, token) VALUES (?1, ?2)", params![l, t]).map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn load_cursor(&self, listener: &str) -> StoreResult<Option<ResumeToken>> {
        let l = listener.to_string();
        self.read(move |c| {
            Ok(c.query_row("SELECT token FROM cursors WHERE listener = ?1", [l], |r| r.get::<_, String>(0))
                .optional()
                .map_err(db_err)?
                .map(ResumeToken))
        })
        .await
    }
}
