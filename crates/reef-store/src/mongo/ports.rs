//! reef-core's ports on MongoDB.

use super::convert::{date, doc_of, doc_to_json, id_filter, id_string, to_bson};
use super::queries as q;
use super::{is_duplicate_key, mongo_err, MongoStore};
use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::ReturnDocument;
use mongodb::ClientSession;
use reef_core::collections as c;
use reef_core::*;
use std::time::Duration;

fn parse<T: serde::de::DeserializeOwned>(collection: &str, d: &Document) -> Result<T, Malformed> {
    let v = doc_to_json(d);
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        Malformed {
            collection: collection.into(),
            id: id_string(d),
            reason: if path == "." { inner.to_string() } else { format!("field `{path}`: {inner}") },
        }
    })
}

fn parse_one<T: serde::de::DeserializeOwned>(collection: &str, d: &Document) -> StoreResult<T> {
    parse(collection, d).map_err(|m| StoreError::Malformed { collection: m.collection, id: m.id, reason: m.reason })
}

pub(crate) fn listing<T: serde::de::DeserializeOwned>(collection: &str, docs: Vec<Document>) -> Listing<T> {
    let mut out = Listing { items: Vec::with_capacity(docs.len()), malformed: vec![] };
    for d in &docs {
        match parse(collection, d) {
            Ok(t) => out.items.push(t),
            Err(m) => {
                tracing::warn!(collection, id = %m.id, reason = %m.reason, "skipping a document REEF cannot read; it is left as it is");
                out.malformed.push(m)
            }
        }
    }
    out
}

fn ttl(now: &Timestamp, d: Duration) -> Timestamp {
    *now + chrono::Duration::from_std(d).unwrap_or_default()
}

impl MongoStore {
    async fn find_all(&self, coll: &str, filter: Document, sort: Option<Document>, limit: Option<i64>) -> StoreResult<Vec<Document>> {
        let c = self.coll(coll);
        let mut f = c.find(filter);
        if let Some(s) = sort {
            f = f.sort(s);
        }
        if let Some(l) = limit {
            f = f.limit(l);
        }
        f.await.map_err(mongo_err)?.try_collect().await.map_err(mongo_err)
    }

    async fn get_doc(&self, coll: &str, id: &str, what: &str) -> StoreResult<Document> {
        self.coll(coll).find_one(id_filter(id)).await.map_err(mongo_err)?.ok_or_else(|| StoreError::not_found(format!("{what} {id}")))
    }

    /// A fenced task update: applies `update` only under the caller's lease token.
    async fn fenced_update(&self, id: &str, token: &str, update: Document) -> StoreResult<Task> {
        let after = self
            .coll(c::TASKS)
            .find_one_and_update(q::fenced(id_filter(id), token), update)
            .return_document(ReturnDocument::After)
            .await
            .map_err(mongo_err)?;
        match after {
            Some(d) => parse_one(c::TASKS, &d),
            None => {
                self.get_doc(c::TASKS, id, "task").await?;
                Err(StoreError::LeaseLost { task_id: id.into() })
            }
        }
    }

    async fn task_update(&self, id: &str, filter_extra: Document, update: Document) -> StoreResult<Option<Task>> {
        let mut f = id_filter(id);
        f.extend(filter_extra);
        let after = self.coll(c::TASKS).find_one_and_update(f, update).return_document(ReturnDocument::After).await.map_err(mongo_err)?;
        after.map(|d| parse_one(c::TASKS, &d)).transpose()
    }

    async fn start_txn(&self) -> StoreResult<Option<ClientSession>> {
        if !self.caps.replica_set {
            return Ok(None);
        }
        let mut s = self.client.start_session().await.map_err(mongo_err)?;
        s.start_transaction().await.map_err(mongo_err)?;
        Ok(Some(s))
    }
}

#[async_trait]
impl TaskQueue for MongoStore {
    async fn create(&self, task: NewTask, now: Timestamp) -> StoreResult<(Task, bool)> {
        task.validate().map_err(StoreError::Invalid)?;
        let key = task.idempotency_key.clone();
        let t = task.into_task(new_id(), now);
        match self.coll(c::TASKS).insert_one(doc_of(&t)?).await {
            Ok(_) => Ok((t, true)),
            Err(e) if is_duplicate_key(&e) && key.is_some() => {
                let d = self.coll(c::TASKS).find_one(doc! {"idempotency_key": key}).await.map_err(mongo_err)?;
                let d = d.ok_or_else(|| StoreError::Conflict("idempotency key taken but its task vanished".into()))?;
                Ok((parse_one(c::TASKS, &d)?, false))
            }
            Err(e) => Err(mongo_err(e)),
        }
    }

