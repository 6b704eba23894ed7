//! `Ledger` on MongoDB: reservations in a transaction on a replica set, conditional `$inc` with
//! compensation on a standalone server.

use super::convert::{date, doc_of};
use super::ports::*;
use super::queries as q;
use super::txn::{commit, retrying};
use super::{is_duplicate_key, mongo_err, MongoStore};
use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson};
use mongodb::options::ReturnDocument;
use reef_core::collections as c;
use reef_core::*;

impl MongoStore {
    /// One reservation attempt, in its own transaction where the server has them.
    async fn reserve_once(&self, req: &ReserveRequest, now: Timestamp) -> StoreResult<Reservation> {
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
                commit(s).await?;
            }
            None => {
                self.coll(c::RESERVATIONS).insert_one(rd).await.map_err(mongo_err)?;
            }
        }
        Ok(r)
    }
}

#[async_trait]
impl Ledger for MongoStore {
    async fn reserve(&self, req: ReserveRequest, now: Timestamp) -> StoreResult<Reservation> {
        if req.amount.0 < 0 || req.scopes.is_empty() {
            return Err(StoreError::Invalid("a reservation needs a non-negative amount and at least one scope".into()));
        }
        retrying("reserve", || self.reserve_once(&req, now)).await
    }

    async fn settle(&self, id: &str, actual: Usd, now: Timestamp) -> StoreResult<Reservation> {
        close_reservation(self, id, Some(actual.max(Usd::ZERO)), ReservationState::Settled, now).await
    }

    async fn release(&self, id: &str, now: Timestamp) -> StoreResult<Reservation> {
        close_reservation(self, id, None, ReservationState::Released, now).await
    }

    async fn extend(&self, id: &str, expires_at: Timestamp) -> StoreResult<Reservation> {
        let after = self
            .coll(c::RESERVATIONS)
            .find_one_and_update(doc! {"_id": id, "state": "open"}, doc! {"$set": {"expires_at": date(&expires_at)}})
            .return_document(ReturnDocument::After)
            .await
            .map_err(mongo_err)?;
        match after {
            Some(d) => parse_one(c::RESERVATIONS, &d),
            None => {
                let d = self.get_doc(c::RESERVATIONS, id, "reservation").await?;
                let r: Reservation = parse_one(c::RESERVATIONS, &d)?;
                Err(StoreError::Conflict(format!("reservation {id} is {:?}, not open", r.state)))
            }
        }
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
    retrying("close a reservation", || close_once(s, id, spent, state, now)).await
}

async fn close_once(s: &MongoStore, id: &str, spent: Option<Usd>, state: ReservationState, now: Timestamp) -> StoreResult<Reservation> {
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
        commit(sess).await?;
    }
    r.state = state;
    r.settled = spent;
    Ok(r)
}
