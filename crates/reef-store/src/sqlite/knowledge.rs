//! Memory (vectors), the knowledge graph and revenue on SQLite.
//!
//! Vectors are stored unit-normalised as little-endian f32 BLOBs, so cosine similarity is a dot
//! product; search filters on indexed metadata in SQL and scores the candidates exactly.

use super::{db_err, fetch_pairs, json_err, listing, parse_doc, SqliteStore};
use async_trait::async_trait;
use reef_core::time::fmt_ts;
use reef_core::*;
use rusqlite::{params, OptionalExtension};
use std::collections::{BTreeMap, HashMap};

pub(crate) fn normalise(v: &[f32]) -> Result<Vec<f32>, StoreError> {
    if v.is_empty() {
        return Err(StoreError::Invalid("embedding is empty".into()));
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(StoreError::Invalid("embedding contains NaN or infinity".into()));
    }
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n == 0.0 {
        return Err(StoreError::Invalid("embedding is all zeros".into()));
    }
    Ok(v.iter().map(|x| x / n).collect())
}

pub(crate) fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Dot product with eight independent accumulators, so the compiler keeps several SIMD lanes busy.
pub fn dot_blob(q: &[f32], blob: &[u8]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = blob.chunks_exact(32).zip(q.chunks_exact(8));
    for (b, qq) in chunks {
        for i in 0..8 {
            let x = f32::from_le_bytes([b[i * 4], b[i * 4 + 1], b[i * 4 + 2], b[i * 4 + 3]]);
            acc[i] += x * qq[i];
        }
    }
    let done = (q.len() / 8) * 8;
    let mut tail = 0f32;
    for i in done..q.len().min(blob.len() / 4) {
        tail += f32::from_le_bytes([blob[i * 4], blob[i * 4 + 1], blob[i * 4 + 2], blob[i * 4 + 3]]) * q[i];
    }
    acc.iter().sum::<f32>() + tail
}

/// Builds the WHERE clause for a memory filter; `args` receives the bound values.
fn memory_where(f: &MemoryFilter, args: &mut Vec<String>) -> String {
    let mut w = String::from("1=1");
    let mut add = |clause: &str, v: String, args: &mut Vec<String>| {
        args.push(v);
        w.push_str(&clause.replace('?', &format!("?{}", args.len())));
    };
    if let Some(a) = &f.agent {
        add(" AND agent = ?", a.clone(), args);
    }
    if let Some(p) = &f.product {
        add(" AND product = ?", p.clone(), args);
    }
    if let Some(k) = &f.kind {
        add(" AND kind = ?", k.clone(), args);
    }
    if let Some(s) = &f.since {
        add(" AND created_at >= ?", fmt_ts(s), args);
    }
    if let Some(u) = &f.until {
        add(" AND created_at < ?", fmt_ts(u), args);
    }
    if let Some(t) = &f.text {
        add(" AND instr(lower(json_extract(doc, '$.content')), ?) > 0", t.to_lowercase(), args);
    }
    w
}

/// The index's dimension: the recorded identity's, else the stored vectors'.
fn index_dim(c: &rusqlite::Connection) -> Result<Option<usize>, StoreError> {
    let ident: Option<String> =
        c.query_row("SELECT doc FROM settings WHERE id = ?1", [reef_core::memory::INDEX_KEY], |r| r.get(0)).optional().map_err(db_err)?;
    if let Some(d) = ident.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()).and_then(|v| v["value"]["dimension"].as_u64()) {
        return Ok(Some(d as usize));
    }
    Ok(c.query_row("SELECT dim FROM memory LIMIT 1", [], |r| r.get::<_, i64>(0)).optional().map_err(db_err)?.map(|d| d as usize))
}

fn read_doc(id: &str, doc: &str, blob: &[u8]) -> Result<MemoryDoc, Malformed> {
    let mut v: serde_json::Value =
        serde_json::from_str(doc).map_err(|e| Malformed { collection: "memory".into(), id: id.into(), reason: e.to_string() })?;
    let emb: Vec<f32> = blob.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    if let Some(o) = v.as_object_mut() {
        o.insert("embedding".into(), serde_json::json!(emb));
    }
    serde_json::from_value(v).map_err(|e| Malformed { collection: "memory".into(), id: id.into(), reason: e.to_string() })
}