    async fn get(&self, id: &str) -> StoreResult<Task> {
        parse_one(c::TASKS, &self.get_doc(c::TASKS, id, "task").await?)
    }

    async fn list(&self, query: &TaskQuery) -> StoreResult<Listing<Task>> {
        let mut f = Document::new();
        if let Some(st) = &query.status {
            f.insert("status", doc! {"$in": st.iter().map(|s| s.as_str()).collect::<Vec<_>>()});
        }
        if let Some(a) = &query.assigned_to {
            f.insert("assigned_to", a);
        }
        if let Some(p) = &query.product {
            f.insert("product", p);
        }
        if let Some(p) = &query.parent_id {
            f.insert("parent_id", p);
        }
        let docs = self.find_all(c::TASKS, f, Some(q::claim_sort()), query.limit.map(|l| l as i64)).await?;
        Ok(listing(c::TASKS, docs))
    }

    async fn counts(&self) -> StoreResult<Vec<(TaskStatus, u64)>> {
        let mut cur =
            self.coll(c::TASKS).aggregate(vec![doc! {"$group": {"_id": "$status", "n": {"$sum": 1}}}]).await.map_err(mongo_err)?;
        let mut out = vec![];
        while let Some(d) = cur.try_next().await.map_err(mongo_err)? {
            if let (Ok(s), Some(n)) = (
                d.get_str("_id").unwrap_or("").parse::<TaskStatus>(),
                d.get("n").and_then(Bson::as_i64).or_else(|| d.get_i32("n").ok().map(i64::from)),
            ) {
                out.push((s, n as u64));
            }
        }
        out.sort();
        Ok(out)
    }

    async fn claim(&self, worker: &str, filter: &ClaimFilter, lease_ttl: Duration, now: Timestamp) -> StoreResult<Option<Task>> {
        loop {
            let lease = Lease { holder: worker.into(), token: new_id(), expires_at: ttl(&now, lease_ttl) };
            // Return the document as it was, so that one REEF cannot read can be put back exactly.
            let before = self
                .coll(c::TASKS)
                .find_one_and_update(q::claim_filter(filter, &now), q::claim_update(&lease, &now))
                .sort(q::claim_sort())
                .return_document(ReturnDocument::Before)
                .await
                .map_err(mongo_err)?;
            let Some(before) = before else { return Ok(None) };
            match parse::<Task>(c::TASKS, &before) {
                Ok(mut t) => {
                    t.status = TaskStatus::Claimed;
                    t.attempts += 1;
                    t.lease = Some(lease);
                    t.claimed_at = Some(now);
                    t.updated_at = Some(now);
                    return Ok(Some(t));
                }
                Err(m) => {
                    tracing::warn!(task = %m.id, reason = %m.reason, "task REEF cannot read; restored, marked reef_malformed and skipped");
                    // Only while our claim still stands: the lease token is this claim's own.
                    let f = doc! {"_id": before.get("_id").cloned().unwrap_or(Bson::Null), "lease.token": &lease.token};
                    self.coll(c::TASKS).update_one(f, q::unclaim_malformed(&before, &m.reason, &now)).await.map_err(mongo_err)?;
                }
            }
        }
    }

    async fn start(&self, id: &str, token: &str, now: Timestamp) -> StoreResult<Task> {
        self.fenced_update(id, token, doc! {"$set": {"status": "running", "updated_at": date(&now)}}).await
    }

    async fn renew(&self, id: &str, token: &str, lease_ttl: Duration, now: Timestamp) -> StoreResult<Task> {
        self.fenced_update(id, token, doc! {"$set": {"lease.expires_at": date(&ttl(&now, lease_ttl))}}).await
    }

