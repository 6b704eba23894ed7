//! Events, audit log, agents, approvals, metrics, named leases and settings on MongoDB.

use super::convert::{date, doc_of, doc_to_json, id_filter, to_bson};
use super::ports::*;
use super::queries as q;
use super::{is_duplicate_key, mongo_err, MongoStore};
use async_trait::async_trait;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::ReturnDocument;
use reef_core::collections as c;
use reef_core::*;
use std::time::Duration;

#[async_trait]
impl EventLog for MongoStore {
    async fn append(&self, event: Event) -> StoreResult<()> {
        match self.coll(c::EVENTS).insert_one(doc_of(&event)?).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate_key(&e) => Ok(()),
            Err(e) => Err(mongo_err(e)),
        }
    }

    async fn recent(&self, query: &EventQuery) -> StoreResult<Listing<Event>> {
        let mut f = Document::new();
        if let Some(p) = &query.kind_prefix {
            f.insert("type", doc! {"$regex": format!("^{}", q::regex_escape(p))});
        }
        if let Some(s) = &query.subject {
            f.insert("subject", s);
        }
        if let Some(t) = &query.text {
            let r = doc! {"$regex": q::regex_escape(t), "$options": "i"};
            f.insert(
                "$or",
                vec![
                    doc! {"_id": r.clone()},
                    doc! {"type": r.clone()},
                    doc! {"actor": r.clone()},
                    doc! {"subject": r.clone()},
                    doc! {"data.note": r},
                ],
            );
        }
        if let Some(t) = &query.since {
            f.insert("at", doc! {"$gte": date(t)});
        }
        let dir = if query.oldest_first { 1 } else { -1 };
        let docs = self.find_all(c::EVENTS, f, Some(doc! {"at": dir, "_id": dir}), Some(query.limit.max(1) as i64)).await?;
        Ok(listing(c::EVENTS, docs))
    }

    async fn log(&self, after: Option<&str>, since: Option<Timestamp>, limit: usize) -> StoreResult<Vec<(String, Event)>> {
        // Ordered by (at, _id): the writers' clocks, not commit order (see log_is_commit_order).
        let f = match (after, since) {
            (Some(a), _) => {
                let (ms, id) =
                    parse_position(a).ok_or_else(|| StoreError::Invalid(format!("{a:?} is not a position in this store's event log")))?;
                let at = mongodb::bson::DateTime::from_millis(ms);
                doc! {"$or": [{"at": {"$gt": at}}, {"at": at, "_id": {"$gt": id}}]}
            }
            (None, Some(t)) => doc! {"at": {"$gte": date(&t)}},
            (None, None) => doc! {},
        };
        let docs = self.find_all(c::EVENTS, f, Some(doc! {"at": 1, "_id": 1}), Some(limit.max(1) as i64)).await?;
        let mut out = vec![];
        for d in docs {
            match parse_one::<Event>(c::EVENTS, &d) {
                Ok(e) => out.push((position(&d), e)),
                Err(err) => tracing::warn!(error = %err, "event log: passing over a document REEF cannot read"),
            }
        }
        Ok(out)
    }

    async fn log_tail(&self) -> StoreResult<Option<String>> {
        let docs = self.find_all(c::EVENTS, doc! {}, Some(doc! {"at": -1, "_id": -1}), Some(1)).await?;
        Ok(docs.first().map(position))
    }

    fn log_is_commit_order(&self) -> bool {
        false
    }

    async fn prune(&self, rule: &EventPrune) -> StoreResult<u64> {
        let mut f = doc! {"at": {"$lt": date(&rule.before)}};
        if let Some(k) = &rule.kind {
            f.insert("type", k);
        }
        // The least position is the furthest any webhook is behind; what is after it stays.
        if let Some((ms, id)) = rule.owed_after.iter().filter_map(|p| parse_position(p)).min() {
            let at = mongodb::bson::DateTime::from_millis(ms);
            f.insert(
                "$or",
                vec![doc! {"at": {"$lt": at}}, doc! {"at": at, "_id": {"$lte": id}}, doc! {"at": {"$lt": date(&rule.owed_before)}}],
            );
        }
        match self.coll(c::EVENTS).delete_many(f).await {
            Ok(r) => Ok(r.deleted_count),
            // A database made by an older REEF holds events in a capped collection, which takes
            // no deletes: its size is its bound (and it may drop what a webhook still owes).
            Err(e) if e.to_string().contains("capped") => Err(StoreError::Invalid(
                "events is a capped collection (made by an older REEF): its size bounds it, and retention cannot keep what webhooks owe; see docs/mongodb.md".into(),
            )),
            Err(e) => Err(mongo_err(e)),
        }
    }
}

