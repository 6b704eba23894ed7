//! `TaskQueue` on MongoDB: claims are one `findOneAndUpdate`, completions fenced by the lease token in the filter.

use super::convert::{date, doc_of, id_filter};
use super::ports::*;
use super::queries as q;
use super::txn::{commit, retrying};
use super::{is_duplicate_key, mongo_err, MongoStore};
use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::ReturnDocument;
use reef_core::collections as c;
use reef_core::*;
use std::time::Duration;

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
        if let Some(t) = &query.text {
            let re = q::regex_escape(t);
            f.insert("$or", vec![doc! {"title": {"$regex": &re, "$options": "i"}}, doc! {"_id": {"$regex": &re, "$options": "i"}}]);
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
        let mut requeue = false;
        let mut blocked_on: Option<Vec<String>> = None;
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
            Outcome::Requeue { error } => {
                set.insert("status", "pending");
                set.insert("error", error);
                requeue = true;
            }
            Outcome::Failed { error } => {
                set.insert("status", "failed");
                set.insert("error", error);
            }
            Outcome::NeedsHuman { reason } => {
                set.insert("status", "needs_human");
                set.insert("error", reason);
            }
            Outcome::AwaitingApproval => {
                set.insert("status", "awaiting_approval");
            }
            Outcome::Blocked { on } => {
                set.insert("status", "blocked");
                // Waiting is not a try: the attempt is given back, as for a clean requeue.
                requeue = true;
                blocked_on = Some(on);
            }
        }
        let mut update = doc! {"$set": set, "$unset": unset};
        if let Some(on) = blocked_on {
            update.insert("$addToSet", doc! {"depends_on": {"$each": on}});
        }
        if requeue {
            // Claims count attempts up front; a clean requeue gives this one back.
            update.insert("$inc", doc! {"attempts": -1});
        }
        let Some(ev) = event else { return self.fenced_update(id, token, update).await };
        // On a replica set the outcome and its event commit together; a standalone server has
        // no transactions, so the event follows the (fenced) outcome.
        if self.caps.replica_set {
            return retrying("finish a task", || self.finish_in_txn(id, token, update.clone(), &ev)).await;
        }
        let t = self.fenced_update(id, token, update).await?;
        EventLog::append(self, ev).await?;
        Ok(t)
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

impl MongoStore {
    /// A task's outcome and its event in one transaction (one attempt of it).
    async fn finish_in_txn(&self, id: &str, token: &str, update: Document, ev: &Event) -> StoreResult<Task> {
        let mut s = self.start_txn().await?.ok_or_else(|| StoreError::Backend("no transactions on this server".into()))?;
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
        self.coll(c::EVENTS).insert_one(doc_of(ev)?).session(&mut s).await.map_err(mongo_err)?;
        commit(&mut s).await?;
        parse_one(c::TASKS, &d)
    }
}
