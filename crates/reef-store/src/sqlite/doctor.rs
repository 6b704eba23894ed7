//! What `reef doctor` finds out about an embedded store file: the SQLite library, write-ahead
//! logging, the vector extension, the change history's triggers and the file's modes.

use super::{db_err, SqliteStore};
use reef_core::doctor::{Check, Verdict};
use std::os::unix::fs::PermissionsExt;

impl SqliteStore {
    /// The store's capabilities as REEF uses them.
    pub async fn inspect(&self) -> Vec<Check> {
        let path = self.inner.path.clone();
        let probed = self
            .read(|c| {
                let journal: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).map_err(db_err)?;
                let vec: Option<String> = c.query_row("SELECT vec_version()", [], |r| r.get(0)).ok();
                let triggers: i64 = c
                    .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'tasks_%_change'", [], |r| r.get(0))
                    .map_err(db_err)?;
                Ok((journal, vec, triggers))
            })
            .await;
        let mut out = vec![Check::new("SQLite", Verdict::Holds, format!("SQLite {} (bundled) at {}", rusqlite::version(), path.display()))];
        match probed {
            Err(e) => out.push(Check::new("store", Verdict::Fails, format!("cannot read the store: {e}"))),
            Ok((journal, vec, triggers)) => {
                out.push(if journal.eq_ignore_ascii_case("wal") {
                    Check::new("write-ahead log", Verdict::Holds, "readers never wait for the writer")
                } else {
                    Check::new("write-ahead log", Verdict::Fails, format!("journal mode {journal}: the file system refused WAL"))
                });
                out.push(match vec {
                    Some(v) => Check::new("vector search", Verdict::Holds, format!("sqlite-vec {v} loaded; memory search scans in REEF")),
                    None => Check::new("vector search", Verdict::FallsBack, "sqlite-vec not loaded; memory search scans in REEF"),
                });
                out.push(if triggers >= 3 {
                    Check::new("change feed", Verdict::Holds, "triggers record every change, from any program, for the watch")
                } else {
                    Check::new(
                        "change feed",
                        Verdict::Fails,
                        format!("{triggers} of 3 task triggers: writes by other programs would not wake the dispatcher"),
                    )
                });
            }
        }
        let mode = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777).ok();
        let (file, dir) = (mode(&path), path.parent().and_then(mode));
        out.push(match (file, dir) {
            (Some(0o600), Some(0o700)) => Check::new("file modes", Verdict::Holds, "store 0600 in a 0700 directory: this user's only"),
            (f, d) => {
                let show = |m: Option<u32>| m.map(|m| format!("{m:o}")).unwrap_or_else(|| "unreadable".into());
                Check::new(
                    "file modes",
                    Verdict::Fails,
                    format!("store {}, directory {}: other users may read the factory", show(f), show(d)),
                )
            }
        });
        out
    }
}
