//! `TaskQueue` on SQLite: claims are one immediate transaction, completions fenced by token.

use super::{db_err, fetch_pairs, json_err, listing, parse_doc, SqliteStore};
use async_trait::async_trait;
use reef_core::time::fmt_ts;
use reef_core::*;
use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::{json, Value};
use std::time::Duration;

const COLL: &str = "tasks";

/// A task's document as stored (text), or `NotFound`.
fn load_text(c: &rusqlite::Connection, id: &str) -> Result<String, StoreError> {
    let doc: Option<String> = c.query_row("SELECT doc FROM tasks WHERE id = ?1", [id], |r| r.get(0)).optional().map_err(db_err)?;
    doc.ok_or_else(|| StoreError::not_found(format!("task {id}")))
}

fn load(tx: &rusqlite::Connection, id: &str) -> Result<Value, StoreError> {
    let doc = load_text(tx, id)?;
    serde_json::from_str(&doc).map_err(|e| StoreError::Malformed { collection: COLL.into(), id: id.into(), reason: e.to_string() })
}

fn store(tx: &rusqlite::Connection, id: &str, v: &Value) -> Result<Task, StoreError> {
    let s = serde_json::to_string(v).map_err(json_err)?;
    tx.execute("UPDATE tasks SET doc = ?2 WHERE id = ?1", params![id, s]).map_err(db_err)?;
    parse_doc(COLL, id, &s).map_err(|m| StoreError::Malformed { collection: m.collection, id: m.id, reason: m.reason })
}

/// The document with REEF's quarantine marker put in front of its own fields, by text: SQLite's
/// JSON functions would re-print its numbers (to 15 digits), and a quarantined document must stay
/// exactly as its writer wrote it.
fn quarantined(doc: &str, reason: &str, at: &str) -> String {
    let marker = json!({"reason": reason, "at": at});
    match doc.trim_start().strip_prefix('{') {
        Some(rest) if rest.trim_start().starts_with('}') => format!("{{\"reef_malformed\":{marker}{rest}"),
        Some(rest) => format!("{{\"reef_malformed\":{marker},{rest}"),
        // Not an object at all: keep it whole under a field of the marker's document.
        None => json!({"reef_malformed": marker, "reef_original": doc}).to_string(),
    }
}

fn obj(v: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !v.is_object() {
        *v = json!({});
    }
    v.as_object_mut().expect("just made an object")
}

/// Loads a task under the caller's lease token, or says the lease is gone.
fn load_fenced(tx: &Transaction<'_>, id: &str, token: &str) -> Result<Value, StoreError> {
    let v = load(tx, id)?;
    let status = v.get("status").and_then(Value::as_str).unwrap_or("");
    let held = v.pointer("/lease/token").and_then(Value::as_str) == Some(token);
    if !held || !(status == "claimed" || status == "running") {
        return Err(StoreError::LeaseLost { task_id: id.into() });
    }
    Ok(v)
}

fn claim_candidate(tx: &Transaction<'_>, filter: &ClaimFilter, now: &str) -> Result<Option<(String, String)>, StoreError> {
    let mut agent_clause = String::new();
    let mut args: Vec<String> = vec![now.to_string()];
    if let Some(agents) = &filter.agents {
        let mut ors = vec![];
        if !agents.is_empty() {
            let marks: Vec<String> = agents
                .iter()
                .map(|a| {
                    args.push(a.clone());
                    format!("?{}", args.len())
                })
                .collect();
            ors.push(format!("assigned_to IN ({})", marks.join(",")));
        }
        if filter.include_unassigned {
            ors.push("assigned_to IS NULL".into());
        }
        if ors.is_empty() {
            return Ok(None);
        }
        agent_clause = format!("AND ({})", ors.join(" OR "));
    }
    // Two index-backed probes (pending by priority, expired leases) and the better of the two.
    let pending = format!(
        "SELECT id, doc, CASE WHEN typeof(priority) IN ('integer','real') THEN CAST(priority AS INTEGER) ELSE 0 END, CAST(created_at AS TEXT) FROM tasks WHERE status = 'pending' AND malformed IS NULL AND ?1 = ?1 {agent_clause} \
         ORDER BY priority DESC, created_at ASC LIMIT 1"
    );
    let expired = format!(
        "SELECT id, doc, CASE WHEN typeof(priority) IN ('integer','real') THEN CAST(priority AS INTEGER) ELSE 0 END, CAST(created_at AS TEXT) FROM tasks WHERE lease_expires IS NOT NULL AND lease_expires < ?1 \
         AND status IN ('claimed','running') AND malformed IS NULL {agent_clause} ORDER BY priority DESC, created_at ASC LIMIT 1"
    );
    let mut best: Option<(String, String, i64, String)> = None;
    for sql in [pending, expired] {
        let mut st = tx.prepare_cached(&sql).map_err(db_err)?;
        let row = st
            .query_row(rusqlite::params_from_iter(args.iter()), |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                    r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                ))
            })
            .optional()
            .map_err(db_err)?;
        if let Some(r) = row {
            let better = match &best {
                None => true,
                Some(b) => r.2 > b.2 || (r.2 == b.2 && r.3 < b.3),
            };
            if better {
                best = Some(r);
            }
        }
    }
    Ok(best.map(|(id, doc, _, _)| (id, doc)))
}

