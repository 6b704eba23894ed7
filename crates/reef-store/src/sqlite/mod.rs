//! The embedded store: one SQLite file (WAL) holding seed 000's collections as JSON documents,
//! with generated columns indexing the fields REEF queries on.
//!
//! Invariants: every write happens in a `BEGIN IMMEDIATE` transaction, so each port operation
//! is atomic across processes sharing the file; writes that arrive together are committed
//! together (group commit: one transaction, each write in a savepoint of its own, so one that
//! fails undoes only itself), and none is answered before its transaction commits; documents are
//! changed by editing their JSON in place, so fields REEF does not know survive; migrations only
//! ever add.

mod archive;
mod changes;
mod doctor;
mod knowledge;
mod ledger;
mod records;
mod schema;
mod tasks;

use reef_core::*;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use changes::CHANGE_RETENTION;

/// The embedded store. Cheap to clone; all clones share one connection and one wake-up signal.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Bumped after each of this process's commits, so its watchers wake at once (a `watch`
    /// channel remembers a bump that happened while a watcher was busy); other processes'
    /// commits are seen through `PRAGMA data_version`.
    wake: tokio::sync::watch::Sender<u64>,
    /// Writes waiting for the next group commit.
    queue: Mutex<Vec<Job>>,
    /// Whether a blocking thread is committing the queue now (at most one is).
    draining: AtomicBool,
}

/// Writes committed together at most.
const GROUP_MAX: usize = 256;

/// One write waiting to be committed. Given the group's transaction, it applies itself and answers
/// whether it succeeded and how to tell its caller once the group is committed; given an error,
/// it tells its caller the group could not run it.
type Job = Box<dyn FnOnce(Result<&rusqlite::Transaction<'_>, StoreError>) -> Option<(bool, Reply)> + Send>;

/// Tells a write's caller how its group's commit went.
type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

pub(crate) fn db_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if matches!(f.code, C::DatabaseBusy | C::DatabaseLocked) => {
            StoreError::Unavailable(format!("database is busy: {e}"))
        }
        rusqlite::Error::SqliteFailure(f, _) if matches!(f.code, C::CannotOpen | C::ReadOnly | C::DiskFull | C::NotADatabase) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

pub(crate) fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Backend(format!("encoding a document: {e}"))
}

/// Registers sqlite-vec with every connection this process opens afterwards.
fn register_sqlite_vec() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: sqlite3_auto_extension takes a C entry point with SQLite's extension-init
        // signature; sqlite_vec::sqlite3_vec_init is exactly that, compiled into this binary.
        #[allow(unsafe_code)]
        unsafe {
            #[allow(clippy::missing_transmute_annotations)]
            rusqlite::ffi::sqlite3_auto_extension(Some(std::mem::transmute(sqlite_vec::sqlite3_vec_init as *const ())));
        }
    });
}

pub(crate) fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    register_sqlite_vec();
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(db_err)?;
    // mmap lets reads (vector scans above all) skip a read() call per page; WAL keeps writers
    // and readers apart across processes.
    // Switching a new file to WAL takes an exclusive lock that SQLite does not wait for: two
    // processes opening a store that does not exist yet (`reef serve` and a `reef` command) can
    // see "database is locked" at once. Wait for the other, as the busy timeout would.
    let started = std::time::Instant::now();
    loop {
        match conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA mmap_size = 1073741824;",
        ) {
            Ok(()) => return Ok(conn),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                    && started.elapsed() < Duration::from_secs(10) =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(db_err(e)),
        }
    }
}

/// The store file and its WAL and shared-memory files readable by this user only (0600), and
/// the directory that holds them 0700: other local users (and their agents) see nothing of it.
fn private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::set_permissions(std::path::PathBuf::from(p), std::fs::Permissions::from_mode(0o600));
    }
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the store file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Unavailable(format!("cannot create data dir {}: {e}", dir.display())))?;
            }
        }
        let mut conn = open_connection(path)?;
        private(path);
        schema::migrate(&mut conn)?;
        // Housekeeping in one IMMEDIATE transaction: it waits for the write lock under the busy
        // timeout (a bare DELETE that starts as a read is refused at once when another process
        // wrote meanwhile). It is not what the caller opened the store for, so it never fails open.
        let tidy = |conn: &mut Connection| -> Result<(), StoreError> {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db_err)?;
            changes::prune(&tx, SystemClock.now())?;
            tx.commit().map_err(db_err)
        };
        if let Err(e) = tidy(&mut conn) {
            tracing::warn!(error = %e, "embedded store: housekeeping skipped this time");
        }
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                conn: Mutex::new(conn),
                wake: tokio::sync::watch::channel(0).0,
                queue: Mutex::new(Vec::new()),
                draining: AtomicBool::new(false),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn ports(&self) -> Ports {
        Ports::from_store(StoreKind::Embedded(self.inner.path.display().to_string()), Arc::new(self.clone()))
    }

    /// Runs `f` on the connection off the async runtime.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.conn.lock().map_err(|_| StoreError::Backend("connection lock poisoned".into()))?;
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("store task panicked: {e}")))?
    }

    /// Runs `f` in an immediate (write-locking) transaction — with the other writes waiting at the
    /// time, each in a savepoint of its own — commits, wakes watchers, and answers once committed.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = tokio::sync::oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |tx| {
            let tx = match tx {
                Ok(tx) => tx,
                Err(e) => {
                    let _ = answer.send(Err(e));
                    return None;
                }
            };
            let r = f(tx);
            let ok = r.is_ok();
            let reply: Reply = Box::new(move |committed| {
                let _ = answer.send(match committed {
                    Ok(()) => r,
                    // Its writes were never committed, whatever `f` answered.
                    Err(e) => Err(StoreError::Unavailable(format!("the write was not committed: {e}"))),
                });
            });
            Some((ok, reply))
        });
        self.inner.queue.lock().map_err(|_| StoreError::Backend("write queue poisoned".into()))?.push(job);
        if !self.inner.draining.swap(true, Ordering::AcqRel) {
            let inner = self.inner.clone();
            tokio::task::spawn_blocking(move || drain(&inner));
        }
        answered.await.map_err(|_| StoreError::Backend("the store's writer stopped before answering".into()))?
    }
}

