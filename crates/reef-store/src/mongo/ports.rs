//! What the MongoDB ports share: reading documents written by anyone (malformed ones reported,
//! never dropped) and expiry times.

use super::convert::{doc_to_json, id_filter, id_string};
use super::queries as q;
use super::{mongo_err, MongoStore};
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document};
use mongodb::options::ReturnDocument;
use mongodb::ClientSession;
use reef_core::collections as c;
use reef_core::*;
use std::time::Duration;

pub(super) fn parse<T: serde::de::DeserializeOwned>(collection: &str, d: &Document) -> Result<T, Malformed> {
    if CHECKED_ID_COLLECTIONS.contains(&collection) {
        let bad = |reason: String| Malformed { collection: collection.into(), id: id_string(d), reason };
        match d.get("_id") {
            Some(Bson::String(s)) => check_id(s).map_err(bad)?,
            Some(Bson::ObjectId(_)) => {}
            Some(other) => return Err(bad(format!("the id is a BSON {:?}; REEF reads string or ObjectId ids", other.element_type()))),
            None => return Err(bad("the document has no _id".into())),
        }
    }
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

pub(super) fn parse_one<T: serde::de::DeserializeOwned>(collection: &str, d: &Document) -> StoreResult<T> {
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

pub(super) fn ttl(now: &Timestamp, d: Duration) -> Timestamp {
    *now + chrono::Duration::from_std(d).unwrap_or_default()
}

impl MongoStore {
    pub(super) async fn find_all(
        &self,
        coll: &str,
        filter: Document,
        sort: Option<Document>,
        limit: Option<i64>,
    ) -> StoreResult<Vec<Document>> {
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

    pub(super) async fn get_doc(&self, coll: &str, id: &str, what: &str) -> StoreResult<Document> {
        self.coll(coll).find_one(id_filter(id)).await.map_err(mongo_err)?.ok_or_else(|| StoreError::not_found(format!("{what} {id}")))
    }

    /// A fenced task update: applies `update` only under the caller's lease token.
    pub(super) async fn fenced_update(&self, id: &str, token: &str, update: Document) -> StoreResult<Task> {
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

    pub(super) async fn task_update(&self, id: &str, filter_extra: Document, update: Document) -> StoreResult<Option<Task>> {
        let mut f = id_filter(id);
        f.extend(filter_extra);
        let after = self.coll(c::TASKS).find_one_and_update(f, update).return_document(ReturnDocument::After).await.map_err(mongo_err)?;
        after.map(|d| parse_one(c::TASKS, &d)).transpose()
    }

    pub(super) async fn start_txn(&self) -> StoreResult<Option<ClientSession>> {
        if !self.caps.replica_set {
            return Ok(None);
        }
        let mut s = self.client.start_session().await.map_err(mongo_err)?;
        s.start_transaction().await.map_err(mongo_err)?;
        Ok(Some(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, oid::ObjectId};

    #[test]
    fn task_ids_other_programs_chose_are_checked_before_anything_reads_them() {
        let body = doc! {"title": "t", "status": "pending", "created_at": mongodb::bson::DateTime::from_millis(0)};
        let with_id = |id: Bson| {
            let mut d = body.clone();
            d.insert("_id", id);
            d
        };
        assert!(parse::<Task>(c::TASKS, &with_id(Bson::String("ok-1".into()))).is_ok());
        assert!(parse::<Task>(c::TASKS, &with_id(Bson::ObjectId(ObjectId::new()))).is_ok(), "ObjectIds are ids");
        for (id, says) in [
            (Bson::Int64(42), "Int64"),
            (Bson::Document(doc! {"a": 1}), "EmbeddedDocument"),
            (Bson::String("../etc".into()), "starts with"),
            (Bson::String("a/b".into()), "'/' at byte 1"),
            (Bson::String("a\u{1b}[2J".into()), "at byte 1"),
        ] {
            let m = parse::<Task>(c::TASKS, &with_id(id.clone())).unwrap_err();
            assert!(m.reason.contains(says), "{id:?}: {}", m.reason);
        }
        assert!(parse::<Task>(c::TASKS, &body).unwrap_err().reason.contains("no _id"));
        // Collections whose ids are REEF's own names are not held to the task rule.
        assert!(parse::<serde_json::Value>("events", &with_id(Bson::Int64(42))).is_ok());
    }
}