    async fn finish_with(&self, id: &str, token: &str, outcome: Outcome, event: Option<Event>, now: Timestamp) -> StoreResult<Task> {
        let mut set = doc! {"updated_at": date(&now)};
        let mut unset = doc! {"lease": ""};
        match outcome {
            Outcome::Succeeded { result, work_products, review } => {
                set.insert("status", if review { "review" } else { "done" });
                set.insert("result", result);
                unset.insert("error", "");
                if let Ok(Bson::Document(wp)) = mongodb::bson::to_bson(&work_products) {
                    for (k, v) in wp {
                        set.insert(format!("work_products.{k}"), v);
                    }
                }
            }
            Outcome::Retry { error } => {
                set.insert("status", "pending");
                set.insert("error", error);
            }
            Outcome::Failed { error } => {
                set.insert("status", "failed");
                set.insert("error", error);
            }
            Outcome::NeedsHuman { reason } => {
                set.insert("status", "needs_human");
                set.insert("error", reason);
            }
        }
        let update = doc! {"$set": set, "$unset": unset};
        let Some(ev) = event else { return self.fenced_update(id, token, update).await };
        // On a replica set the outcome and its event commit together; a standalone server has
        // no transactions, so the event follows the (fenced) outcome.
        match self.start_txn().await? {
            Some(mut s) => {
                let after = self
                    .coll(c::TASKS)
                    .find_one_and_update(q::fenced(id_filter(id), token), update)
                    .return_document(ReturnDocument::After)
                    .session(&mut s)
                    .await
                    .map_err(mongo_err)?;
                let Some(d) = after else {
                    s.abort_transaction().await.map_err(mongo_err)?;
                    self.get_doc(c::TASKS, id, "task").await?;
                    return Err(StoreError::LeaseLost { task_id: id.into() });
                };
                self.coll(c::EVENTS).insert_one(doc_of(&ev)?).session(&mut s).await.map_err(mongo_err)?;
                s.commit_transaction().await.map_err(mongo_err)?;
                parse_one(c::TASKS, &d)
            }
            None => {
                let t = self.fenced_update(id, token, update).await?;
                EventLog::append(self, ev).await?;
                Ok(t)
            }
        }
    }

    async fn transition(&self, id: &str, from: &[TaskStatus], to: TaskStatus, note: Option<&str>, now: Timestamp) -> StoreResult<Task> {
        let mut set = doc! {"status": to.as_str(), "updated_at": date(&now)};
        if let Some(n) = note {
            set.insert("error", n);
        }
        let from_s: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        match self.task_update(id, doc! {"status": {"$in": &from_s}}, doc! {"$set": set, "$unset": {"lease": ""}}).await? {
            Some(t) => Ok(t),
            None => {
                let cur = self.get_doc(c::TASKS, id, "task").await?;
                Err(StoreError::Conflict(format!("task {id} is {}, not {}", cur.get_str("status").unwrap_or("?"), from_s.join(" or "))))
            }
        }
    }

    async fn assign(&self, id: &str, agent: Option<&str>, now: Timestamp) -> StoreResult<Task> {
        self.task_update(id, doc! {}, doc! {"$set": {"assigned_to": agent, "updated_at": date(&now)}})
            .await?
            .ok_or_else(|| StoreError::not_found(format!("task {id}")))
    }

    async fn route(&self, id: &str, agent: &str, tier: ModelTier, now: Timestamp) -> StoreResult<bool> {
        let mut f = id_filter(id);
        f.insert("assigned_to", Bson::Null);
        f.insert("status", "pending");
        let r =
            self.coll(c::TASKS).update_one(f, doc! {"$set": {"assigned_to": agent, "updated_at": date(&now)}}).await.map_err(mongo_err)?;
        if r.modified_count == 1 {
            // Keep a tier someone already chose; otherwise start where routing says.
            let mut g = id_filter(id);
            g.insert("model_tier", doc! {"$in": [Bson::Null]});
            self.coll(c::TASKS).update_one(g, doc! {"$set": {"model_tier": tier.as_str()}}).await.map_err(mongo_err)?;
        }
        Ok(r.modified_count == 1)
    }

    async fn set_tier(&self, id: &str, tier: ModelTier, now: Timestamp) -> StoreResult<()> {
        let r = self
            .coll(c::TASKS)
            .update_one(id_filter(id), doc! {"$set": {"model_tier": tier.as_str(), "updated_at": date(&now)}})
            .await
            .map_err(mongo_err)?;
        if r.matched_count == 0 {
            return Err(StoreError::not_found(format!("task {id}")));
        }
        Ok(())
    }

