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
    pub reopen: Arc<dyn Fn() -> Ports + Send + Sync>,
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

pub fn sqlite() -> Fixture {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let path = dir.path().join("reef.db");
    let store = reef_store::sqlite::SqliteStore::open(&path).unwrap();
    let p2 = path.clone();
    Fixture {
        ports: store.ports(),
        raw: Arc::new(SqliteRaw(path)),
        reopen: Arc::new(move || reef_store::sqlite::SqliteStore::open(&p2).unwrap().ports()),
        _dir: Some(dir),
    }
}

/// The MongoDB URI for the MongoDB half of the suite, if one was given.
pub fn mongo_uri() -> Option<String> {
    std::env::var("REEF_TEST_MONGODB_URI").ok().filter(|s| !s.is_empty())
}

pub async fn mongo(_uri: &str) -> Fixture {
    panic!("temp")
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
                    let _ = $crate::harness::mongo_uri();
                    eprintln!("SKIPPED mongo::{}: the mongo store is not written yet", stringify!($name));
                }
            )*
        }
    };
}