/// Commits the queued writes, a group at a time, until none is left (then lets the next writer
/// start a drainer). One drainer runs at a time, so writes are applied one after another, in the
/// order they were queued.
fn drain(inner: &Arc<Inner>) {
    loop {
        let jobs: Vec<Job> = match inner.queue.lock() {
            Ok(mut q) => {
                let n = q.len().min(GROUP_MAX);
                q.drain(..n).collect()
            }
            Err(_) => return,
        };
        if jobs.is_empty() {
            inner.draining.store(false, Ordering::Release);
            // A write queued between the take and the store above: it saw a drainer running and
            // started none, so this one goes on (unless a new drainer already took over).
            let more = inner.queue.lock().map(|q| !q.is_empty()).unwrap_or(false);
            if more && !inner.draining.swap(true, Ordering::AcqRel) {
                continue;
            }
            return;
        }
        commit_group(inner, jobs);
    }
}

fn commit_group(inner: &Inner, jobs: Vec<Job>) {
    let mut conn = match inner.conn.lock() {
        Ok(c) => c,
        Err(_) => {
            for j in jobs {
                j(Err(StoreError::Backend("connection lock poisoned".into())));
            }
            return;
        }
    };
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let msg = e.to_string();
            let busy = matches!(db_err(e), StoreError::Unavailable(_));
            for j in jobs {
                j(Err(if busy { StoreError::Unavailable(msg.clone()) } else { StoreError::Backend(msg.clone()) }));
            }
            return;
        }
    };
    let mut replies = Vec::with_capacity(jobs.len());
    let mut broken = None;
    for j in jobs {
        if broken.is_some() {
            j(Err(StoreError::Unavailable("an earlier write of its group could not be undone".into())));
            continue;
        }
        if let Err(e) = tx.execute_batch("SAVEPOINT reef_write") {
            j(Err(db_err(e)));
            continue;
        }
        // A write that panics is undone like one that failed (its caller hears that the writer
        // stopped); the drainer goes on with the others.
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| j(Ok(&tx)))).ok().flatten();
        let ok = matches!(&ran, Some((true, _)));
        // A write that failed undoes only what it did.
        let end = if ok { "RELEASE reef_write" } else { "ROLLBACK TO reef_write; RELEASE reef_write" };
        let ended = tx.execute_batch(end);
        match (ran, ended) {
            (Some((_, reply)), Ok(())) => replies.push(reply),
            (Some((_, reply)), Err(e)) => {
                broken = Some(e.to_string());
                reply(Err(e.to_string()));
            }
            (None, Ok(())) => {}
            (None, Err(e)) => broken = Some(e.to_string()),
        }
    }
    // A savepoint that could not be ended leaves the transaction unknown: nothing of it commits.
    let committed = match broken {
        Some(e) => {
            drop(tx);
            Err(e)
        }
        None => tx.commit().map_err(|e| e.to_string()),
    };
    drop(conn);
    if committed.is_ok() {
        inner.wake.send_modify(|v| *v = v.wrapping_add(1));
    }
    for r in replies {
        r(committed.clone());
    }
}

/// Reads a JSON document into `T`, or says why it cannot be read.
pub(crate) fn parse_doc<T: serde::de::DeserializeOwned>(collection: &str, id: &str, doc: &str) -> Result<T, Malformed> {
    if CHECKED_ID_COLLECTIONS.contains(&collection) {
        check_id(id).map_err(|reason| Malformed { collection: collection.into(), id: id.into(), reason })?;
    }
    let de = &mut serde_json::Deserializer::from_str(doc);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // Name the field that is wrong, not a byte offset in a document nobody can see.
        let reason = if path == "." { inner.to_string() } else { format!("field `{path}`: {inner}") };
        Malformed { collection: collection.into(), id: id.into(), reason }
    })
}

/// Reads rows of (id, doc) into a listing, reporting the ones that do not parse.
pub(crate) fn listing<T: serde::de::DeserializeOwned>(collection: &str, rows: Vec<(String, String)>) -> Listing<T> {
    let mut out = Listing { items: Vec::with_capacity(rows.len()), malformed: vec![] };
    for (id, doc) in rows {
        match parse_doc(collection, &id, &doc) {
            Ok(t) => out.items.push(t),
            Err(m) => {
                tracing::warn!(collection, id = %m.id, reason = %m.reason, "skipping a document REEF cannot read; it is left as it is");
                out.malformed.push(m)
            }
        }
    }
    out
}

pub(crate) fn fetch_pairs(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<(String, String)>, StoreError> {
    let mut st = conn.prepare_cached(sql).map_err(db_err)?;
    let rows = st.query_map(params, |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(db_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_store_and_its_data_dir_are_this_user_s_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.join("reef.db");
        let _s = SqliteStore::open(&path).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&path), 0o600);
        let wal = dir.join("reef.db-wal");
        if wal.exists() {
            assert_eq!(mode(&wal), 0o600);
        }
    }
}
