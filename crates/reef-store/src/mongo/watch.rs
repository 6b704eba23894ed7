//! `ChangeFeed` on MongoDB: a change stream on the database (resumable by token) on a replica
//! set; on a standalone server, polling of the time fields REEF and seed 000 write.

use super::convert::id_string;
use super::{mongo_err, MongoStore};
use async_trait::async_trait;
use futures::StreamExt;
use mongodb::bson::{self, doc, Bson, Document};
use mongodb::change_stream::event::{OperationType, ResumeToken as MongoToken};
use reef_core::*;
use std::collections::HashSet;

use std::time::Duration;

/// The collections a watcher hears about.
pub const WATCHED: [&str; 10] =
    ["tasks", "approvals", "agent_state", "events", "products", "revenue", "subscriptions", "entities", "relationships", "memory"];
const POLL: Duration = Duration::from_millis(500);
const POLL_PREFIX: &str = "poll:";

/// A driver resume token as REEF's opaque string (relaxed extended JSON) and back.
pub fn encode_token(t: &MongoToken) -> Result<ResumeToken, StoreError> {
    let b = bson::to_bson(t).map_err(|e| StoreError::Backend(format!("encoding a resume token: {e}")))?;
    Ok(ResumeToken(b.into_relaxed_extjson().to_string()))
}

pub fn decode_token(t: &ResumeToken) -> Result<MongoToken, StoreError> {
    let bad = || StoreError::Invalid(format!("resume token {:?} is not a MongoDB change stream token", t.0));
    let v: serde_json::Value = serde_json::from_str(&t.0).map_err(|_| bad())?;
    let b = Bson::try_from(v).map_err(|_| bad())?;
    // Server tokens are documents (`{_data: …}`); anything else was never one of ours.
    if b.as_document().is_none() {
        return Err(bad());
    }
    bson::from_bson(b).map_err(|_| bad())
}

fn op_of(o: &OperationType) -> Option<ChangeOp> {
    match o {
        OperationType::Insert => Some(ChangeOp::Insert),
        OperationType::Update | OperationType::Replace => Some(ChangeOp::Update),
        OperationType::Delete => Some(ChangeOp::Delete),
        _ => None,
    }
}

fn poll_filter(since: bson::DateTime) -> Document {
    doc! {"$or": TIME_FIELDS.iter().map(|f| doc! {*f: {"$gte": since}}).collect::<Vec<_>>()}
}

impl MongoStore {
    async fn watch_stream(&self, from: Option<ResumeToken>) -> StoreResult<ChangeStream> {
        let mut w = self.db.watch().pipeline([doc! {"$match": {"ns.coll": {"$in": WATCHED.to_vec()}}}]);
        if let Some(t) = &from {
            w = w.resume_after(decode_token(t)?);
        }
        let stream = w.await.map_err(mongo_err)?;
        Ok(Box::pin(stream.filter_map(|ev| async move {
            match ev {
                Err(e) => Some(Err(mongo_err(e))),
                Ok(ev) => {
                    let op = op_of(&ev.operation_type)?;
                    let collection = ev.ns.as_ref().and_then(|n| n.coll.clone()).unwrap_or_default();
                    let id = ev.document_key.as_ref().map(id_string).unwrap_or_default();
                    Some(encode_token(&ev.id).map(|token| Change { token, collection, op, id }))
                }
            }
        })))
    }