    async fn comment(&self, id: &str, comment: Comment) -> StoreResult<Task> {
        let cdoc = doc_of(&comment)?;
        self.task_update(id, doc! {}, doc! {"$push": {"comments": cdoc}, "$set": {"updated_at": date(&comment.at)}})
            .await?
            .ok_or_else(|| StoreError::not_found(format!("task {id}")))
    }
}

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
            f.insert("$or", vec![doc! {"type": r.clone()}, doc! {"actor": r.clone()}, doc! {"subject": r.clone()}, doc! {"data.note": r}]);
        }
        if let Some(t) = &query.since {
            f.insert("at", doc! {"$gte": date(t)});
        }
        let dir = if query.oldest_first { 1 } else { -1 };
        let docs = self.find_all(c::EVENTS, f, Some(doc! {"at": dir, "_id": dir}), Some(query.limit.max(1) as i64)).await?;
        Ok(listing(c::EVENTS, docs))
    }
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
impl Ledger for MongoStore {
    async fn reserve(&self, req: ReserveRequest, now: Timestamp) -> StoreResult<Reservation> {
        if req.amount.0 < 0 || req.scopes.is_empty() {
            return Err(StoreError::Invalid("a reservation needs a non-negative amount and at least one scope".into()));
        }
        let mut session = self.start_txn().await?;
        let ledger = self.coll(c::LEDGER);
        let mut done: Vec<&ScopeCap> = vec![];
        let mut refused = None;
        for sc in &req.scopes {
            let init = doc! {"$setOnInsert": {"spent": 0i64, "reserved": 0i64, "overshoot": 0i64}, "$set": {"cap": sc.cap.0, "updated_at": date(&now)}};
            let take = doc! {"$inc": {"reserved": req.amount.0}};
            let f = q::fits_under_cap(&sc.scope.0, req.amount.0, sc.cap.0);
            let matched = match session.as_mut() {
                Some(s) => {
                    ledger.update_one(doc! {"_id": &sc.scope.0}, init).upsert(true).session(&mut *s).await.map_err(mongo_err)?;
                    ledger.update_one(f, take).session(&mut *s).await.map_err(mongo_err)?.matched_count
                }
                None => {
                    ledger.update_one(doc! {"_id": &sc.scope.0}, init).upsert(true).await.map_err(mongo_err)?;
                    ledger.update_one(f, take).await.map_err(mongo_err)?.matched_count
                }
            };
            if matched == 0 {
                refused = Some(sc);
                break;
            }
            done.push(sc);
        }
        if let Some(sc) = refused {
            match session.as_mut() {
                Some(s) => s.abort_transaction().await.map_err(mongo_err)?,
                // No transactions: give back what this reservation took so far.
                None => {
                    for d in done {
                        ledger.update_one(doc! {"_id": &d.scope.0}, doc! {"$inc": {"reserved": -req.amount.0}}).await.map_err(mongo_err)?;
                    }
                }
            }
            let cur = ledger.find_one(doc! {"_id": &sc.scope.0}).await.map_err(mongo_err)?.unwrap_or_default();
            let num = |k: &str| cur.get(k).and_then(Bson::as_i64).or_else(|| cur.get_i32(k).ok().map(i64::from)).unwrap_or(0);
            return Err(StoreError::BudgetRefused {
                scope: sc.scope.0.clone(),
                cap: sc.cap,
                spent: Usd(num("spent")),
                reserved: Usd(num("reserved")),
                requested: req.amount,
            });
        }
        let r = req.to_reservation(now);
        let rd = doc_of(&r)?;
        match session.as_mut() {
            Some(s) => {
                self.coll(c::RESERVATIONS).insert_one(rd).session(&mut *s).await.map_err(mongo_err)?;
                s.commit_transaction().await.map_err(mongo_err)?;
            }
            None => {
                self.coll(c::RESERVATIONS).insert_one(rd).await.map_err(mongo_err)?;
            }
        }
        Ok(r)
    }

    async fn settle(&self, id: &str, actual: Usd, now: Timestamp) -> StoreResult<Reservation> {
        close_reservation(self, id, Some(actual.max(Usd::ZERO)), ReservationState::Settled, now).await
    }

    async fn release(&self, id: &str, now: Timestamp) -> StoreResult<Reservation> {
        close_reservation(self, id, None, ReservationState::Released, now).await
    }

