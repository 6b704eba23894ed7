//! `reef doctor` for either store: what the configured store can do, then REEF's guarantees proven
//! on a scratch store of the same kind (`reef_core::doctor::prove`). Invariant: it writes only
//! into a scratch store it removes afterwards — a temp file beside the embedded store, or a
//! `reef_doctor_*` database on the MongoDB server, made only with the operator's consent when the
//! server already holds a factory. Each host remembers the last report per store (`remember`), so
//! the app can offer doctor the first time it meets a store and show what was found.

use crate::{mongo, sqlite};
use reef_core::config::StoreChoice;
use reef_core::doctor::{prove, Check, Verdict};
use reef_core::{Clock, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// What doctor found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The configured store, as REEF names it (credentials redacted): `label`.
    pub store: String,
    /// When doctor ran (RFC 3339, UTC).
    pub at: String,
    /// Where the proofs ran (removed afterwards).
    pub scratch: String,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.verdict == Verdict::Fails)
    }
}

/// Examines the configured store, then proves the guarantees on a scratch one. `consent` is asked
/// (with what will be written where) before anything is written to a MongoDB server that already
/// holds a factory; `false` stops doctor with nothing written.
pub async fn run(choice: &StoreChoice, clock: &dyn Clock, consent: impl FnOnce(&str) -> bool) -> Result<Report, StoreError> {
    match choice {
        StoreChoice::Embedded { path } => {
            let store = sqlite::SqliteStore::open(path)?;
            let mut checks = store.inspect().await;
            let dir = path.parent().unwrap_or(std::path::Path::new("."));
            let scratch = tempfile::Builder::new()
                .prefix(".reef-doctor-")
                .tempdir_in(dir)
                .map_err(|e| StoreError::Unavailable(format!("cannot make a scratch dir in {}: {e}", dir.display())))?;
            let file = scratch.path().join("scratch.db");
            let ports = sqlite::SqliteStore::open(&file)?.ports();
            checks.extend(prove(&ports, clock).await);
            drop(ports);
            let shown = file.display().to_string();
            scratch.close().map_err(|e| StoreError::Backend(format!("removing the scratch store {shown}: {e}")))?;
            Ok(Report { store: label(choice), at: reef_core::time::fmt_ts(&clock.now()), scratch: shown, checks })
        }
        StoreChoice::Mongo { uri, database } => {
            let configured = mongo::MongoStore::reach(uri.expose(), database).await?;
            let store = label(choice);
            let scratch_name = format!("{}{}", mongo::SCRATCH_PREFIX, uuid::Uuid::new_v4().simple());
            let mut checks = vec![];
            if configured.holds_factory().await? {
                checks.push(configured.check_indexes().await);
                let ask = format!(
                    "{store} already holds a factory. Doctor will create database {scratch_name} on that server, write test tasks, \
                     reservations and changes into it, and drop it afterwards; it does not touch {database}. Go ahead?"
                );
                if !consent(&ask) {
                    return Err(StoreError::Invalid(format!(
                        "{store} already holds a factory and doctor was not allowed to write a scratch database beside it; \
                         run `reef doctor --yes` to allow it"
                    )));
                }
            } else {
                checks.push(Check::new(
                    "indexes",
                    Verdict::Skipped,
                    format!("{database} holds no factory yet: REEF creates its indexes on first start"),
                ));
            }
            let scratch = mongo::MongoStore::connect(uri.expose(), &scratch_name).await?;
            let mut found = scratch.inspect().await;
            found.extend(checks);
            found.extend(prove(&scratch.ports(), clock).await);
            found.push(scratch.drop_scratch().await?);
            Ok(Report { store, at: reef_core::time::fmt_ts(&clock.now()), scratch: scratch_name, checks: found })
        }
    }
}

/// How doctor names a store: the embedded store's path, or the server without its password and
/// the database. It is also the key under which a host remembers its report.
pub fn label(choice: &StoreChoice) -> String {
    match choice {
        StoreChoice::Embedded { path } => path.display().to_string(),
        StoreChoice::Mongo { uri, database } => format!("{} (database {database})", reef_core::secret::redact_uri(uri.expose())),
    }
}

