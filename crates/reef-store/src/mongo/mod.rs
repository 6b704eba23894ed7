//! The MongoDB store: database `factory` in seed 000's shape, through the official driver.
//!
//! At connect it finds out what the server can do and says once in the log what it falls back to:
//! standalone (no change streams → polling watch; no transactions → per-document conditional
//! updates with compensation), older than 5.0 (no time-series → plain collections with TTL
//! indexes), no search node (no `$vectorSearch` → exact search in REEF).
//!
//! Invariant: every write is a targeted update (`$set`, `$inc`, pipelines), never a whole-document
//! replace, so fields other programs keep on REEF's documents survive.

mod archive;
mod convert;
mod doctor;
mod knowledge;
mod ledger;
mod ports;
mod queries;
mod records;
mod tasks;
mod txn;
mod watch;

pub use convert::{doc_to_json, id_filter, to_bson, to_document};
pub use doctor::SCRATCH_PREFIX;

use mongodb::bson::{doc, Document};
use mongodb::error::{Error as MongoError, ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, TimeseriesGranularity, TimeseriesOptions};
use mongodb::{Client, Collection, Database};
use reef_core::secret::redact_uri;
use reef_core::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const VECTOR_INDEX: &str = "memory_vector";
/// How long `llm_calls` and `metrics` are kept.
pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// What the connected server supports, found out once at connect.
#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    pub replica_set: bool,
    pub version: String,
    pub timeseries: bool,
}

#[derive(Clone)]
pub struct MongoStore {
    pub(crate) client: Client,
    pub(crate) db: Database,
    pub(crate) caps: Capabilities,
    pub(crate) redacted_uri: String,
    /// Cleared the first time `$vectorSearch` is refused; exact search from then on.
    pub(crate) vector_search: Arc<AtomicBool>,
    /// Cleared the first time the server refuses an update pipeline; compare-and-set from then on.
    pub(crate) pipeline_updates: Arc<AtomicBool>,
    /// Whether setup made (or found) the time-series collections; false where it fell back to TTL.
    pub(crate) timeseries_made: Arc<AtomicBool>,
}

pub(crate) fn code_of(e: &MongoError) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => Some(w.code),
        _ => None,
    }
}

pub(crate) fn is_duplicate_key(e: &MongoError) -> bool {
    code_of(e) == Some(11000)
}

pub(crate) fn mongo_err(e: MongoError) -> StoreError {
    // Kept recognisable, so that `txn::retrying` runs the transaction again.
    if txn::labelled_transient(&e) {
        return StoreError::Unavailable(format!("{}: {e}", txn::TRANSIENT));
    }
    match e.kind.as_ref() {
        ErrorKind::ServerSelection { message, .. } => {
            // The driver's message dumps the whole topology; the first server's error is what a
            // person needs to see.
            let why = message.split("Error: Kind: ").nth(1).and_then(|r| r.split(", labels").next()).unwrap_or(message);
            StoreError::Unavailable(format!("no server answered ({})", why.trim()))
        }
        ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. } | ErrorKind::DnsResolve { .. } => StoreError::Unavailable(e.to_string()),
        ErrorKind::Authentication { message, .. } => StoreError::Unavailable(format!("authentication failed: {message}")),
        _ if code_of(&e) == Some(286) => StoreError::HistoryLost(e.to_string()),
        _ => StoreError::Backend(e.to_string()),
    }
}