#[async_trait]
impl TaskQueue for SqliteStore {
    async fn create(&self, task: NewTask, now: Timestamp) -> StoreResult<(Task, bool)> {
        task.validate().map_err(StoreError::Invalid)?;
        self.write(move |tx| {
            if let Some(key) = &task.idempotency_key {
                let existing: Option<(String, String)> = tx
                    .query_row("SELECT id, doc FROM tasks WHERE idem = ?1", [key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .map_err(db_err)?;
                if let Some((id, doc)) = existing {
                    let t = parse_doc(COLL, &id, &doc).map_err(|m| StoreError::Malformed {
                        collection: m.collection,
                        id: m.id,
                        reason: m.reason,
                    })?;
                    return Ok((t, false));
                }
            }
            let t = task.into_task(new_id(), now);
            let doc = serde_json::to_string(&t).map_err(json_err)?;
            tx.execute("INSERT INTO tasks (id, doc) VALUES (?1, ?2)", params![t.id, doc]).map_err(db_err)?;
            Ok((t, true))
        })
        .await
    }

    async fn get(&self, id: &str) -> StoreResult<Task> {
        let id = id.to_string();
        self.read(move |c| {
            let doc = load_text(c, &id)?;
            parse_doc(COLL, &id, &doc).map_err(|m| StoreError::Malformed { collection: m.collection, id: m.id, reason: m.reason })
        })
        .await
    }

    async fn list(&self, q: &TaskQuery) -> StoreResult<Listing<Task>> {
        let q = q.clone();
        self.read(move |c| {
            let mut sql = String::from("SELECT id, doc FROM tasks WHERE 1=1");
            let mut args: Vec<String> = vec![];
            let arg = |v: String, args: &mut Vec<String>| {
                args.push(v);
                format!("?{}", args.len())
            };
            if let Some(st) = &q.status {
                let marks: Vec<String> = st.iter().map(|s| arg(s.as_str().into(), &mut args)).collect();
                sql.push_str(&format!(" AND status IN ({})", marks.join(",")));
            }
            if let Some(a) = &q.assigned_to {
                let m = arg(a.clone(), &mut args);
                sql.push_str(&format!(" AND assigned_to = {m}"));
            }
            if let Some(p) = &q.product {
                let m = arg(p.clone(), &mut args);
                sql.push_str(&format!(" AND product = {m}"));
            }
            if let Some(p) = &q.parent_id {
                let m = arg(p.clone(), &mut args);
                sql.push_str(&format!(" AND parent_id = {m}"));
            }
            if let Some(t) = &q.text {
                let m = arg(format!("%{}%", t.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")), &mut args);
                sql.push_str(&format!(" AND (lower(json_extract(doc, '$.title')) LIKE {m} ESCAPE '\\' OR lower(id) LIKE {m} ESCAPE '\\')"));
            }
            sql.push_str(" ORDER BY priority DESC, created_at ASC");
            if let Some(l) = q.limit {
                sql.push_str(&format!(" LIMIT {l}"));
            }
            let rows = fetch_pairs(c, &sql, rusqlite::params_from_iter(args.iter()))?;
            Ok(listing(COLL, rows))
        })
        .await
    }

    async fn counts(&self) -> StoreResult<Vec<(TaskStatus, u64)>> {
        self.read(|c| {
            let mut st = c.prepare_cached("SELECT status, COUNT(*) FROM tasks GROUP BY status").map_err(db_err)?;
            let rows = st.query_map([], |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)?))).map_err(db_err)?;
            let mut out = vec![];
            for r in rows {
                let (s, n) = r.map_err(db_err)?;
                if let Some(Ok(s)) = s.map(|s| s.parse::<TaskStatus>()) {
                    out.push((s, n as u64));
                }
            }
            out.sort();
            Ok(out)
        })
        .await
    }

    async fn claim(&self, worker: &str, filter: &ClaimFilter, ttl: Duration, now: Timestamp) -> StoreResult<Option<Task>> {
        let (worker, filter) = (worker.to_string(), filter.clone());
        self.write(move |tx| {
            let now_s = fmt_ts(&now);
            loop {
                let Some((id, doc)) = claim_candidate(tx, &filter, &now_s)? else { return Ok(None) };
                // A document another program wrote that does not parse is marked and skipped,
                // never claimed and never rewritten beyond that marker.
                if let Err(m) = parse_doc::<Task>(COLL, &id, &doc) {
                    tracing::warn!(task = %id, reason = %m.reason, "task REEF cannot read; marked reef_malformed and skipped");
                    tx.execute("UPDATE tasks SET doc = ?2 WHERE id = ?1", params![id, quarantined(&doc, &m.reason, &now_s)])
                        .map_err(db_err)?;
                    continue;
                }
                let mut v: Value = serde_json::from_str(&doc).map_err(json_err)?;
                let lease = Lease {
                    holder: worker.clone(),
                    token: new_id(),
                    expires_at: now + chrono::Duration::from_std(ttl).unwrap_or_default(),
                };
                let attempts = v.get("attempts").and_then(Value::as_u64).unwrap_or(0) + 1;
                let o = obj(&mut v);
                o.insert("status".into(), json!("claimed"));
                o.insert("lease".into(), serde_json::to_value(&lease).map_err(json_err)?);
                o.insert("attempts".into(), json!(attempts));
                o.insert("claimed_at".into(), json!(now_s));
                o.insert("updated_at".into(), json!(now_s));
                return store(tx, &id, &v).map(Some);
            }
        })
        .await
    }

    async fn start(&self, id: &str, token: &str, now: Timestamp) -> StoreResult<Task> {
        let (id, token) = (id.to_string(), token.to_string());
        self.write(move |tx| {
            let mut v = load_fenced(tx, &id, &token)?;
            let o = obj(&mut v);
            o.insert("status".into(), json!("running"));
            o.insert("updated_at".into(), json!(fmt_ts(&now)));
            store(tx, &id, &v)
        })
        .await
    }

    async fn renew(&self, id: &str, token: &str, ttl: Duration, now: Timestamp) -> StoreResult<Task> {
        let (id, token) = (id.to_string(), token.to_string());
        self.write(move |tx| {
            let mut v = load_fenced(tx, &id, &token)?;
            let exp = now + chrono::Duration::from_std(ttl).unwrap_or_default();
            if let Some(l) = v.get_mut("lease").and_then(Value::as_object_mut) {
                l.insert("expires_at".into(), json!(fmt_ts(&exp)));
            }
            store(tx, &id, &v)
        })
        .await
    }

    async fn finish_with(&self, id: &str, token: &str, outcome: Outcome, event: Option<Event>, now: Timestamp) -> StoreResult<Task> {
        let (id, token) = (id.to_string(), token.to_string());
        self.write(move |tx| {
            if let Some(ev) = &event {
                tx.execute(
                    "INSERT OR IGNORE INTO events (id, doc) VALUES (?1, ?2)",
                    params![ev.id, serde_json::to_string(ev).map_err(json_err)?],
                )
                .map_err(db_err)?;
            }
            let mut v = load_fenced(tx, &id, &token)?;
            let o = obj(&mut v);
            o.remove("lease");
            o.insert("updated_at".into(), json!(fmt_ts(&now)));
            match outcome {
                Outcome::Succeeded { result, work_products, review } => {
                    o.insert("status".into(), json!(if review { "review" } else { "done" }));
                    o.insert("result".into(), json!(result));
                    o.remove("error");
                    let wp = o.entry("work_products").or_insert_with(|| json!({}));
                    if let (Some(dst), Value::Object(src)) = (wp.as_object_mut(), serde_json::to_value(&work_products).map_err(json_err)?) {
                        dst.extend(src);
                    }
                }
                Outcome::Retry { error } => {
                    o.insert("status".into(), json!("pending"));
                    o.insert("error".into(), json!(error));
                }
                Outcome::Requeue { error } => {
                    o.insert("status".into(), json!("pending"));
                    o.insert("error".into(), json!(error));
                    let n = o.get("attempts").and_then(Value::as_u64).unwrap_or(0);
                    o.insert("attempts".into(), json!(n.saturating_sub(1)));
                }
                Outcome::Failed { error } => {
                    o.insert("status".into(), json!("failed"));
                    o.insert("error".into(), json!(error));
                }
                Outcome::NeedsHuman { reason } => {
                    o.insert("status".into(), json!("needs_human"));
                    o.insert("error".into(), json!(reason));
                }
                Outcome::AwaitingApproval => {
                    o.insert("status".into(), json!("awaiting_approval"));
                }
                Outcome::Blocked { on } => {
                    o.insert("status".into(), json!("blocked"));
                    let deps = o.entry("depends_on").or_insert_with(|| json!([]));
                    if !deps.is_array() {
                        *deps = json!([]);
                    }
                    let list = deps.as_array_mut().expect("made an array above");
                    for d in on {
                        if !list.iter().any(|x| x.as_str() == Some(d.as_str())) {
                            list.push(json!(d));
                        }
                    }
                    // Waiting is not a try: the attempt is given back, as for a clean requeue.
                    let n = o.get("attempts").and_then(Value::as_u64).unwrap_or(0);
                    o.insert("attempts".into(), json!(n.saturating_sub(1)));
                }
            }
            store(tx, &id, &v)
        })
        .await
    }

    async fn transition(&self, id: &str, from: &[TaskStatus], to: TaskStatus, note: Option<&str>, now: Timestamp) -> StoreResult<Task> {
        let (id, from, note) = (id.to_string(), from.to_vec(), note.map(String::from));
        self.write(move |tx| {
            let mut v = load(tx, &id)?;
            let cur = v.get("status").and_then(Value::as_str).unwrap_or("").to_string();
            if !from.iter().any(|s| s.as_str() == cur) {
                return Err(StoreError::Conflict(format!(
                    "task {id} is {cur}, not {}",
                    from.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" or ")
                )));
            }
            let o = obj(&mut v);
            o.insert("status".into(), json!(to.as_str()));
            o.remove("lease");
            o.insert("updated_at".into(), json!(fmt_ts(&now)));
            if let Some(n) = note {
                o.insert("error".into(), json!(n));
            }
            store(tx, &id, &v)
        })
        .await
    }

