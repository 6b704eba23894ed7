//! What `reef doctor` finds out about a MongoDB server: version, replica set, change streams,
//! transactions, time-series, vector search and REEF's indexes, each as holds / falls back /
//! fails. Invariant: the probes that write (a transaction) write into this store's own database,
//! which `reef doctor` only ever opens as a scratch database.

use super::{mongo_err, queries, MongoStore};
use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use reef_core::doctor::{Check, Verdict};
use reef_core::StoreError;

impl MongoStore {
    /// Whether this database already holds a factory (a `tasks` collection with documents).
    pub async fn holds_factory(&self) -> Result<bool, StoreError> {
        Ok(self.coll("tasks").find_one(doc! {}).await.map_err(mongo_err)?.is_some())
    }

    /// The server's capabilities as REEF uses them, probed on this database.
    pub async fn inspect(&self) -> Vec<Check> {
        let caps = &self.caps;
        let major: u32 = caps.version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
        let mut out = vec![if major >= 5 {
            Check::new("server", Verdict::Holds, format!("MongoDB-compatible server {} at {}", caps.version, self.redacted_uri))
        } else {
            Check::new(
                "server",
                Verdict::FallsBack,
                format!("version {}: older than 5.0, so telemetry uses plain collections with TTL indexes", caps.version),
            )
        }];
        if !caps.replica_set {
            out.push(Check::new("replica set", Verdict::FallsBack, "standalone: no change streams, no transactions"));
            out.push(Check::new("change streams", Verdict::FallsBack, "the watch polls the store's change history (a second or so late)"));
            out.push(Check::new(
                "transactions",
                Verdict::FallsBack,
                "reservations use conditional updates with compensation; an outcome and its event are two writes",
            ));
        } else {
            out.push(Check::new("replica set", Verdict::Holds, "a replica set member"));
            out.push(match self.db.watch().await {
                Ok(stream) => {
                    drop(stream);
                    Check::new("change streams", Verdict::Holds, "the watch follows a change stream and resumes from its token")
                }
                Err(e) => Check::new("change streams", Verdict::Fails, format!("a replica set that refuses a change stream: {e}")),
            });
            out.push(match self.probe_transaction().await {
                Ok(()) => Check::new("transactions", Verdict::Holds, "multi-document transactions commit (retried on transient errors)"),
                Err(e) => Check::new("transactions", Verdict::Fails, format!("a replica set that refuses a transaction: {e}")),
            });
        }
        out.push(if caps.timeseries && self.timeseries_made.load(std::sync::atomic::Ordering::Relaxed) {
            Check::new("time-series", Verdict::Holds, "telemetry and LLM calls in time-series collections with expiry")
        } else {
            Check::new("time-series", Verdict::FallsBack, "telemetry and LLM calls in plain collections with TTL indexes")
        });
        let search = self.coll("memory").aggregate(vec![doc! {"$listSearchIndexes": {}}]).await;
        out.push(match search {
            Ok(_) => Check::new("vector search", Verdict::Holds, "a search node answers; memory search uses $vectorSearch"),
            Err(_) => Check::new("vector search", Verdict::FallsBack, "no search node: memory search is exact, in REEF"),
        });
        out
    }

    async fn probe_transaction(&self) -> Result<(), StoreError> {
        let mut s = self.client.start_session().await.map_err(mongo_err)?;
        s.start_transaction().await.map_err(mongo_err)?;
        self.coll("doctor_probe").insert_one(doc! {"probe": true}).session(&mut s).await.map_err(mongo_err)?;
        super::txn::commit(&mut s).await
    }

    /// Whether REEF's indexes are on this database (read only).
    pub async fn check_indexes(&self) -> Check {
        let mut missing = vec![];
        let wanted = queries::indexes();
        for (coll, model) in &wanted {
            let have: Vec<Document> = match self.coll(coll).list_indexes().await {
                Ok(c) => c.map_ok(|m| m.keys).try_collect().await.unwrap_or_default(),
                Err(_) => vec![],
            };
            if !have.iter().any(|k| k == &model.keys) {
                missing.push(format!("{coll} {:?}", model.keys.keys().collect::<Vec<_>>()));
            }
        }
        if missing.is_empty() {
            Check::new("indexes", Verdict::Holds, format!("all {} of REEF's indexes are in place", wanted.len()))
        } else {
            Check::new("indexes", Verdict::Fails, format!("missing: {}", missing.join(", ")))
        }
    }

    /// Removes this store's database — only ever a scratch database `reef doctor` made. A server
    /// without `dropDatabase` or `drop` (a test server) has every document REEF wrote deleted.
    pub async fn drop_scratch(self) -> Result<Check, StoreError> {
        let name = self.db.name().to_string();
        if !name.starts_with(SCRATCH_PREFIX) {
            return Err(StoreError::Invalid(format!("{name} is not a scratch database; doctor drops only its own")));
        }
        match self.db.drop().await {
            Ok(()) => Ok(Check::new("scratch database", Verdict::Holds, format!("{name} dropped"))),
            Err(e) if super::code_of(&e) == Some(59) => {
                for c in reef_core::collections::ALL.into_iter().chain(["changes", "doctor_probe"]) {
                    self.coll(c).delete_many(doc! {}).await.map_err(mongo_err)?;
                }
                Ok(Check::new("scratch database", Verdict::FallsBack, format!("{name} emptied: this server cannot drop a database")))
            }
            Err(e) => Err(mongo_err(e)),
        }
    }
}

/// The name every scratch database `reef doctor` makes starts with.
pub const SCRATCH_PREFIX: &str = "reef_doctor_";