/// A position `log` handed out (`<ms>|<_id>`), back to its parts.
fn parse_position(p: &str) -> Option<(i64, String)> {
    let (ms, id) = p.split_once('|')?;
    Some((ms.parse().ok()?, id.to_string()))
}

#[async_trait]
impl AuditLog for MongoStore {
    async fn record(&self, entry: AuditEntry) -> StoreResult<()> {
        self.coll(c::AUDIT).insert_one(doc_of(&entry)?).await.map_err(mongo_err)?;
        Ok(())
    }

    async fn list(&self, subject: Option<&str>, limit: usize) -> StoreResult<Listing<AuditEntry>> {
        let f = subject.map(|s| doc! {"subject": s}).unwrap_or_default();
        Ok(listing(c::AUDIT, self.find_all(c::AUDIT, f, Some(doc! {"at": -1, "_id": -1}), Some(limit as i64)).await?))
    }
}

#[async_trait]
impl Agents for MongoStore {
    async fn upsert(&self, config: AgentConfig, author: &str, now: Timestamp) -> StoreResult<Agent> {
        let existing = self.coll(c::AGENT_STATE).find_one(doc! {"_id": &config.name}).await.map_err(mongo_err)?;
        let existing = existing.map(|d| parse_one::<Agent>(c::AGENT_STATE, &d)).transpose()?;
        let (agent, rev) = match apply_config(existing, config, author, now) {
            ConfigChange::Unchanged(a) => return Ok(a),
            ConfigChange::Changed(a, r) => (a, r),
        };
        let mut rd = doc_of(&rev)?;
        rd.insert("_id", format!("{}:{}", rev.agent, rev.revision));
        // The revision's unique _id makes two concurrent edits of one agent conflict, not merge.
        self.coll(c::AGENT_REVISIONS).insert_one(rd).await.map_err(|e| {
            if is_duplicate_key(&e) {
                StoreError::Conflict(format!("agent {} was changed concurrently; retry", agent.id))
            } else {
                mongo_err(e)
            }
        })?;
        let mut set = doc_of(&agent)?;
        set.remove("_id");
        self.coll(c::AGENT_STATE).update_one(doc! {"_id": &agent.id}, doc! {"$set": set}).upsert(true).await.map_err(mongo_err)?;
        Ok(agent)
    }

    async fn get(&self, name: &str) -> StoreResult<Agent> {
        parse_one(c::AGENT_STATE, &self.get_doc(c::AGENT_STATE, name, "agent").await?)
    }

    async fn list(&self) -> StoreResult<Listing<Agent>> {
        Ok(listing(c::AGENT_STATE, self.find_all(c::AGENT_STATE, doc! {}, Some(doc! {"_id": 1}), None).await?))
    }

    async fn heartbeat(&self, name: &str, status: AgentStatus, current_task: Option<&str>, now: Timestamp) -> StoreResult<()> {
        let r = self
            .coll(c::AGENT_STATE)
            .update_one(
                doc! {"_id": name},
                doc! {"$set": {"status": status.as_str(), "current_task": current_task, "heartbeat_at": date(&now)}},
            )
            .await
            .map_err(mongo_err)?;
        if r.matched_count == 0 {
            return Err(StoreError::not_found(format!("agent {name}")));
        }
        Ok(())
    }