    async fn assign(&self, id: &str, agent: Option<&str>, now: Timestamp) -> StoreResult<Task> {
        let (id, agent) = (id.to_string(), agent.map(String::from));
        self.write(move |tx| {
            let mut v = load(tx, &id)?;
            let o = obj(&mut v);
            o.insert("assigned_to".into(), json!(agent));
            o.insert("updated_at".into(), json!(fmt_ts(&now)));
            store(tx, &id, &v)
        })
        .await
    }

    async fn route(&self, id: &str, agent: &str, tier: ModelTier, now: Timestamp) -> StoreResult<bool> {
        let (id, agent) = (id.to_string(), agent.to_string());
        self.write(move |tx| {
            let n = tx
                .execute(
                    "UPDATE tasks SET doc = json_set(doc, '$.assigned_to', ?2, '$.model_tier', coalesce(json_extract(doc, '$.model_tier'), ?3), '$.updated_at', ?4)
                     WHERE id = ?1 AND assigned_to IS NULL AND status = 'pending'",
                    params![id, agent, tier.as_str(), fmt_ts(&now)],
                )
                .map_err(db_err)?;
            Ok(n == 1)
        })
        .await
    }

    async fn set_tier(&self, id: &str, tier: ModelTier, now: Timestamp) -> StoreResult<()> {
        let id = id.to_string();
        self.write(move |tx| {
            let n = tx
                .execute(
                    "UPDATE tasks SET doc = json_set(doc, '$.model_tier', ?2, '$.updated_at', ?3) WHERE id = ?1",
                    params![id, tier.as_str(), fmt_ts(&now)],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Err(StoreError::not_found(format!("task {id}")));
            }
            Ok(())
        })
        .await
    }

    async fn comment(&self, id: &str, comment: Comment) -> StoreResult<Task> {
        let id = id.to_string();
        self.write(move |tx| {
            let mut v = load(tx, &id)?;
            let c = serde_json::to_value(&comment).map_err(json_err)?;
            let o = obj(&mut v);
            match o.get_mut("comments") {
                Some(Value::Array(a)) => a.push(c),
                _ => {
                    o.insert("comments".into(), json!([c]));
                }
            }
            o.insert("updated_at".into(), json!(fmt_ts(&comment.at)));
            store(tx, &id, &v)
        })
        .await
    }
}
