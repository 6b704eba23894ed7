//! `Archive` on SQLite: the whole store as store-neutral JSON documents, read in one snapshot.

use super::knowledge::{normalise, to_blob};
use super::{db_err, SqliteStore};
use async_trait::async_trait;
use reef_core::collections as c;
use reef_core::*;
use rusqlite::{params, Connection};
use serde_json::Value;

/// How each collection is read out: a JSON document column, or columns made into one.
fn export_sql(coll: &str) -> &'static str {
    match coll {
        c::LEDGER => "SELECT json_object('_id', scope, 'cap', cap, 'spent', spent, 'reserved', reserved, 'overshoot', overshoot, 'updated_at', updated_at) FROM ledger",
        c::METRICS => "SELECT json_object('timestamp', ts, 'source', json_object('host', host, 'metric', metric), 'value', value) FROM metrics ORDER BY seq",
        c::LEASES => "SELECT json_object('_id', name, 'holder', holder, 'expires_at', expires_at) FROM leases",
        c::CURSORS => "SELECT json_object('_id', listener, 'token', token) FROM cursors",
        c::MEMORY => "SELECT doc, embedding FROM memory",
        c::EVENTS => "SELECT doc FROM events ORDER BY seq",
        c::AUDIT => "SELECT doc FROM audit ORDER BY seq",
        c::TASKS => "SELECT doc FROM tasks",
        c::AGENT_STATE => "SELECT doc FROM agent_state",
        c::AGENT_REVISIONS => "SELECT json_set(doc, '$._id', id) FROM agent_revisions",
        c::APPROVALS => "SELECT doc FROM approvals",
        c::RESERVATIONS => "SELECT doc FROM reservations",
        c::LLM_CALLS => "SELECT doc FROM llm_calls",
        c::ENTITIES => "SELECT doc FROM entities",
        c::RELATIONSHIPS => "SELECT json_set(doc, '$._id', id) FROM relationships",
        c::PRODUCTS => "SELECT doc FROM products",
        c::REVENUE => "SELECT doc FROM revenue",
        c::SUBSCRIPTIONS => "SELECT doc FROM subscriptions",
        c::SETTINGS => "SELECT json_set(doc, '$._id', id) FROM settings",
        _ => "SELECT NULL WHERE 0",
    }
}

fn str_field<'a>(d: &'a Value, k: &str, coll: &str) -> Result<&'a str, StoreError> {
    d.get(k).and_then(Value::as_str).ok_or_else(|| StoreError::Invalid(format!("a {coll} document in the archive has no string {k:?}")))
}

fn import_one(conn: &Connection, coll: &str, d: &Value) -> Result<(), StoreError> {
    let doc = d.to_string();
    let id = || str_field(d, "_id", coll);
    let r = match coll {
        c::LEDGER => conn.execute(
            "INSERT OR REPLACE INTO ledger (scope, cap, spent, reserved, overshoot, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                id()?,
                d["cap"].as_i64().unwrap_or(0),
                d["spent"].as_i64().unwrap_or(0),
                d["reserved"].as_i64().unwrap_or(0),
                d["overshoot"].as_i64().unwrap_or(0),
                str_field(d, "updated_at", coll)?
            ],
        ),
        c::METRICS => conn.execute(
            "INSERT INTO metrics (ts, host, metric, value) VALUES (?1, ?2, ?3, ?4)",
            params![
                str_field(d, "timestamp", coll)?,
                d["source"]["host"].as_str().unwrap_or(""),
                d["source"]["metric"].as_str().unwrap_or(""),
                d["value"].as_f64().unwrap_or(0.0)
            ],
        ),
        c::LEASES => conn.execute(
            "INSERT OR REPLACE INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)",
            params![id()?, str_field(d, "holder", coll)?, str_field(d, "expires_at", coll)?],
        ),
        c::CURSORS => {
            conn.execute("INSERT OR REPLACE INTO cursors (listener, token) VALUES (?1, ?2)", params![id()?, str_field(d, "token", coll)?])
        }
        c::MEMORY => {
            let emb: Vec<f32> =
                d["embedding"].as_array().map(|a| a.iter().filter_map(|x| x.as_f64().map(|f| f as f32)).collect()).unwrap_or_default();
            let emb = normalise(&emb)?;
            let mut v = d.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("embedding");
            }
            conn.execute(
                "INSERT OR REPLACE INTO memory (id, doc, embedding, dim) VALUES (?1, ?2, ?3, ?4)",
                params![id()?, v.to_string(), to_blob(&emb), emb.len() as i64],
            )
        }
        c::EVENTS | c::AUDIT => conn.execute(&format!("INSERT OR REPLACE INTO {coll} (id, doc) VALUES (?1, ?2)"), params![id()?, doc]),
        c::TASKS
        | c::AGENT_STATE
        | c::AGENT_REVISIONS
        | c::APPROVALS
        | c::RESERVATIONS
        | c::LLM_CALLS
        | c::ENTITIES
        | c::RELATIONSHIPS
        | c::PRODUCTS
        | c::REVENUE
        | c::SUBSCRIPTIONS
        | c::SETTINGS => conn.execute(&format!("INSERT OR REPLACE INTO {coll} (id, doc) VALUES (?1, ?2)"), params![id()?, doc]),
        other => return Err(StoreError::Invalid(format!("the archive names collection {other:?}, which REEF does not keep"))),
    };
    r.map(|_| ()).map_err(db_err)
}

#[async_trait]
impl Archive for SqliteStore {
    async fn export(&self) -> StoreResult<Vec<(String, Vec<Value>)>> {
        self.read(|conn| {
            // One read transaction: every collection is read from the same snapshot.
            conn.execute_batch("BEGIN DEFERRED").map_err(db_err)?;
            let res = (|| {
                let mut out = vec![];
                for coll in c::ALL {
                    let mut st = conn.prepare(export_sql(coll)).map_err(db_err)?;
                    let with_vectors = coll == c::MEMORY;
                    let rows = st
                        .query_map([], |r| Ok((r.get::<_, String>(0)?, if with_vectors { Some(r.get::<_, Vec<u8>>(1)?) } else { None })))
                        .map_err(db_err)?;
                    let mut docs = vec![];
                    for r in rows {
                        let (s, blob) = r.map_err(db_err)?;
                        let mut v: Value = serde_json::from_str(&s).map_err(|e| StoreError::Backend(format!("{coll}: {e}")))?;
                        if let (Some(b), Some(o)) = (blob, v.as_object_mut()) {
                            // f32 values as f32 (shortest form), so archives compare equal across stores.
                            let e: Vec<f32> = b.chunks_exact(4).map(|x| f32::from_le_bytes([x[0], x[1], x[2], x[3]])).collect();
                            o.insert("embedding".into(), serde_json::json!(e));
                        }
                        docs.push(v);
                    }
                    out.push((coll.to_string(), docs));
                }
                Ok(out)
            })();
            conn.execute_batch("COMMIT").map_err(db_err)?;
            res
        })
        .await
    }

    async fn import(&self, collection: &str, docs: Vec<Value>) -> StoreResult<u64> {
        let coll = collection.to_string();
        self.write(move |tx| {
            for d in &docs {
                import_one(tx, &coll, d)?;
            }
            Ok(docs.len() as u64)
        })
        .await
    }
}
