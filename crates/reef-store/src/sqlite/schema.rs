//! Versioned, additive migrations of the embedded store (`PRAGMA user_version`).
//!
//! Invariant: a migration never drops or rewrites data; a file from a newer REEF is refused
//! rather than guessed at.

use super::db_err;
use reef_core::StoreError;
use rusqlite::Connection;

/// Collections whose changes watchers see (through the `changes` table the triggers fill).
pub const WATCHED: [&str; 9] =
    ["tasks", "approvals", "agent_state", "events", "products", "revenue", "entities", "relationships", "memory"];

const V1: &str = r#"
CREATE TABLE tasks (
  id TEXT PRIMARY KEY,
  doc TEXT NOT NULL CHECK (json_valid(doc)),
  status TEXT GENERATED ALWAYS AS (json_extract(doc, '$.status')) VIRTUAL,
  priority INTEGER GENERATED ALWAYS AS (coalesce(json_extract(doc, '$.priority'), 0)) VIRTUAL,
  created_at TEXT GENERATED ALWAYS AS (json_extract(doc, '$.created_at')) VIRTUAL,
  assigned_to TEXT GENERATED ALWAYS AS (json_extract(doc, '$.assigned_to')) VIRTUAL,
  lease_expires TEXT GENERATED ALWAYS AS (json_extract(doc, '$.lease.expires_at')) VIRTUAL,
  lease_token TEXT GENERATED ALWAYS AS (json_extract(doc, '$.lease.token')) VIRTUAL,
  idem TEXT GENERATED ALWAYS AS (json_extract(doc, '$.idempotency_key')) VIRTUAL,
  product TEXT GENERATED ALWAYS AS (json_extract(doc, '$.product')) VIRTUAL,
  parent_id TEXT GENERATED ALWAYS AS (json_extract(doc, '$.parent_id')) VIRTUAL,
  malformed TEXT GENERATED ALWAYS AS (json_extract(doc, '$.reef_malformed')) VIRTUAL
);
CREATE INDEX tasks_claim ON tasks (status, priority DESC, created_at);
CREATE INDEX tasks_lease ON tasks (lease_expires) WHERE lease_expires IS NOT NULL;
CREATE UNIQUE INDEX tasks_idem ON tasks (idem) WHERE idem IS NOT NULL;
CREATE INDEX tasks_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  doc TEXT NOT NULL CHECK (json_valid(doc)),
  kind TEXT GENERATED ALWAYS AS (json_extract(doc, '$.type')) VIRTUAL,
  subject TEXT GENERATED ALWAYS AS (json_extract(doc, '$.subject')) VIRTUAL
);
CREATE INDEX events_subject ON events (subject);

CREATE TABLE audit (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  doc TEXT NOT NULL CHECK (json_valid(doc)),
  subject TEXT GENERATED ALWAYS AS (json_extract(doc, '$.subject')) VIRTUAL
);
CREATE INDEX audit_subject ON audit (subject);

CREATE TABLE agent_state (
  id TEXT PRIMARY KEY,
  doc TEXT NOT NULL CHECK (json_valid(doc))
);
CREATE TABLE agent_revisions (
  id TEXT PRIMARY KEY,
  doc TEXT NOT NULL CHECK (json_valid(doc)),
  agent TEXT GENERATED ALWAYS AS (json_extract(doc, '$.agent')) VIRTUAL,
  revision INTEGER GENERATED ALWAYS AS (json_extract(doc, '$.revision')) VIRTUAL
);
CREATE INDEX agent_revisions_agent ON agent_revisions (agent, revision);

CREATE TABLE approvals (
  id TEXT PRIMARY KEY,
  doc TEXT NOT NULL CHECK (json_valid(doc)),
  status TEXT GENERATED ALWAYS AS (json_extract(doc, '$.status')) VIRTUAL,
  created_at TEXT GENERATED ALWAYS AS (json_extract(doc, '$.created_at')) VIRTUAL,
  expires_at TEXT GENERATED ALWAYS AS (json_extract(doc, '$.expires_at')) VIRTUAL
);
CREATE INDEX approvals_status ON approvals (status, created_at);

