//! Events, audit log, agents, approvals, metrics and named leases on SQLite.

use super::{db_err, fetch_pairs, json_err, listing, parse_doc, SqliteStore};
use async_trait::async_trait;
use reef_core::time::fmt_ts;
use reef_core::*;
use rusqlite::{params, OptionalExtension};
use std::time::Duration;

/// The events feed keeps at most this many entries between housekeeping sweeps, beyond what
/// webhooks still owe; the audit log keeps all.
pub const EVENTS_KEPT: i64 = 200_000;
/// What webhooks owe is kept too, but never more than this many entries (about 1 GB): the disk
/// bound, whatever a receiver does.
pub const EVENTS_CEILING: i64 = 2_000_000;

fn malformed(m: Malformed) -> StoreError {
    StoreError::Malformed { collection: m.collection, id: m.id, reason: m.reason }
}

/// Drops events up to `upto_seq`, except those a webhook subscription has not been sent yet
/// (after its position: the event log is the webhooks' outbox) unless they are at or before
/// `ceiling_seq`.
pub(crate) fn prune_events(tx: &rusqlite::Transaction<'_>, upto_seq: i64, ceiling_seq: i64) -> StoreResult<usize> {
    tx.execute(
        "DELETE FROM events WHERE seq <= ?1 AND (seq <= ?2 OR seq <= coalesce(
           (SELECT min(CAST(json_extract(doc, '$.value.position') AS INTEGER)) FROM settings
             WHERE id LIKE 'webhook.state:%' AND json_type(doc, '$.value.position') = 'text' AND json_extract(doc, '$.value.position') != ''),
           9223372036854775807))",
        params![upto_seq, ceiling_seq],
    )
    .map_err(db_err)
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn append(&self, event: Event) -> StoreResult<()> {
        self.write(move |tx| {
            let doc = serde_json::to_string(&event).map_err(json_err)?;
            tx.execute("INSERT OR IGNORE INTO events (id, doc) VALUES (?1, ?2)", params![event.id, doc]).map_err(db_err)?;
            let seq = tx.last_insert_rowid();
            if seq % 1000 == 0 {
                prune_events(tx, seq - EVENTS_KEPT, seq - EVENTS_CEILING)?;
            }
            Ok(())
        })
        .await
    }

    async fn recent(&self, q: &EventQuery) -> StoreResult<Listing<Event>> {
        let q = q.clone();
        self.read(move |c| {
            let mut sql = String::from("SELECT id, doc FROM events WHERE 1=1");
            let mut args: Vec<String> = vec![];
            if let Some(p) = q.kind_prefix.as_ref().filter(|p| !p.is_empty()) {
                // A range, not LIKE: the kind index serves it (LIKE ignores case, an index does not).
                args.push(p.clone());
                args.push(format!("{p}\u{10FFFF}"));
                sql.push_str(&format!(" AND kind >= ?{} AND kind < ?{}", args.len() - 1, args.len()));
            }
            if let Some(s) = &q.subject {
                args.push(s.clone());
                sql.push_str(&format!(" AND subject = ?{}", args.len()));
            }
            if let Some(t) = &q.text {
                args.push(format!("%{}%", t.to_lowercase().replace('%', "\\%").replace('_', "\\_")));
                sql.push_str(&format!(" AND lower(doc) LIKE ?{} ESCAPE '\\'", args.len()));
            }
            if let Some(t) = &q.since {
                // Timestamps are fixed-width RFC 3339 (UTC, milliseconds): text order is time order.
                args.push(reef_core::time::fmt_ts(t));
                sql.push_str(&format!(" AND json_extract(doc, '$.at') >= ?{}", args.len()));
            }
            let order = if q.oldest_first { "ASC" } else { "DESC" };
            sql.push_str(&format!(" ORDER BY seq {order} LIMIT {}", q.limit.max(1)));
            Ok(listing("events", fetch_pairs(c, &sql, rusqlite::params_from_iter(args.iter()))?))
        })
        .await
    }

    async fn log(&self, after: Option<&str>, since: Option<Timestamp>, limit: usize) -> StoreResult<Vec<(String, Event)>> {
        let after: Option<i64> = match after {
            Some(a) => Some(a.parse().map_err(|_| StoreError::Invalid(format!("{a:?} is not a position in this store's event log")))?),
            None => None,
        };
        self.read(move |c| {
            // `seq` is assigned inside the writing transaction and SQLite commits one writer at a
            // time: its order is commit order.
            let (sql, arg) = match (after, since) {
                (Some(s), _) => ("SELECT seq, id, doc FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2", s.to_string()),
                (None, Some(t)) => (
                    "SELECT seq, id, doc FROM events WHERE seq >= coalesce((SELECT min(seq) FROM events WHERE json_extract(doc, '$.at') >= ?1), 9223372036854775807) ORDER BY seq LIMIT ?2",
                    fmt_ts(&t),
                ),
                (None, None) => ("SELECT seq, id, doc FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2", "0".to_string()),
            };
            let mut st = c.prepare_cached(sql).map_err(db_err)?;
            let rows = st
                .query_map(params![arg, limit.max(1) as i64], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
                .map_err(db_err)?;
            let mut out = vec![];
            for row in rows {
                let (seq, id, doc) = row.map_err(db_err)?;
                match parse_doc::<Event>("events", &id, &doc) {
                    Ok(e) => out.push((seq.to_string(), e)),
                    Err(m) => tracing::warn!(id = %m.id, reason = %m.reason, "event log: passing over a document REEF cannot read"),
                }
            }
            Ok(out)
        })
        .await
    }

    async fn log_tail(&self) -> StoreResult<Option<String>> {
        self.read(|c| {
            let seq: Option<i64> = c.query_row("SELECT max(seq) FROM events", [], |r| r.get(0)).map_err(db_err)?;
            Ok(seq.map(|s| s.to_string()))
        })
        .await
    }

    fn log_is_commit_order(&self) -> bool {
        true
    }

    async fn prune(&self, rule: &EventPrune) -> StoreResult<u64> {
        // Positions here are sequence numbers; the least one is the furthest any webhook is behind.
        let owed: Option<i64> = rule.owed_after.iter().filter_map(|p| p.parse::<i64>().ok()).min();
        let (before, owed_before, kind) = (fmt_ts(&rule.before), fmt_ts(&rule.owed_before), rule.kind.clone());
        self.write(move |tx| {
            let n = tx
                .execute(
                    "DELETE FROM events WHERE json_extract(doc, '$.at') < ?1 AND (?2 IS NULL OR kind = ?2)
                       AND (?3 IS NULL OR seq <= ?3 OR json_extract(doc, '$.at') < ?4)",
                    params![before, kind, owed, owed_before],
                )
                .map_err(db_err)?;
            Ok(n as u64)
        })
        .await
    }
}