    async fn expire(&self, now: Timestamp) -> StoreResult<u64> {
        let due = self.find_all(c::RESERVATIONS, doc! {"state": "open", "expires_at": {"$lt": date(&now)}}, None, None).await?;
        let mut n = 0;
        for d in due {
            let r: Reservation = parse_one(c::RESERVATIONS, &d)?;
            let before = close_reservation(self, &r.id, None, ReservationState::Expired, now).await?;
            n += (before.state == ReservationState::Expired) as u64;
        }
        Ok(n)
    }

    async fn totals(&self, scopes: &[ScopeKey]) -> StoreResult<Vec<ScopeTotal>> {
        let ids: Vec<&str> = scopes.iter().map(|s| s.0.as_str()).collect();
        let docs = self.find_all(c::LEDGER, doc! {"_id": {"$in": ids}}, None, None).await?;
        Ok(listing(c::LEDGER, docs).items)
    }

    async fn totals_with_prefix(&self, prefix: &str) -> StoreResult<Vec<ScopeTotal>> {
        let docs = self
            .find_all(c::LEDGER, doc! {"_id": {"$regex": format!("^{}", q::regex_escape(prefix))}}, Some(doc! {"_id": 1}), None)
            .await?;
        Ok(listing(c::LEDGER, docs).items)
    }

    async fn record_call(&self, call: LlmCall, rollups: &[ScopeKey]) -> StoreResult<()> {
        // Time-series collections take no writes inside transactions, so the roll-ups follow the
        // insert; a duplicate insert (a retry) adds nothing to them.
        match self.coll(c::LLM_CALLS).insert_one(doc_of(&call)?).await {
            Ok(_) => {}
            Err(e) if is_duplicate_key(&e) => return Ok(()),
            Err(e) => return Err(mongo_err(e)),
        }
        for k in rollups {
            self.coll(c::LEDGER)
                .update_one(
                    doc! {"_id": &k.0},
                    doc! {"$inc": {"spent": call.cost.0}, "$setOnInsert": {"cap": 0i64, "reserved": 0i64, "overshoot": 0i64}, "$set": {"updated_at": date(&call.at)}},
                )
                .upsert(true)
                .await
                .map_err(mongo_err)?;
        }
        Ok(())
    }

    async fn spend(&self, group: SpendGroup, since: Timestamp, until: Timestamp) -> StoreResult<Vec<SpendRow>> {
        let key: Bson = match group {
            SpendGroup::Agent => "$agent".into(),
            SpendGroup::Model => "$model".into(),
            SpendGroup::Product => doc! {"$ifNull": ["$product", "(none)"]}.into(),
            SpendGroup::Day => doc! {"$dateToString": {"format": "%Y-%m-%d", "date": "$at"}}.into(),
        };
        let p = vec![
            doc! {"$match": {"at": {"$gte": date(&since), "$lt": date(&until)}}},
            doc! {"$group": {"_id": key, "cost": {"$sum": "$cost"}, "calls": {"$sum": 1}}},
            doc! {"$sort": {"cost": -1}},
        ];
        let mut cur = self.coll(c::LLM_CALLS).aggregate(p).await.map_err(mongo_err)?;
        let mut out = vec![];
        while let Some(d) = cur.try_next().await.map_err(mongo_err)? {
            let n = |k: &str| {
                d.get(k)
                    .and_then(|b| b.as_i64().or_else(|| b.as_i32().map(i64::from)).or_else(|| b.as_f64().map(|f| f as i64)))
                    .unwrap_or(0)
            };
            out.push(SpendRow { key: d.get_str("_id").unwrap_or("").to_string(), cost: Usd(n("cost")), calls: n("calls") as u64 });
        }
        Ok(out)
    }
}