    async fn revisions(&self, name: &str) -> StoreResult<Vec<AgentRevision>> {
        Ok(listing(c::AGENT_REVISIONS, self.find_all(c::AGENT_REVISIONS, doc! {"agent": name}, Some(doc! {"revision": -1}), None).await?)
            .items)
    }
}

#[async_trait]
impl Approvals for MongoStore {
    async fn request(&self, req: NewApproval, now: Timestamp) -> StoreResult<Approval> {
        if req.summary.len() > 64 * 1024 {
            return Err(StoreError::Invalid(format!("approval summary is {} bytes; the limit is 65536", req.summary.len())));
        }
        let a = req.into_approval(new_id(), now);
        self.coll(c::APPROVALS).insert_one(doc_of(&a)?).await.map_err(mongo_err)?;
        Ok(a)
    }

    async fn get(&self, id: &str) -> StoreResult<Approval> {
        parse_one(c::APPROVALS, &self.get_doc(c::APPROVALS, id, "approval").await?)
    }

    async fn list(&self, status: Option<ApprovalStatus>, limit: usize) -> StoreResult<Listing<Approval>> {
        let f = status.map(|s| doc! {"status": s.as_str()}).unwrap_or_default();
        Ok(listing(c::APPROVALS, self.find_all(c::APPROVALS, f, Some(doc! {"created_at": -1}), Some(limit as i64)).await?))
    }

    async fn for_task(&self, task_id: &str) -> StoreResult<Vec<Approval>> {
        Ok(listing(c::APPROVALS, self.find_all(c::APPROVALS, doc! {"task_id": task_id}, Some(doc! {"created_at": -1}), None).await?).items)
    }

    async fn decide(&self, id: &str, decision: Decision, who: &str, reason: Option<&str>, now: Timestamp) -> StoreResult<Approval> {
        let mut f = id_filter(id);
        f.insert("status", "pending");
        f.insert("$or", vec![doc! {"expires_at": null}, doc! {"expires_at": {"$gt": date(&now)}}]);
        let u = doc! {"$set": {"status": decision.status().as_str(), "decided_by": who, "decided_at": date(&now), "reason": reason}};
        match self.coll(c::APPROVALS).find_one_and_update(f, u).return_document(ReturnDocument::After).await.map_err(mongo_err)? {
            Some(d) => parse_one(c::APPROVALS, &d),
            None => {
                let a: Approval = parse_one(c::APPROVALS, &self.get_doc(c::APPROVALS, id, "approval").await?)?;
                if a.status != ApprovalStatus::Pending {
                    Err(StoreError::Conflict(format!("approval {id} was already {}", a.status.as_str())))
                } else {
                    Err(StoreError::Conflict(format!("approval {id} has expired")))
                }
            }
        }
    }