    fn poll_stream(&self, from: Option<ResumeToken>) -> StoreResult<ChangeStream> {
        let (start_ms, boundary) = match &from {
            Some(t) => decode_poll_token(t)?,
            None => (SystemClock.now().timestamp_millis(), vec![]),
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<StoreResult<Change>>(1024);
        let store = self.clone();
        tokio::spawn(async move {
            let mut since = start_ms;
            // Documents already delivered at the boundary millisecond, so `$gte` never delivers
            // one twice; the token carries them, so a resumed watch does not either.
            let mut at_boundary: HashSet<String> = boundary.into_iter().collect();
            loop {
                let mut batch: Vec<(i64, String, String, bool)> = vec![];
                for coll in WATCHED {
                    let mut cur = match store.coll(coll).find(poll_filter(bson::DateTime::from_millis(since))).await {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = tx.send(Err(mongo_err(e))).await;
                            return;
                        }
                    };
                    while let Some(d) = cur.next().await {
                        let Ok(d) = d else { continue };
                        let t =
                            TIME_FIELDS.iter().filter_map(|f| d.get_datetime(f).ok().map(|t| t.timestamp_millis())).max().unwrap_or(since);
                        let created = d.get_datetime("created_at").ok().map(|c| c.timestamp_millis()) == Some(t);
                        batch.push((t, coll.to_string(), id_string(&d), created));
                    }
                }
                batch.sort();
                for (t, coll, id, created) in batch {
                    let key = format!("{coll}/{id}");
                    if t < since || (t == since && at_boundary.contains(&key)) {
                        continue;
                    }
                    if t > since {
                        since = t;
                        at_boundary.clear();
                    }
                    at_boundary.insert(key);
                    let token = encode_poll_token(since, &at_boundary);
                    let ch = Change { token, collection: coll, op: if created { ChangeOp::Insert } else { ChangeOp::Update }, id };
                    if tx.send(Ok(ch)).await.is_err() {
                        return;
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })))
    }
}

const TIME_FIELDS: [&str; 6] = ["updated_at", "created_at", "decided_at", "heartbeat_at", "at", "claimed_at"];

fn encode_poll_token(ms: i64, at_boundary: &HashSet<String>) -> ResumeToken {
    let mut ids: Vec<&String> = at_boundary.iter().collect();
    ids.sort();
    ResumeToken(format!("{POLL_PREFIX}{}", serde_json::json!({"t": ms, "seen": ids})))
}

fn decode_poll_token(t: &ResumeToken) -> StoreResult<(i64, Vec<String>)> {
    let bad = || StoreError::Invalid(format!("resume token {:?} is not from this server's polling watch", t.0));
    let v: serde_json::Value = serde_json::from_str(t.0.strip_prefix(POLL_PREFIX).ok_or_else(bad)?).map_err(|_| bad())?;
    let ms = v["t"].as_i64().ok_or_else(bad)?;
    let seen = v["seen"].as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default();
    Ok((ms, seen))
}

#[async_trait]
impl ChangeFeed for MongoStore {
    async fn watch(&self, from: Option<ResumeToken>) -> StoreResult<ChangeStream> {
        if self.caps.replica_set {
            self.watch_stream(from).await
        } else {
            self.poll_stream(from)
        }
    }

    async fn save_cursor(&self, listener: &str, token: &ResumeToken) -> StoreResult<()> {
        self.coll(reef_core::collections::CURSORS)
            .update_one(doc! {"_id": listener}, doc! {"$set": {"token": &token.0}})
            .upsert(true)
            .await
            .map_err(mongo_err)?;
        Ok(())
    }

    async fn load_cursor(&self, listener: &str) -> StoreResult<Option<ResumeToken>> {
        let d = self.coll(reef_core::collections::CURSORS).find_one(doc! {"_id": listener}).await.map_err(mongo_err)?;
        Ok(d.and_then(|d| d.get_str("token").ok().map(|s| ResumeToken(s.to_string()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_tokens_survive_the_round_trip_through_a_string() {
        let raw: MongoToken = bson::from_bson(Bson::Document(doc! {"_data": "8263A1B2C3000000012B022C0100296E5A1004"})).unwrap();
        let s = encode_token(&raw).unwrap();
        let back = decode_token(&s).unwrap();
        assert_eq!(encode_token(&back).unwrap(), s);
        assert!(matches!(decode_token(&ResumeToken("42".into())), Err(StoreError::Invalid(_))));
    }

    #[test]
    fn poll_tokens_carry_the_boundary_so_resume_skips_what_was_delivered() {
        let seen: HashSet<String> = ["tasks/a".to_string()].into();
        let t = encode_poll_token(1234, &seen);
        assert_eq!(decode_poll_token(&t).unwrap(), (1234, vec!["tasks/a".to_string()]));
        assert!(decode_poll_token(&ResumeToken("{\"_data\":\"x\"}".into())).is_err());
    }

    #[test]
    fn poll_filter_watches_every_time_field() {
        let f = poll_filter(bson::DateTime::from_millis(5));
        assert_eq!(f.get_array("$or").unwrap().len(), 6);
    }
}