/// Moves an open reservation to `state`, releasing what it held and adding `spent`; idempotent.
/// A settlement after expiry still records the spend (the money was spent).
async fn close_reservation(
    s: &MongoStore,
    id: &str,
    spent: Option<Usd>,
    state: ReservationState,
    now: Timestamp,
) -> StoreResult<Reservation> {
    let state_s = match state {
        ReservationState::Settled => "settled",
        ReservationState::Released => "released",
        ReservationState::Expired => "expired",
        ReservationState::Open => return Err(StoreError::Invalid("cannot close a reservation into open".into())),
    };
    let mut session = s.start_txn().await?;
    let mut set = doc! {"state": state_s};
    if let Some(a) = spent {
        set.insert("settled", a.0);
    }
    let reservations = s.coll(c::RESERVATIONS);
    let flip = reservations
        .find_one_and_update(doc! {"_id": id, "state": "open"}, doc! {"$set": set.clone()})
        .return_document(ReturnDocument::Before);
    let before = match session.as_mut() {
        Some(sess) => flip.session(&mut *sess).await,
        None => flip.await,
    }
    .map_err(mongo_err)?;
    let (mut r, held) = match before {
        Some(d) => {
            let r: Reservation = parse_one(c::RESERVATIONS, &d)?;
            let held = r.amount.0;
            (r, held)
        }
        None => {
            if let Some(sess) = session.as_mut() {
                sess.abort_transaction().await.map_err(mongo_err)?;
            }
            let d = s.get_doc(c::RESERVATIONS, id, "reservation").await?;
            let r: Reservation = parse_one(c::RESERVATIONS, &d)?;
            // Late settlement of an expired or released reservation: record the spend alone.
            if let (Some(a), ReservationState::Settled, ReservationState::Expired | ReservationState::Released) = (spent, state, r.state) {
                let upd = s
                    .coll(c::RESERVATIONS)
                    .update_one(
                        doc! {"_id": id, "state": {"$in": ["expired", "released"]}},
                        doc! {"$set": {"state": "settled", "settled": a.0}},
                    )
                    .await
                    .map_err(mongo_err)?;
                if upd.modified_count == 1 {
                    for sc in &r.scopes {
                        s.close_scope(&sc.0, 0, a.0, &now, None).await?;
                    }
                }
                let mut r = r;
                r.state = ReservationState::Settled;
                r.settled = Some(a);
                return Ok(r);
            }
            return Ok(r);
        }
    };
    let add = spent.map(|u| u.0).unwrap_or(0);
    for sc in &r.scopes {
        s.close_scope(&sc.0, held, add, &now, session.as_mut()).await?;
    }
    if let Some(sess) = session.as_mut() {
        sess.commit_transaction().await.map_err(mongo_err)?;
    }
    r.state = state;
    r.settled = spent;
    Ok(r)
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

#[async_trait]
impl Archive for MongoStore {
    async fn export(&self) -> StoreResult<Vec<(String, Vec<serde_json::Value>)>> {
        // On a replica set every collection is read from one snapshot.
        let mut session =
            if self.caps.replica_set { Some(self.client.start_session().snapshot(true).await.map_err(mongo_err)?) } else { None };
        let mut out = vec![];
        for coll in c::ALL {
            let handle = self.coll(coll);
            let find = handle.find(doc! {});
            let docs: Vec<Document> = match session.as_mut() {
                Some(s) => {
                    let mut cur = find.session(&mut *s).await.map_err(mongo_err)?;
                    let mut v = vec![];
                    while let Some(d) = cur.next(&mut *s).await.transpose().map_err(mongo_err)? {
                        v.push(d);
                    }
                    v
                }
                None => find.await.map_err(mongo_err)?.try_collect().await.map_err(mongo_err)?,
            };
            let mut json: Vec<serde_json::Value> = docs.iter().map(doc_to_json).collect();
            if coll == c::METRICS {
                // Time-series documents get server-made ids; they are not part of the sample.
                for j in &mut json {
                    if let Some(o) = j.as_object_mut() {
                        o.remove("_id");
                    }
                }
            }
            out.push((coll.to_string(), json));
        }
        Ok(out)
    }

    async fn import(&self, collection: &str, docs: Vec<serde_json::Value>) -> StoreResult<u64> {
        if !c::ALL.contains(&collection) {
            return Err(StoreError::Invalid(format!("the archive names collection {collection:?}, which REEF does not keep")));
        }
        let mut n = 0;
        for d in docs {
            let Bson::Document(doc) = to_bson(&d) else {
                return Err(StoreError::Invalid(format!("a {collection} entry is not a document")));
            };
            match doc.get("_id").cloned() {
                Some(id) => {
                    self.coll(collection).replace_one(doc! {"_id": id}, doc).upsert(true).await.map_err(mongo_err)?;
                }
                None => {
                    self.coll(collection).insert_one(doc).await.map_err(mongo_err)?;
                }
            }
            n += 1;
        }
        Ok(n)
    }
}