fn parse_version(v: &str) -> (u32, u32) {
    let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

impl MongoStore {
    /// Connects, probes the server, and creates collections and indexes that are missing.
    pub async fn connect(uri: &str, database: &str) -> Result<Self, StoreError> {
        let store = Self::reach(uri, database).await?;
        store.setup().await?;
        Ok(store)
    }

    /// Connects and finds out what the server can do, creating nothing (what `reef doctor`
    /// uses on a database it must not change).
    pub async fn reach(uri: &str, database: &str) -> Result<Self, StoreError> {
        let redacted_uri = redact_uri(uri);
        let mut opts = ClientOptions::parse(uri).await.map_err(|e| StoreError::Invalid(format!("MongoDB URI {redacted_uri}: {e}")))?;
        opts.app_name.get_or_insert_with(|| "reef".into());
        opts.server_selection_timeout.get_or_insert(Duration::from_secs(10));
        let client = Client::with_options(opts).map_err(mongo_err)?;
        let db = client.database(database);
        let hello = db
            .run_command(doc! {"hello": 1})
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot reach MongoDB at {redacted_uri}: {}", mongo_err(e))))?;
        let replica_set = hello.get_str("setName").is_ok() || hello.get_str("msg").ok() == Some("isdbgrid");
        let version = match db.run_command(doc! {"buildInfo": 1}).await {
            Ok(b) => b.get_str("version").unwrap_or("0.0").to_string(),
            Err(_) => "0.0".into(),
        };
        let (major, _) = parse_version(&version);
        let caps = Capabilities { replica_set, timeseries: major >= 5, version };
        if !caps.replica_set {
            tracing::warn!(uri = %redacted_uri, "MongoDB is a standalone server: watch falls back to polling and multi-scope ledger writes to per-document conditional updates; run it as a replica set (docker-compose.yml does) for change streams and transactions");
        }
        if !caps.timeseries {
            tracing::warn!(version = %caps.version, "MongoDB older than 5.0: llm_calls and metrics are plain collections with TTL indexes instead of time-series");
        }
        Ok(Self {
            client,
            db,
            caps,
            redacted_uri,
            vector_search: Arc::new(AtomicBool::new(true)),
            pipeline_updates: Arc::new(AtomicBool::new(true)),
            timeseries_made: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    pub(crate) fn coll(&self, name: &str) -> Collection<Document> {
        self.db.collection::<Document>(name)
    }

    pub(crate) fn vector_search_available(&self) -> bool {
        self.vector_search.load(Ordering::Relaxed)
    }

    pub(crate) fn vector_search_refused(&self, why: &str) {
        if self.vector_search.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                reason = why,
                "$vectorSearch is not available on this server (no search node or no index): memory search uses exact search"
            );
        }
    }

    /// Settles or releases one ledger scope: one pipeline update where the server has them,
    /// compare-and-set on the totals where it refuses them.
    pub(crate) async fn close_scope(
        &self,
        scope: &str,
        held: i64,
        spent: i64,
        now: &Timestamp,
        mut session: Option<&mut mongodb::ClientSession>,
    ) -> Result<(), StoreError> {
        let ledger = self.coll(reef_core::collections::LEDGER);
        if self.pipeline_updates.load(Ordering::Relaxed) {
            let u = ledger.update_one(doc! {"_id": scope}, queries::close_scope(held, spent, now));
            let r = match session.as_deref_mut() {
                Some(s) => u.session(s).await,
                None => u.await,
            };
            match r {
                Ok(_) => return Ok(()),
                // BadValue, FailedToParse, NotImplemented: a server that does not take pipelines.
                Err(e) if matches!(code_of(&e), Some(14 | 9 | 238)) && session.is_none() => {
                    if self.pipeline_updates.swap(false, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "server refuses update pipelines; ledger settlement uses compare-and-set updates");
                    }
                }
                Err(e) => return Err(mongo_err(e)),
            }
        }
        for _ in 0..1000 {
            let cur = ledger
                .find_one(doc! {"_id": scope})
                .await
                .map_err(mongo_err)?
                .ok_or_else(|| StoreError::not_found(format!("ledger scope {scope}")))?;
            let n = |k: &str| cur.get(k).and_then(|b| b.as_i64().or_else(|| b.as_i32().map(i64::from))).unwrap_or(0);
            let (f, u) = queries::close_scope_cas(scope, n("spent"), n("reserved"), n("cap"), held, spent, now);
            if ledger.update_one(f, u).await.map_err(mongo_err)?.matched_count == 1 {
                return Ok(());
            }
        }
        Err(StoreError::Unavailable(format!("ledger scope {scope} kept changing under 1000 settlement attempts")))
    }

    async fn create_collection_once(
        &self,
        name: &str,
        opts: impl FnOnce(mongodb::action::CreateCollection<'_>) -> mongodb::action::CreateCollection<'_>,
    ) -> Result<bool, MongoError> {
        match opts(self.db.create_collection(name)).await {
            Ok(()) => Ok(true),
            // NamespaceExists: made on an earlier start (or by another REEF); nothing to do.
            Err(e) if code_of(&e) == Some(48) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn setup(&self) -> Result<(), StoreError> {
        let mut ttl_needed = false;
        for (name, time_field) in [("llm_calls", "at"), ("metrics", "timestamp")] {
            if self.caps.timeseries {
                let meta = if name == "metrics" { Some("source".to_string()) } else { Some("agent".to_string()) };
                let ts = TimeseriesOptions::builder()
                    .time_field(time_field.to_string())
                    .meta_field(meta)
                    .granularity(Some(TimeseriesGranularity::Minutes))
                    .build();
                match self.create_collection_once(name, |c| c.timeseries(ts).expire_after_seconds(RETENTION)).await {
                    Ok(_) => {
                        self.timeseries_made.store(true, Ordering::Relaxed);
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(collection = name, error = %e, "cannot create a time-series collection; using a plain collection with a TTL index");
                    }
                }
            }
            ttl_needed = true;
            let _ = self.create_collection_once(name, |c| c).await;
        }
        if ttl_needed {
            for (c, m) in queries::ttl_fallback_indexes(RETENTION) {
                if let Err(e) = self.coll(c).create_index(m).await {
                    tracing::warn!(collection = c, error = %e, "cannot create TTL index");
                }
            }
        }
        // `events` is a plain collection: housekeeping prunes it by `[retention]`, keeping what
        // webhooks still owe (a capped one would drop those, oldest first).
        for (c, m) in queries::indexes() {
            self.coll(c).create_index(m).await.map_err(|e| StoreError::Backend(format!("creating an index on {c}: {e}")))?;
        }
        Ok(())
    }

    pub fn ports(&self) -> Ports {
        Ports::from_store(StoreKind::Mongo(format!("{} (database {})", self.redacted_uri, self.db.name())), Arc::new(self.clone()))
    }
}

/// Raw document access for tests: writes and reads exactly as another program would.
pub struct RawMongo {
    db: Database,
}

impl RawMongo {
    pub fn new(s: &MongoStore) -> Self {
        Self { db: s.db.clone() }
    }
    pub async fn insert_json(&self, collection: &str, doc: &serde_json::Value) -> Result<(), StoreError> {
        let d = doc.as_object().map(to_document).ok_or_else(|| StoreError::Invalid("not a document".into()))?;
        self.db.collection::<Document>(collection).insert_one(d).await.map_err(mongo_err)?;
        Ok(())
    }
    pub async fn fetch_json(&self, collection: &str, id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        Ok(self.db.collection::<Document>(collection).find_one(id_filter(id)).await.map_err(mongo_err)?.map(|d| doc_to_json(&d)))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_parse_for_capability_checks() {
        assert_eq!(super::parse_version("8.0.4"), (8, 0));
        assert_eq!(super::parse_version("4.4.29"), (4, 4));
        assert_eq!(super::parse_version("garbage"), (0, 0));
    }
}