/// The file under the data dir where this host keeps the last report per store (0600: it names
/// servers).
const REMEMBERED: &str = "doctor.json";
/// Stores remembered at most; the oldest report goes first.
const MAX_REMEMBERED: usize = 32;

/// The last report this host made for `store` (a `label`), if any. A file that cannot be read
/// counts as none: doctor is then offered again, which is the safe side.
pub fn remembered(data_dir: &Path, store: &str) -> Option<Report> {
    read_all(data_dir).remove(store)
}

/// Keeps `report` as the last one for its store (replacing the one before).
pub fn remember(data_dir: &Path, report: &Report) -> Result<(), StoreError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut all = read_all(data_dir);
    all.insert(report.store.clone(), report.clone());
    while all.len() > MAX_REMEMBERED {
        let oldest = all.iter().min_by(|a, b| a.1.at.cmp(&b.1.at)).map(|(k, _)| k.clone());
        oldest.map(|k| all.remove(&k));
    }
    let fail = |e: std::io::Error| StoreError::Backend(format!("keeping doctor's report in {}: {e}", data_dir.display()));
    std::fs::create_dir_all(data_dir).map_err(fail)?;
    let tmp = data_dir.join(format!(".{REMEMBERED}.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(fail)?;
    f.write_all(&serde_json::to_vec_pretty(&all).unwrap_or_default()).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, data_dir.join(REMEMBERED)).map_err(fail)
}

fn read_all(data_dir: &Path) -> BTreeMap<String, Report> {
    std::fs::read(data_dir.join(REMEMBERED)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reef_core::doctor::Check;

    fn report(store: &str, at: &str) -> Report {
        Report { store: store.into(), at: at.into(), scratch: "s".into(), checks: vec![Check::new("server", Verdict::Holds, "ok")] }
    }

    #[test]
    fn a_host_remembers_the_last_report_per_store_in_a_private_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert!(remembered(dir.path(), "mongodb://a (database factory)").is_none(), "a store never checked is offered doctor");
        remember(dir.path(), &report("mongodb://a (database factory)", "2026-11-30T10:00:00Z")).unwrap();
        remember(dir.path(), &report("mongodb://b (database factory)", "2026-11-30T11:00:00Z")).unwrap();
        remember(dir.path(), &report("mongodb://a (database factory)", "2026-11-30T12:00:00Z")).unwrap();
        assert_eq!(remembered(dir.path(), "mongodb://a (database factory)").unwrap().at, "2026-11-30T12:00:00Z");
        assert_eq!(remembered(dir.path(), "mongodb://b (database factory)").unwrap().at, "2026-11-30T11:00:00Z");
        let mode = std::fs::metadata(dir.path().join(REMEMBERED)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A damaged file is no report (doctor is offered again), and the next report replaces it.
        std::fs::write(dir.path().join(REMEMBERED), b"{not json").unwrap();
        assert!(remembered(dir.path(), "mongodb://a (database factory)").is_none());
        remember(dir.path(), &report("mongodb://c (database factory)", "2026-11-30T13:00:00Z")).unwrap();
        assert!(remembered(dir.path(), "mongodb://c (database factory)").is_some());
    }

    #[test]
    fn only_the_newest_reports_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..MAX_REMEMBERED + 3 {
            remember(dir.path(), &report(&format!("store {i:02}"), &format!("2026-11-30T10:{i:02}:00Z"))).unwrap();
        }
        assert_eq!(read_all(dir.path()).len(), MAX_REMEMBERED);
        assert!(remembered(dir.path(), "store 00").is_none(), "the oldest went first");
        assert!(remembered(dir.path(), &format!("store {:02}", MAX_REMEMBERED + 2)).is_some());
    }

    #[test]
    fn the_label_never_shows_the_password() {
        let choice = StoreChoice::Mongo {
            uri: reef_core::secret::Secret::new("mongodb://reef:hunter2@db:27017/?replicaSet=rs0"),
            database: "factory".into(),
        };
        let l = label(&choice);
        assert!(!l.contains("hunter2"), "{l}");
        assert!(l.contains("db:27017") && l.ends_with("(database factory)"), "{l}");
    }
}