-- Ledger totals per scope and period: kept for good (llm_calls may expire, these never do).
CREATE TABLE ledger (
  scope TEXT PRIMARY KEY,
  cap INTEGER NOT NULL,
  spent INTEGER NOT NULL DEFAULT 0,
  reserved INTEGER NOT NULL DEFAULT 0,
  overshoot INTEGER NOT NULL DEFAULT 0,
  updated_at TEXT NOT NULL
);
CREATE TABLE reservations (
  id TEXT PRIMARY KEY,
  doc TEXT NOT NULL CHECK (json_valid(doc)),
  state TEXT GENERATED ALWAYS AS (json_extract(doc, '$.state')) VIRTUAL,
  expires_at TEXT GENERATED ALWAYS AS (json_extract(doc, '$.expires_at')) VIRTUAL
);
CREATE INDEX reservations_open ON reservations (expires_at) WHERE state = 'open';

CREATE TABLE llm_calls (
  id TEXT PRIMARY KEY,
  doc TEXT NOT NULL CHECK (json_valid(doc)),
  at TEXT GENERATED ALWAYS AS (json_extract(doc, '$.at')) VIRTUAL
);
CREATE INDEX llm_calls_at ON llm_calls (at);

CREATE TABLE metrics (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  ts TEXT NOT NULL,
  host TEXT NOT NULL,
  metric TEXT NOT NULL,
  value REAL NOT NULL
);
CREATE INDEX metrics_metric ON metrics (metric, ts);

CREATE TABLE memory (
  id TEXT PRIMARY KEY,
  doc TEXT NOT NULL CHECK (json_valid(doc)),
  embedding BLOB NOT NULL,
  dim INTEGER NOT NULL,
  agent TEXT GENERATED ALWAYS AS (json_extract(doc, '$.agent')) VIRTUAL,
  product TEXT GENERATED ALWAYS AS (json_extract(doc, '$.product')) VIRTUAL,
  kind TEXT GENERATED ALWAYS AS (json_extract(doc, '$.type')) VIRTUAL,
  created_at TEXT GENERATED ALWAYS AS (json_extract(doc, '$.created_at')) VIRTUAL
);
CREATE INDEX memory_product ON memory (product);
CREATE INDEX memory_agent ON memory (agent);

CREATE TABLE entities (
  id TEXT PRIMARY KEY,
  doc TEXT NOT NULL CHECK (json_valid(doc)),
  kind TEXT GENERATED ALWAYS AS (json_extract(doc, '$.type')) VIRTUAL
);
CREATE TABLE relationships (
  id TEXT PRIMARY KEY,
  doc TEXT NOT NULL CHECK (json_valid(doc)),
  from_id TEXT GENERATED ALWAYS AS (json_extract(doc, '$.from')) VIRTUAL,
  to_id TEXT GENERATED ALWAYS AS (json_extract(doc, '$.to')) VIRTUAL
);
CREATE INDEX relationships_from ON relationships (from_id);

CREATE TABLE products (
  id TEXT PRIMARY KEY,
  doc TEXT NOT NULL CHECK (json_valid(doc))
);
CREATE TABLE revenue (
  id TEXT PRIMARY KEY,
  doc TEXT NOT NULL CHECK (json_valid(doc)),
  product TEXT GENERATED ALWAYS AS (json_extract(doc, '$.product')) VIRTUAL,
  at TEXT GENERATED ALWAYS AS (json_extract(doc, '$.at')) VIRTUAL
);
CREATE INDEX revenue_product ON revenue (product, at);

CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_at TEXT NOT NULL
);
CREATE TABLE cursors (
  listener TEXT PRIMARY KEY,
  token TEXT NOT NULL
);

