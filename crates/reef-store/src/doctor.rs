//! `reef doctor` for either store: what the configured store can do, then REEF's guarantees proven
//! on a scratch store of the same kind (`reef_core::doctor::prove`). Invariant: it writes only
//! into a scratch store it removes afterwards — a temp file beside the embedded store, or a
//! `reef_doctor_*` database on the MongoDB server, made only with the operator's consent when the
//! server already holds a factory.

use crate::{mongo, sqlite};
use reef_core::config::StoreChoice;
use reef_core::doctor::{prove, Check, Verdict};
use reef_core::{Clock, StoreError};
use serde::Serialize;

/// What doctor found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The configured store, as REEF names it (credentials redacted).
    pub store: String,
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
            Ok(Report { store: path.display().to_string(), scratch: shown, checks })
        }
        StoreChoice::Mongo { uri, database } => {
            let configured = mongo::MongoStore::reach(uri.expose(), database).await?;
            let store = format!("{} (database {database})", reef_core::secret::redact_uri(uri.expose()));
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
            Ok(Report { store, scratch: scratch_name, checks: found })
        }
    }
}