impl SqliteStore {
    /// The same filtered search answered by sqlite-vec's `vec_distance_cosine` (its default build):
    /// the baseline `reef bench vectors` compares against, and a cross-check in the tests.
    pub async fn search_with_sqlite_vec(&self, query: &[f32], filter: &MemoryFilter, k: usize) -> StoreResult<Vec<(String, f32)>> {
        let q = to_blob(&normalise(query)?);
        let filter = filter.clone();
        self.read(move |c| {
            let mut args = vec![];
            let w = memory_where(&filter, &mut args);
            let qi = args.len() + 1;
            let sql = format!("SELECT id, vec_distance_cosine(embedding, ?{qi}) AS d FROM memory WHERE {w} ORDER BY d ASC LIMIT {k}");
            let mut st = c.prepare_cached(&sql).map_err(db_err)?;
            let mut params: Vec<&dyn rusqlite::ToSql> = args.iter().map(|a| a as &dyn rusqlite::ToSql).collect();
            params.push(&q);
            let rows =
                st.query_map(params.as_slice(), |r| Ok((r.get::<_, String>(0)?, 1.0 - r.get::<_, f64>(1)? as f32))).map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }
}

#[async_trait]
impl Memory for SqliteStore {
    async fn put(&self, doc: MemoryDoc) -> StoreResult<()> {
        if doc.content.len() > 1024 * 1024 {
            return Err(StoreError::Invalid(format!("memory content is {} bytes; the limit is 1 MiB (chunk it)", doc.content.len())));
        }
        let emb = normalise(&doc.embedding)?;
        self.write(move |tx| {
            if let Some(d) = index_dim(tx)? {
                if d != emb.len() {
                    return Err(StoreError::DimensionMismatch { expected: d, got: emb.len() });
                }
            }
            let mut v = serde_json::to_value(&doc).map_err(json_err)?;
            if let Some(o) = v.as_object_mut() {
                o.remove("embedding");
            }
            tx.execute(
                "INSERT OR REPLACE INTO memory (id, doc, embedding, dim) VALUES (?1, ?2, ?3, ?4)",
                params![doc.id, v.to_string(), to_blob(&emb), emb.len() as i64],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn get(&self, id: &str) -> StoreResult<MemoryDoc> {
        let id = id.to_string();
        self.read(move |c| {
            let (doc, blob): (String, Vec<u8>) = c
                .query_row("SELECT doc, embedding FROM memory WHERE id = ?1", [&id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(db_err)?
                .ok_or_else(|| StoreError::not_found(format!("memory {id}")))?;
            read_doc(&id, &doc, &blob).map_err(|m| StoreError::Malformed { collection: m.collection, id: m.id, reason: m.reason })
        })
        .await
    }

    async fn search(&self, query: &[f32], filter: &MemoryFilter, k: usize) -> StoreResult<MemorySearch> {
        let q = normalise(query)?;
        let filter = filter.clone();
        self.read(move |c| {
            if let Some(d) = index_dim(c)? {
                if d != q.len() {
                    return Err(StoreError::DimensionMismatch { expected: d, got: q.len() });
                }
            }
            let mut args = vec![];
            let w = memory_where(&filter, &mut args);
            // Only vectors of the query's size are candidates: while a reembed changes the
            // dimension, the documents it has not reached yet are left out rather than misread.
            let mut st =
                c.prepare_cached(&format!("SELECT rowid, embedding FROM memory WHERE {w} AND dim = {}", q.len())).map_err(db_err)?;
            let mut rows = st.query(rusqlite::params_from_iter(args.iter())).map_err(db_err)?;
            // Keep the best k in a small sorted buffer: k is tiny next to the candidate count.
            let mut best: Vec<(f32, i64)> = Vec::with_capacity(k + 1);
            while let Some(r) = rows.next().map_err(db_err)? {
                let rowid: i64 = r.get(0).map_err(db_err)?;
                let blob = r.get_ref(1).map_err(db_err)?.as_blob().map_err(|e| StoreError::Backend(e.to_string()))?;
                let s = dot_blob(&q, blob);
                if best.len() < k || s > best.last().map(|b| b.0).unwrap_or(f32::MIN) {
                    let pos = best.partition_point(|b| b.0 >= s);
                    best.insert(pos, (s, rowid));
                    best.truncate(k);
                }
            }
            drop(rows);
            let mut hits = Vec::with_capacity(best.len());
            let mut get = c.prepare_cached("SELECT id, doc, embedding FROM memory WHERE rowid = ?1").map_err(db_err)?;
            for (score, rowid) in best {
                let (id, doc, blob): (String, String, Vec<u8>) =
                    get.query_row([rowid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).map_err(db_err)?;
                match read_doc(&id, &doc, &blob) {
                    Ok(doc) => hits.push(MemoryHit { doc, score }),
                    Err(m) => tracing::warn!(id = %m.id, reason = %m.reason, "memory document REEF cannot read; skipped"),
                }
            }
            Ok(MemorySearch { hits, method: SearchMethod::ExactScan })
        })
        .await
    }

    async fn dimension(&self) -> StoreResult<Option<usize>> {
        self.read(index_dim).await
    }

    async fn scan(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<MemoryDoc>> {
        let after = after.unwrap_or("").to_string();
        self.read(move |c| {
            let mut st = c.prepare_cached("SELECT id, doc, embedding FROM memory WHERE id > ?1 ORDER BY id LIMIT ?2").map_err(db_err)?;
            let rows = st
                .query_map(params![after, limit as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?)))
                .map_err(db_err)?;
            let mut out = vec![];
            for row in rows {
                let (id, doc, blob) = row.map_err(db_err)?;
                match read_doc(&id, &doc, &blob) {
                    Ok(d) => out.push(d),
                    // Keep paging: one unreadable document must not stop a reembed of the rest.
                    Err(m) => tracing::warn!(id = %m.id, reason = %m.reason, "memory document REEF cannot read; skipped"),
                }
            }
            Ok(out)
        })
        .await
    }

    async fn set_embeddings(&self, updates: Vec<(String, Vec<f32>)>, embedder: &str) -> StoreResult<()> {
        let mut rows = Vec::with_capacity(updates.len());
        for (id, v) in updates {
            rows.push((id, normalise(&v)?));
        }
        let embedder = embedder.to_string();
        self.write(move |tx| {
            let mut st = tx
                .prepare_cached(
                    "UPDATE memory SET embedding = ?2, dim = ?3, doc = json_set(doc, '$.metadata', json_set(CASE WHEN json_type(doc, '$.metadata') = 'object' THEN json_extract(doc, '$.metadata') ELSE '{}' END, '$.embedder', ?4)) WHERE id = ?1",
                )
                .map_err(db_err)?;
            for (id, v) in &rows {
                st.execute(params![id, to_blob(v), v.len() as i64, embedder]).map_err(db_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn count(&self) -> StoreResult<u64> {
        self.read(|c| c.query_row("SELECT count(*) FROM memory", [], |r| r.get::<_, i64>(0)).map(|n| n as u64).map_err(db_err)).await
    }
}

fn rel_id(r: &Relationship) -> String {
    format!("{}|{}|{}", r.from, r.kind, r.to)
}

#[async_trait]
impl Graph for SqliteStore {
    async fn upsert_entity(&self, entity: Entity) -> StoreResult<()> {
        self.write(move |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO entities (id, doc) VALUES (?1, ?2)",
                params![entity.id, serde_json::to_string(&entity).map_err(json_err)?],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn entity(&self, id: &str) -> StoreResult<Entity> {
        let id = id.to_string();
        self.read(move |c| {
            let doc: String = c
                .query_row("SELECT doc FROM entities WHERE id = ?1", [&id], |r| r.get(0))
                .optional()
                .map_err(db_err)?
                .ok_or_else(|| StoreError::not_found(format!("entity {id}")))?;
            parse_doc("entities", &id, &doc).map_err(|m| StoreError::Malformed { collection: m.collection, id: m.id, reason: m.reason })
        })
        .await
    }

    async fn entities(&self, kind: Option<&str>, limit: usize) -> StoreResult<Listing<Entity>> {
        let kind = kind.map(String::from);
        self.read(move |c| {
            let rows = match kind {
                Some(k) => fetch_pairs(c, &format!("SELECT id, doc FROM entities WHERE kind = ?1 ORDER BY id LIMIT {limit}"), [k])?,
                None => fetch_pairs(c, &format!("SELECT id, doc FROM entities ORDER BY id LIMIT {limit}"), [])?,
            };
            Ok(listing("entities", rows))
        })
        .await
    }

    async fn relate(&self, rel: Relationship) -> StoreResult<()> {
        if !rel.weight.is_finite() {
            return Err(StoreError::Invalid("relationship weight must be a finite number".into()));
        }
        self.write(move |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO relationships (id, doc) VALUES (?1, ?2)",
                params![rel_id(&rel), serde_json::to_string(&rel).map_err(json_err)?],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn traverse(&self, start: &str, depth: u32) -> StoreResult<Traversal> {
        let start = start.to_string();
        self.read(move |c| {
            // UNION (not UNION ALL) drops repeated (node, depth) pairs, so a cycle is walked at
            // most once per depth and the walk ends at `depth` whatever the graph's shape.
            let mut st = c
                .prepare_cached(
                    "WITH RECURSIVE reach(id, depth) AS (
                       SELECT ?1, 0
                       UNION
                       SELECT r.to_id, reach.depth + 1 FROM relationships r JOIN reach ON r.from_id = reach.id WHERE reach.depth < ?2
                     )
                     SELECT id, min(depth) FROM reach GROUP BY id",
                )
                .map_err(db_err)?;
            let reached: BTreeMap<String, u32> = st
                .query_map(params![start, depth], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u32)))
                .map_err(db_err)?
                .collect::<Result<_, _>>()
                .map_err(db_err)?;
            let mut nodes = vec![];
            let mut ent = c.prepare_cached("SELECT doc FROM entities WHERE id = ?1").map_err(db_err)?;
            for (id, d) in &reached {
                let e = match ent.query_row([id], |r| r.get::<_, String>(0)).optional().map_err(db_err)? {
                    Some(doc) => parse_doc::<Entity>("entities", id, &doc).unwrap_or_else(|_| placeholder(id)),
                    // An edge may point at an entity nobody described yet; show it by id.
                    None => placeholder(id),
                };
                nodes.push((e, *d));
            }
            let mut edges = vec![];
            let mut rel = c.prepare_cached("SELECT id, doc FROM relationships WHERE from_id = ?1").map_err(db_err)?;
            let within: HashMap<&String, u32> = reached.iter().map(|(k, v)| (k, *v)).collect();
            for (id, d) in &reached {
                if *d >= depth {
                    continue;
                }
                let rows = rel.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(db_err)?;
                for row in rows {
                    let (rid, doc) = row.map_err(db_err)?;
                    if let Ok(r) = parse_doc::<Relationship>("relationships", &rid, &doc) {
                        if within.contains_key(&r.to) {
                            edges.push(r);
                        }
                    }
                }
            }
            let known = nodes.first().is_some_and(|(e, _)| e.kind != "unknown");
            if !known && edges.is_empty() {
                return Err(StoreError::not_found(format!("entity {start}")));
            }
            Ok(Traversal { start, nodes, edges })
        })
        .await
    }
}

fn placeholder(id: &str) -> Entity {
    Entity { id: id.into(), kind: "unknown".into(), name: id.into(), properties: serde_json::Value::Null }
}

#[async_trait]
impl Revenue for SqliteStore {
    async fn upsert_product(&self, product: Product) -> StoreResult<()> {
        self.write(move |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO products (id, doc) VALUES (?1, ?2)",
                params![product.id, serde_json::to_string(&product).map_err(json_err)?],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn products(&self) -> StoreResult<Listing<Product>> {
        self.read(|c| Ok(listing("products", fetch_pairs(c, "SELECT id, doc FROM products ORDER BY id", [])?))).await
    }

    async fn record(&self, event: RevenueEvent) -> StoreResult<bool> {
        if event.currency.len() != 3 || !event.currency.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(StoreError::Invalid(format!("currency {:?} is not an ISO 4217 code", event.currency)));
        }
        self.write(move |tx| {
            let n = tx
                .execute(
                    "INSERT OR IGNORE INTO revenue (id, doc) VALUES (?1, ?2)",
                    params![event.id, serde_json::to_string(&event).map_err(json_err)?],
                )
                .map_err(db_err)?;
            Ok(n == 1)
        })
        .await
    }

    async fn by_product_month(&self) -> StoreResult<Vec<RevenueRow>> {
        self.read(|c| {
            let mut st = c
                .prepare_cached(
                    "SELECT product, substr(at, 1, 7) AS m, lower(json_extract(doc, '$.currency')) AS cur, sum(json_extract(doc, '$.amount_minor'))
                     FROM revenue GROUP BY product, m, cur ORDER BY product, m, cur",
                )
                .map_err(db_err)?;
            let rows = st
                .query_map([], |r| Ok(RevenueRow { product: r.get(0)?, month: r.get(1)?, currency: r.get(2)?, amount_minor: r.get(3)? }))
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn product_of_reference(&self, reference: &str) -> StoreResult<Option<String>> {
        let r = reference.to_string();
        self.read(move |c| {
            c.query_row("SELECT product FROM revenue WHERE reference = ?1 ORDER BY at LIMIT 1", [&r], |row| row.get(0))
                .optional()
                .map_err(db_err)
        })
        .await
    }

    async fn upsert_subscription(&self, sub: Subscription) -> StoreResult<bool> {
        let doc = serde_json::to_string(&sub).map_err(json_err)?;
        let at = fmt_ts(&sub.updated_at);
        self.write(move |tx| {
            let n = tx
                .execute(
                    "INSERT INTO subscriptions (id, doc) VALUES (?1, ?2)
                     ON CONFLICT (id) DO UPDATE SET doc = excluded.doc WHERE subscriptions.updated_at <= ?3",
                    params![sub.id, doc, at],
                )
                .map_err(db_err)?;
            Ok(n == 1)
        })
        .await
    }

    async fn subscriptions(&self) -> StoreResult<Vec<Subscription>> {
        self.read(|c| {
            let rows = fetch_pairs(c, "SELECT id, doc FROM subscriptions ORDER BY id", [])?;
            Ok(listing("subscriptions", rows).items)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_blob_matches_a_plain_dot_product_for_every_length() {
        for n in [1usize, 7, 8, 9, 384, 385] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            let fast = dot_blob(&a, &to_blob(&b));
            assert!((plain - fast).abs() < 1e-3, "n={n}: {plain} vs {fast}");
        }
    }
}
