//! `Archive` on MongoDB: the whole store as store-neutral JSON documents.

use super::convert::{doc_to_json, to_bson};
use super::{mongo_err, MongoStore};
use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use reef_core::collections as c;
use reef_core::*;

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