-- The change history watchers read; filled by triggers so writes by any program are seen.
CREATE TABLE changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  coll TEXT NOT NULL,
  op TEXT NOT NULL,
  doc_id TEXT NOT NULL,
  at INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
);
"#;

fn triggers() -> String {
    let mut s = String::new();
    for t in WATCHED {
        for (op, when, row) in [("insert", "INSERT", "NEW"), ("update", "UPDATE", "NEW"), ("delete", "DELETE", "OLD")] {
            s.push_str(&format!(
                "CREATE TRIGGER {t}_{op}_change AFTER {when} ON {t} BEGIN \
                 INSERT INTO changes (coll, op, doc_id) VALUES ('{t}', '{op}', {row}.id); END;\n"
            ));
        }
    }
    s
}

/// The migrations, in order; index + 1 is the `user_version` each leaves behind.
const V2: &str = r#"
CREATE TABLE settings (
  id TEXT PRIMARY KEY,
  doc TEXT NOT NULL CHECK (json_valid(doc))
);
"#;

/// Hardware samples announce themselves too, so views of them update without polling.
const V3: &str = r#"
CREATE TRIGGER metrics_insert_change AFTER INSERT ON metrics BEGIN
  INSERT INTO changes (coll, op, doc_id) VALUES ('metrics', 'insert', NEW.seq);
END;
"#;

/// The approval gate looks requests up by task.
const V4: &str = r#"
ALTER TABLE approvals ADD COLUMN task_id TEXT GENERATED ALWAYS AS (json_extract(doc, '$.task_id')) VIRTUAL;
CREATE INDEX approvals_task ON approvals (task_id);
"#;

/// Refunds find their product by the charge they undo; subscriptions carry MRR.
const V5: &str = r#"
ALTER TABLE revenue ADD COLUMN reference TEXT GENERATED ALWAYS AS (json_extract(doc, '$.reference')) VIRTUAL;
CREATE INDEX revenue_reference ON revenue (reference) WHERE reference IS NOT NULL;
CREATE TABLE subscriptions (
  id TEXT PRIMARY KEY,
  doc TEXT NOT NULL CHECK (json_valid(doc)),
  updated_at TEXT GENERATED ALWAYS AS (json_extract(doc, '$.updated_at')) VIRTUAL
);
CREATE TRIGGER subscriptions_insert_change AFTER INSERT ON subscriptions BEGIN
  INSERT INTO changes (coll, op, doc_id) VALUES ('subscriptions', 'insert', NEW.id);
END;
CREATE TRIGGER subscriptions_update_change AFTER UPDATE ON subscriptions BEGIN
  INSERT INTO changes (coll, op, doc_id) VALUES ('subscriptions', 'update', NEW.id);
END;
"#;

/// Events are read by kind (the status strip's failures since the last acknowledgement, a
/// schedule's runs, a task's output): an index, so a store of a million events answers at once.
const V6: &str = r#"
CREATE INDEX events_kind ON events (kind, seq);
"#;

fn migrations() -> Vec<String> {
    vec![format!("{V1}\n{}", triggers()), V2.to_string(), V3.to_string(), V4.to_string(), V5.to_string(), V6.to_string()]
}

pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let all = migrations();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db_err)?;
    let current: usize = tx.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0)).map_err(db_err)? as usize;
    if current > all.len() {
        return Err(StoreError::Unavailable(format!(
            "the store file has schema version {current}, newer than this REEF knows ({}); upgrade REEF",
            all.len()
        )));
    }
    for (i, sql) in all.iter().enumerate().skip(current) {
        tx.execute_batch(sql).map_err(|e| StoreError::Backend(format!("migration {} failed: {e}", i + 1)))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64).map_err(db_err)?;
        tracing::info!(version = i + 1, "embedded store migrated");
    }
    tx.commit().map_err(db_err)
}