#[async_trait]
impl AuditLog for SqliteStore {
    async fn record(&self, entry: AuditEntry) -> StoreResult<()> {
        self.write(move |tx| {
            let doc = serde_json::to_string(&entry).map_err(json_err)?;
            tx.execute("INSERT INTO audit (id, doc) VALUES (?1, ?2)", params![entry.id, doc]).map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn list(&self, subject: Option<&str>, limit: usize) -> StoreResult<Listing<AuditEntry>> {
        let subject = subject.map(String::from);
        self.read(move |c| {
            let rows = match subject {
                Some(s) => fetch_pairs(c, &format!("SELECT id, doc FROM audit WHERE subject = ?1 ORDER BY seq DESC LIMIT {limit}"), [s])?,
                None => fetch_pairs(c, &format!("SELECT id, doc FROM audit ORDER BY seq DESC LIMIT {limit}"), [])?,
            };
            Ok(listing("audit", rows))
        })
        .await
    }
}

#[async_trait]
impl Agents for SqliteStore {
    async fn upsert(&self, config: AgentConfig, author: &str, now: Timestamp) -> StoreResult<Agent> {
        let author = author.to_string();
        self.write(move |tx| {
            let existing: Option<String> =
                tx.query_row("SELECT doc FROM agent_state WHERE id = ?1", [&config.name], |r| r.get(0)).optional().map_err(db_err)?;
            let existing = existing.map(|doc| parse_doc::<Agent>("agent_state", &config.name, &doc).map_err(malformed)).transpose()?;
            let (agent, rev) = match apply_config(existing, config, &author, now) {
                ConfigChange::Unchanged(a) => return Ok(a),
                ConfigChange::Changed(a, r) => (a, r),
            };
            tx.execute(
                "INSERT INTO agent_revisions (id, doc) VALUES (?1, ?2)",
                params![format!("{}:{}", rev.agent, rev.revision), serde_json::to_string(&rev).map_err(json_err)?],
            )
            .map_err(db_err)?;
            // Edit in place so fields other programs keep on the agent survive.
            let mut v: serde_json::Value = match tx
                .query_row("SELECT doc FROM agent_state WHERE id = ?1", [&agent.id], |r| r.get::<_, String>(0))
                .optional()
                .map_err(db_err)?
            {
                Some(d) => serde_json::from_str(&d).map_err(json_err)?,
                None => serde_json::json!({}),
            };
            if let (Some(o), serde_json::Value::Object(new)) = (v.as_object_mut(), serde_json::to_value(&agent).map_err(json_err)?) {
                o.extend(new);
            }
            tx.execute("INSERT OR REPLACE INTO agent_state (id, doc) VALUES (?1, ?2)", params![agent.id, v.to_string()]).map_err(db_err)?;
            Ok(agent)
        })
        .await
    }

    async fn get(&self, name: &str) -> StoreResult<Agent> {
        let name = name.to_string();
        self.read(move |c| {
            let doc: String = c
                .query_row("SELECT doc FROM agent_state WHERE id = ?1", [&name], |r| r.get(0))
                .optional()
                .map_err(db_err)?
                .ok_or_else(|| StoreError::not_found(format!("agent {name}")))?;
            parse_doc("agent_state", &name, &doc).map_err(malformed)
        })
        .await
    }

    async fn list(&self) -> StoreResult<Listing<Agent>> {
        self.read(|c| Ok(listing("agent_state", fetch_pairs(c, "SELECT id, doc FROM agent_state ORDER BY id", [])?))).await
    }

    async fn heartbeat(&self, name: &str, status: AgentStatus, current_task: Option<&str>, now: Timestamp) -> StoreResult<()> {
        let (name, task) = (name.to_string(), current_task.map(String::from));
        self.write(move |tx| {
            let n = tx
                .execute(
                    "UPDATE agent_state SET doc = json_set(doc, '$.status', ?2, '$.current_task', ?3, '$.heartbeat_at', ?4) WHERE id = ?1",
                    params![name, status.as_str(), task, fmt_ts(&now)],
                )
                .map_err(db_err)?;
            if n == 0 {
                return Err(StoreError::not_found(format!("agent {name}")));
            }
            Ok(())
        })
        .await
    }

    async fn revisions(&self, name: &str) -> StoreResult<Vec<AgentRevision>> {
        let name = name.to_string();
        self.read(move |c| {
            let rows = fetch_pairs(c, "SELECT id, doc FROM agent_revisions WHERE agent = ?1 ORDER BY revision DESC", [name])?;
            Ok(listing("agent_revisions", rows).items)
        })
        .await
    }
}

#[async_trait]
impl Approvals for SqliteStore {
    async fn request(&self, req: NewApproval, now: Timestamp) -> StoreResult<Approval> {
        if req.summary.len() > 64 * 1024 {
            return Err(StoreError::Invalid(format!("approval summary is {} bytes; the limit is 65536", req.summary.len())));
        }
        self.write(move |tx| {
            let a = req.into_approval(new_id(), now);
            tx.execute("INSERT INTO approvals (id, doc) VALUES (?1, ?2)", params![a.id, serde_json::to_string(&a).map_err(json_err)?])
                .map_err(db_err)?;
            Ok(a)
        })
        .await
    }

    async fn get(&self, id: &str) -> StoreResult<Approval> {
        let id = id.to_string();
        self.read(move |c| {
            let doc: String = c
                .query_row("SELECT doc FROM approvals WHERE id = ?1", [&id], |r| r.get(0))
                .optional()
                .map_err(db_err)?
                .ok_or_else(|| StoreError::not_found(format!("approval {id}")))?;
            parse_doc("approvals", &id, &doc).map_err(malformed)
        })
        .await
    }

    async fn list(&self, status: Option<ApprovalStatus>, limit: usize) -> StoreResult<Listing<Approval>> {
        self.read(move |c| {
            let rows = match status {
                Some(s) => fetch_pairs(
                    c,
                    &format!("SELECT id, doc FROM approvals WHERE status = ?1 ORDER BY created_at DESC LIMIT {limit}"),
                    [s.as_str()],
                )?,
                None => fetch_pairs(c, &format!("SELECT id, doc FROM approvals ORDER BY created_at DESC LIMIT {limit}"), [])?,
            };
            Ok(listing("approvals", rows))
        })
        .await
    }

    async fn for_task(&self, task_id: &str) -> StoreResult<Vec<Approval>> {
        let task_id = task_id.to_string();
        self.read(move |c| {
            let rows = fetch_pairs(c, "SELECT id, doc FROM approvals WHERE task_id = ?1 ORDER BY created_at DESC", [task_id])?;
            Ok(listing("approvals", rows).items)
        })
        .await
    }

    async fn decide(&self, id: &str, decision: Decision, who: &str, reason: Option<&str>, now: Timestamp) -> StoreResult<Approval> {
        let (id, who, reason) = (id.to_string(), who.to_string(), reason.map(String::from));
        self.write(move |tx| {
            let doc: String = tx
                .query_row("SELECT doc FROM approvals WHERE id = ?1", [&id], |r| r.get(0))
                .optional()
                .map_err(db_err)?
                .ok_or_else(|| StoreError::not_found(format!("approval {id}")))?;
            let mut a: Approval = parse_doc("approvals", &id, &doc).map_err(malformed)?;
            if a.status != ApprovalStatus::Pending {
                return Err(StoreError::Conflict(format!("approval {id} was already {}", a.status.as_str())));
            }
            if a.expires_at.is_some_and(|e| e <= now) {
                return Err(StoreError::Conflict(format!("approval {id} expired at {}", fmt_ts(&a.expires_at.unwrap_or(now)))));
            }
            a.status = decision.status();
            a.decided_by = Some(who);
            a.decided_at = Some(now);
            a.reason = reason;
            tx.execute(
                "UPDATE approvals SET doc = json_set(doc, '$.status', ?2, '$.decided_by', ?3, '$.decided_at', ?4, '$.reason', ?5) WHERE id = ?1",
                params![id, a.status.as_str(), a.decided_by, fmt_ts(&now), a.reason],
            )
            .map_err(db_err)?;
            Ok(a)
        })
        .await
    }

    async fn expire_due(&self, now: Timestamp) -> StoreResult<Vec<Approval>> {
        self.write(move |tx| {
            let now_s = fmt_ts(&now);
            let rows = fetch_pairs(
                tx,
                "SELECT id, doc FROM approvals WHERE status = 'pending' AND expires_at IS NOT NULL AND expires_at <= ?1",
                [&now_s],
            )?;
            let mut out = listing::<Approval>("approvals", rows).items;
            for a in &mut out {
                tx.execute("UPDATE approvals SET doc = json_set(doc, '$.status', 'expired') WHERE id = ?1", [&a.id]).map_err(db_err)?;
                a.status = ApprovalStatus::Expired;
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl Metrics for SqliteStore {
    async fn record(&self, samples: &[MetricSample]) -> StoreResult<()> {
        let samples = samples.to_vec();
        self.write(move |tx| {
            let mut st = tx.prepare_cached("INSERT INTO metrics (ts, host, metric, value) VALUES (?1, ?2, ?3, ?4)").map_err(db_err)?;
            for s in &samples {
                if !s.value.is_finite() {
                    return Err(StoreError::Invalid(format!("metric {} on {} is not a finite number", s.source.metric, s.source.host)));
                }
                st.execute(params![fmt_ts(&s.timestamp), s.source.host, s.source.metric, s.value]).map_err(db_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn query(&self, host: Option<&str>, metric: &str, since: Timestamp, until: Timestamp) -> StoreResult<Vec<MetricSample>> {
        let (host, metric) = (host.map(String::from), metric.to_string());
        self.read(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT ts, host, metric, value FROM metrics WHERE metric = ?1 AND ts >= ?2 AND ts < ?3 AND (?4 IS NULL OR host = ?4) ORDER BY ts",
                )
                .map_err(db_err)?;
            let rows = st
                .query_map(params![metric, fmt_ts(&since), fmt_ts(&until), host], |r| {
                    let ts: String = r.get(0)?;
                    Ok(MetricSample {
                        timestamp: reef_core::time::parse_ts(&ts).unwrap_or_default(),
                        source: MetricSource { host: r.get(1)?, metric: r.get(2)? },
                        value: r.get(3)?,
                    })
                })
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)
        })
        .await
    }

    async fn prune(&self, before: Timestamp) -> StoreResult<u64> {
        self.write(move |tx| {
            let a = tx.execute("DELETE FROM metrics WHERE ts < ?1", [fmt_ts(&before)]).map_err(db_err)?;
            let b = tx.execute("DELETE FROM llm_calls WHERE at < ?1", [fmt_ts(&before)]).map_err(db_err)?;
            Ok((a + b) as u64)
        })
        .await
    }
}

#[async_trait]
impl Leases for SqliteStore {
    async fn acquire(&self, name: &str, holder: &str, ttl: Duration, now: Timestamp) -> StoreResult<bool> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.write(move |tx| {
            let exp = fmt_ts(&(now + chrono::Duration::from_std(ttl).unwrap_or_default()));
            let n = tx
                .execute(
                    "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                     WHERE leases.holder = excluded.holder OR leases.expires_at < ?4",
                    params![name, holder, exp, fmt_ts(&now)],
                )
                .map_err(db_err)?;
            Ok(n == 1)
        })
        .await
    }

    async fn release(&self, name: &str, holder: &str) -> StoreResult<()> {
        let (name, holder) = (name.to_string(), holder.to_string());
        self.write(move |tx| {
            tx.execute("DELETE FROM leases WHERE name = ?1 AND holder = ?2", params![name, holder]).map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn holder(&self, name: &str, now: Timestamp) -> StoreResult<Option<String>> {
        let name = name.to_string();
        self.read(move |c| {
            c.query_row("SELECT holder FROM leases WHERE name = ?1 AND expires_at >= ?2", params![name, fmt_ts(&now)], |r| r.get(0))
                .optional()
                .map_err(db_err)
        })
        .await
    }
}

#[async_trait]
impl Settings for SqliteStore {
    async fn get(&self, key: &str) -> StoreResult<Option<serde_json::Value>> {
        let key = key.to_string();
        self.read(move |c| {
            let doc: Option<String> =
                c.query_row("SELECT doc FROM settings WHERE id = ?1", [&key], |r| r.get(0)).optional().map_err(db_err)?;
            Ok(doc.and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok()).map(|v| v["value"].clone()))
        })
        .await
    }

    async fn put(&self, key: &str, value: serde_json::Value) -> StoreResult<()> {
        let key = key.to_string();
        self.write(move |tx| {
            tx.execute(
                "INSERT OR REPLACE INTO settings (id, doc) VALUES (?1, ?2)",
                params![key, serde_json::json!({"value": value}).to_string()],
            )
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn put_if_absent(&self, key: &str, value: serde_json::Value) -> StoreResult<bool> {
        let key = key.to_string();
        self.write(move |tx| {
            let n = tx
                .execute(
                    "INSERT OR IGNORE INTO settings (id, doc) VALUES (?1, ?2)",
                    params![key, serde_json::json!({"value": value}).to_string()],
                )
                .map_err(db_err)?;
            Ok(n == 1)
        })
        .await
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        let key = key.to_string();
        self.write(move |tx| {
            tx.execute("DELETE FROM settings WHERE id = ?1", [key]).map_err(db_err)?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reef_core::time::parse_ts;

    #[tokio::test]
    async fn pruning_keeps_what_a_webhook_still_owes_but_not_past_the_ceiling() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db")).unwrap();
        let at = parse_ts("2026-11-01T00:00:00.000Z").unwrap();
        for d in 0..10 {
            let e = Event {
                id: format!("e{d}"),
                kind: "task.created".into(),
                at,
                actor: "t".into(),
                subject: None,
                data: serde_json::json!({}),
            };
            s.append(e).await.unwrap();
        }
        let left = |s: &SqliteStore| {
            let s = s.clone();
            async move { s.recent(&EventQuery { limit: 100, ..Default::default() }).await.unwrap().items.len() }
        };
        // A subscription has been sent up to seq 6: 7-10 are owed.
        Settings::put(&s, "webhook.state:ops", serde_json::json!({"position": "6"})).await.unwrap();
        s.write(move |tx| prune_events(tx, 100, 0)).await.unwrap();
        assert_eq!(left(&s).await, 4, "seq 7-10 kept for the webhook");
        // The ceiling wins over what is owed.
        s.write(move |tx| prune_events(tx, 100, 8)).await.unwrap();
        assert_eq!(left(&s).await, 2, "the ceiling drops 7 and 8 too");
        // No webhooks: the count alone decides.
        Settings::delete(&s, "webhook.state:ops").await.unwrap();
        s.write(move |tx| prune_events(tx, 100, 0)).await.unwrap();
        assert_eq!(left(&s).await, 0);
    }
}
