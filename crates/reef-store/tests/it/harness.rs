//! Opening a fresh store of each kind for one test, plus the back door a test uses to write
//! documents the way another program would.

use reef_core::Ports;
use serde_json::Value;
use std::sync::Arc;

/// A fresh, empty store and a way to write raw documents into it.
pub struct Fixture {
    pub ports: Ports,
    pub raw: Arc<dyn RawWriter>,
    /// Opens a second, independent handle on the same store (another process's view).
    pub reopen: Arc<dyn Fn() -> futures::future::BoxFuture<'static, Ports> + Send + Sync>,
    _dir: Option<Arc<tempfile::TempDir>>,
}

#[async_trait::async_trait]
pub trait RawWriter: Send + Sync {
    /// Inserts a document exactly as given, as another program (mongosh, a script) would.
    async fn insert(&self, collection: &str, doc: Value);
    /// Reads a document back exactly as stored.
    async fn fetch(&self, collection: &str, id: &str) -> Option<Value>;
}

struct SqliteRaw(std::path::PathBuf);

#[async_trait::async_trait]
impl RawWriter for SqliteRaw {
    async fn insert(&self, collection: &str, doc: Value) {
        let conn = rusqlite::Connection::open(&self.0).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        let id = doc["_id"].as_str().expect("raw docs carry a string _id").to_string();
        conn.execute(&format!("INSERT INTO {collection} (id, doc) VALUES (?1, ?2)"), rusqlite::params![id, doc.to_string()]).unwrap();
    }
    async fn fetch(&self, collection: &str, id: &str) -> Option<Value> {
        let conn = rusqlite::Connection::open(&self.0).unwrap();
        conn.query_row(&format!("SELECT doc FROM {collection} WHERE id = ?1"), [id], |r| r.get::<_, String>(0))
            .ok()
            .map(|s| serde_json::from_str(&s).unwrap())
    }
}

struct MongoRaw(reef_store::mongo::RawMongo);

#[async_trait::async_trait]
impl RawWriter for MongoRaw {
    async fn insert(&self, collection: &str, doc: Value) {
        self.0.insert_json(collection, &doc).await.unwrap()
    }
    async fn fetch(&self, collection: &str, id: &str) -> Option<Value> {
        self.0.fetch_json(collection, id).await.unwrap()
    }
}

pub fn sqlite() -> Fixture {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let path = dir.path().join("reef.db");
    let store = reef_store::sqlite::SqliteStore::open(&path).unwrap();
    let p2 = path.clone();
    Fixture {
        ports: store.ports(),
        raw: Arc::new(SqliteRaw(path)),
        reopen: Arc::new(move || {
            let p = p2.clone();
            Box::pin(async move { reef_store::sqlite::SqliteStore::open(&p).unwrap().ports() })
        }),
        _dir: Some(dir),
    }
}

/// The MongoDB URI for the MongoDB half of the suite, if one was given.
pub fn mongo_uri() -> Option<String> {
    std::env::var("REEF_TEST_MONGODB_URI").ok().filter(|s| !s.is_empty())
}

pub async fn mongo(uri: &str) -> Fixture {
    let db = format!("reef_test_{}", uuid::Uuid::new_v4().simple());
    let store = reef_store::mongo::MongoStore::connect(uri, &db).await.expect("connect to REEF_TEST_MONGODB_URI");
    let raw = MongoRaw(reef_store::mongo::RawMongo::new(&store));
    let (u2, d2) = (uri.to_string(), db.clone());
    Fixture {
        ports: store.ports(),
        raw: Arc::new(raw),
        reopen: Arc::new(move || {
            let (u, d) = (u2.clone(), d2.clone());
            Box::pin(async move { reef_store::mongo::MongoStore::connect(&u, &d).await.unwrap().ports() })
        }),
        _dir: None,
    }
}

/// Cases a MongoDB-compatible test server (not MongoDB) cannot run, and why. Only consulted when
/// `REEF_TEST_MONGODB_COMPAT=jongodb` says the server is one; against MongoDB every case runs.
pub fn compat_gap(case: &str) -> Option<&'static str> {
    if std::env::var("REEF_TEST_MONGODB_COMPAT").ok().as_deref() != Some("jongodb") {
        return None;
    }
    match case {
        "concurrent_claimers_take_each_task_exactly_once" => {
            Some("its findAndModify is not atomic under concurrent callers (two claimers get one document)")
        }
        "revenue_is_idempotent_and_kept_per_currency" => Some("its $group does not evaluate field paths inside a compound _id"),
        _ => None,
    }
}

/// Defines one conformance check as a test per store: `sqlite::name` always, `mongo::name`
/// when `REEF_TEST_MONGODB_URI` is set (otherwise it says it was skipped).
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        pub mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::harness::sqlite()).await;
                }
            )*
        }
        pub mod mongo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    match $crate::harness::mongo_uri() {
                        Some(_) if let Some(why) = $crate::harness::compat_gap(stringify!($name)) => {
                            eprintln!("SKIPPED mongo::{} on a MongoDB-compatible test server: {why}", stringify!($name))
                        }
                        Some(uri) => super::$name($crate::harness::mongo(&uri).await).await,
                        None => eprintln!("SKIPPED mongo::{}: REEF_TEST_MONGODB_URI is not set (no MongoDB server on this machine)", stringify!($name)),
                    }
                }
            )*
        }
    };
}