    async fn expire_due(&self, now: Timestamp) -> StoreResult<Vec<Approval>> {
        let due =
            self.find_all(c::APPROVALS, doc! {"status": "pending", "expires_at": {"$ne": null, "$lte": date(&now)}}, None, None).await?;
        let mut out = vec![];
        for d in due {
            let id = d.get("_id").cloned().unwrap_or(Bson::Null);
            let r = self
                .coll(c::APPROVALS)
                .update_one(doc! {"_id": id, "status": "pending"}, doc! {"$set": {"status": "expired"}})
                .await
                .map_err(mongo_err)?;
            if r.modified_count == 1 {
                if let Ok(mut a) = parse_one::<Approval>(c::APPROVALS, &d) {
                    a.status = ApprovalStatus::Expired;
                    out.push(a);
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Metrics for MongoStore {
    async fn record(&self, samples: &[MetricSample]) -> StoreResult<()> {
        if samples.is_empty() {
            return Ok(());
        }
        let mut docs = vec![];
        for s in samples {
            if !s.value.is_finite() {
                return Err(StoreError::Invalid(format!("metric {} on {} is not a finite number", s.source.metric, s.source.host)));
            }
            docs.push(doc_of(s)?);
        }
        self.coll(c::METRICS).insert_many(docs).await.map_err(mongo_err)?;
        Ok(())
    }

    async fn query(&self, host: Option<&str>, metric: &str, since: Timestamp, until: Timestamp) -> StoreResult<Vec<MetricSample>> {
        let mut f = doc! {"source.metric": metric, "timestamp": {"$gte": date(&since), "$lt": date(&until)}};
        if let Some(h) = host {
            f.insert("source.host", h);
        }
        Ok(listing(c::METRICS, self.find_all(c::METRICS, f, Some(doc! {"timestamp": 1}), None).await?).items)
    }

    async fn prune(&self, before: Timestamp) -> StoreResult<u64> {
        // Time-series collections and TTL indexes expire old samples on the server; this only
        // catches what a changed retention left behind.
        let a = self.coll(c::METRICS).delete_many(doc! {"timestamp": {"$lt": date(&before)}}).await.map_err(mongo_err)?.deleted_count;
        let b = self.coll(c::LLM_CALLS).delete_many(doc! {"at": {"$lt": date(&before)}}).await.map_err(mongo_err)?.deleted_count;
        Ok(a + b)
    }
}

#[async_trait]
impl Leases for MongoStore {
    async fn acquire(&self, name: &str, holder: &str, lease_ttl: Duration, now: Timestamp) -> StoreResult<bool> {
        let f = doc! {"_id": name, "$or": [{"holder": holder}, {"expires_at": {"$lt": date(&now)}}]};
        let u = doc! {"$set": {"holder": holder, "expires_at": date(&ttl(&now, lease_ttl))}};
        match self.coll(c::LEASES).update_one(f, u).upsert(true).await {
            Ok(_) => Ok(true),
            // The lease exists and is held by someone else: the upsert's insert collides.
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(mongo_err(e)),
        }
    }

    async fn release(&self, name: &str, holder: &str) -> StoreResult<()> {
        self.coll(c::LEASES).delete_one(doc! {"_id": name, "holder": holder}).await.map_err(mongo_err)?;
        Ok(())
    }

    async fn holder(&self, name: &str, now: Timestamp) -> StoreResult<Option<String>> {
        let d = self.coll(c::LEASES).find_one(doc! {"_id": name, "expires_at": {"$gte": date(&now)}}).await.map_err(mongo_err)?;
        Ok(d.and_then(|d| d.get_str("holder").ok().map(String::from)))
    }
}

#[async_trait]
impl Settings for MongoStore {
    async fn get(&self, key: &str) -> StoreResult<Option<serde_json::Value>> {
        let d = self.coll(c::SETTINGS).find_one(doc! {"_id": key}).await.map_err(mongo_err)?;
        Ok(d.map(|d| doc_to_json(&d)["value"].clone()))
    }

    async fn put(&self, key: &str, value: serde_json::Value) -> StoreResult<()> {
        self.coll(c::SETTINGS)
            .update_one(doc! {"_id": key}, doc! {"$set": {"value": to_bson(&value)}})
            .upsert(true)
            .await
            .map_err(mongo_err)?;
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, value: serde_json::Value) -> StoreResult<bool> {
        match self.coll(c::SETTINGS).insert_one(doc! {"_id": key, "value": to_bson(&value)}).await {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(mongo_err(e)),
        }
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.coll(c::SETTINGS).delete_one(doc! {"_id": key}).await.map_err(mongo_err)?;
        Ok(())
    }
}

/// An event document's place in the log: its time in milliseconds and its id.
fn position(d: &Document) -> String {
    let ms = d.get_datetime("at").map(|t| t.timestamp_millis()).unwrap_or(0);
    let id = match d.get("_id") {
        Some(Bson::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    format!("{ms}|{id}")
}
