//! Memory (vector search), the knowledge graph (`$graphLookup`) and revenue on MongoDB.

use super::convert::{doc_of, doc_to_json, id_string};
use super::queries as q;
use super::{is_duplicate_key, mongo_err, MongoStore};
use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::SearchIndexModel;
use reef_core::collections as c;
use reef_core::*;
use std::collections::BTreeMap;

fn parse<T: serde::de::DeserializeOwned>(coll: &str, d: &Document) -> Result<T, StoreError> {
    serde_json::from_value(doc_to_json(d)).map_err(|e| StoreError::Malformed {
        collection: coll.into(),
        id: id_string(d),
        reason: e.to_string(),
    })
}

fn embedding_of(d: &Document) -> Option<Vec<f32>> {
    d.get_array("embedding").ok().map(|a| {
        a.iter()
            .filter_map(|x| x.as_f64().map(|f| f as f32).or_else(|| x.as_i64().map(|i| i as f32)).or_else(|| x.as_i32().map(|i| i as f32)))
            .collect()
    })
}

fn unit(v: &[f32]) -> Result<Vec<f32>, StoreError> {
    if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
        return Err(StoreError::Invalid("embedding is empty or not finite".into()));
    }
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n == 0.0 {
        return Err(StoreError::Invalid("embedding is all zeros".into()));
    }
    Ok(v.iter().map(|x| x / n).collect())
}

impl MongoStore {
    /// Makes the vector search index once the dimension is known; a server without search
    /// support refuses, which is remembered and logged once.
    async fn ensure_vector_index(&self, dim: usize) {
        if !self.vector_search_available() {
            return;
        }
        let coll = self.coll(c::MEMORY);
        let existing: Vec<Document> = match coll.list_search_indexes().await {
            Ok(cur) => cur.try_collect().await.unwrap_or_default(),
            Err(e) => return self.vector_search_refused(&e.to_string()),
        };
        if let Some(ix) = existing.iter().find(|d| d.get_str("name").ok() == Some(super::VECTOR_INDEX)) {
            let dims = ix
                .get_document("latestDefinition")
                .or_else(|_| ix.get_document("definition"))
                .ok()
                .and_then(|d| d.get_array("fields").ok())
                .and_then(|f| {
                    f.iter().filter_map(|x| x.as_document()).find_map(|x| {
                        x.get("numDimensions")
                            .and_then(|b| b.as_i64().or_else(|| b.as_i32().map(i64::from)).or_else(|| b.as_f64().map(|f| f as i64)))
                    })
                });
            if dims.is_none_or(|d| d as usize == dim) {
                return;
            }
            // A reembed changed the dimension: the old index cannot answer the new vectors.
            if let Err(e) = coll.drop_search_index(super::VECTOR_INDEX).await {
                return self.vector_search_refused(&e.to_string());
            }
        }
        let model = SearchIndexModel::builder()
            .definition(q::vector_index_definition(dim))
            .name(Some(super::VECTOR_INDEX.to_string()))
            .index_type(Some(mongodb::SearchIndexType::VectorSearch))
            .build();
        if let Err(e) = coll.create_search_index(model).await {
            self.vector_search_refused(&e.to_string());
        }
    }

    async fn exact_search(&self, query: &[f32], f: &MemoryFilter, k: usize) -> StoreResult<Vec<MemoryHit>> {
        let mut m = q::memory_match(f);
        if let Some(t) = &f.text {
            m.insert("content", doc! {"$regex": q::regex_escape(t), "$options": "i"});
        }
        let mut cur = self.coll(c::MEMORY).find(m).await.map_err(mongo_err)?;
        let mut best: Vec<(f32, Document)> = Vec::with_capacity(k + 1);
        while let Some(d) = cur.try_next().await.map_err(mongo_err)? {
            let Some(e) = embedding_of(&d) else { continue };
            if e.len() != query.len() {
                continue;
            }
            let s: f32 = e.iter().zip(query).map(|(a, b)| a * b).sum();
            if best.len() < k || s > best.last().map(|b| b.0).unwrap_or(f32::MIN) {
                let pos = best.partition_point(|b| b.0 >= s);
                best.insert(pos, (s, d));
                best.truncate(k);
            }
        }
        best.into_iter().map(|(score, d)| Ok(MemoryHit { doc: parse(c::MEMORY, &d)?, score })).collect()
    }
}

#[async_trait]
impl Memory for MongoStore {
    async fn put(&self, mut doc: MemoryDoc) -> StoreResult<()> {
        if doc.content.len() > 1024 * 1024 {
            return Err(StoreError::Invalid(format!("memory content is {} bytes; the limit is 1 MiB (chunk it)", doc.content.len())));
        }
        doc.embedding = unit(&doc.embedding)?;
        if let Some(d) = self.dimension().await? {
            if d != doc.embedding.len() {
                return Err(StoreError::DimensionMismatch { expected: d, got: doc.embedding.len() });
            }
        } else {
            self.ensure_vector_index(doc.embedding.len()).await;
        }
        let d = doc_of(&doc)?;
        self.coll(c::MEMORY).replace_one(doc! {"_id": &doc.id}, d).upsert(true).await.map_err(mongo_err)?;
        Ok(())
    }

    async fn get(&self, id: &str) -> StoreResult<MemoryDoc> {
        let d = self
            .coll(c::MEMORY)
            .find_one(super::id_filter(id))
            .await
            .map_err(mongo_err)?
            .ok_or_else(|| StoreError::not_found(format!("memory {id}")))?;
        parse(c::MEMORY, &d)
    }

    async fn search(&self, query: &[f32], filter: &MemoryFilter, k: usize) -> StoreResult<MemorySearch> {
        let qv = unit(query)?;
        if let Some(d) = self.dimension().await? {
            if d != qv.len() {
                return Err(StoreError::DimensionMismatch { expected: d, got: qv.len() });
            }
        }
        if self.vector_search_available() {
            match self.coll(c::MEMORY).aggregate(q::vector_search_pipeline(&qv, filter, k)).await {
                Ok(cur) => match cur.try_collect::<Vec<Document>>().await {
                    Ok(docs) => {
                        let mut hits = vec![];
                        for mut d in docs {
                            // vectorSearchScore for cosine is (1 + cos) / 2; REEF reports cos.
                            let s = d.remove("reef_score").and_then(|b| b.as_f64()).unwrap_or(0.0) as f32;
                            hits.push(MemoryHit { doc: parse(c::MEMORY, &d)?, score: 2.0 * s - 1.0 });
                        }
                        return Ok(MemorySearch { hits, method: SearchMethod::VectorSearchIndex });
                    }
                    Err(e) => self.vector_search_refused(&e.to_string()),
                },
                Err(e) => self.vector_search_refused(&e.to_string()),
            }
        }
        Ok(MemorySearch { hits: self.exact_search(&qv, filter, k).await?, method: SearchMethod::ExactScan })
    }

    async fn dimension(&self) -> StoreResult<Option<usize>> {
        let ident = self.coll(c::SETTINGS).find_one(doc! {"_id": reef_core::memory::INDEX_KEY}).await.map_err(mongo_err)?;
        if let Some(d) = ident.and_then(|d| doc_to_json(&d)["value"]["dimension"].as_u64()) {
            return Ok(Some(d as usize));
        }
        let d = self
            .coll(c::MEMORY)
            .find_one(doc! {"embedding.0": {"$exists": true}})
            .projection(doc! {"embedding": 1})
            .await
            .map_err(mongo_err)?;
        Ok(d.and_then(|d| embedding_of(&d)).map(|e| e.len()))
    }

    async fn count(&self) -> StoreResult<u64> {
        self.coll(c::MEMORY).count_documents(doc! {}).await.map_err(mongo_err)
    }

    async fn scan(&self, after: Option<&str>, limit: usize) -> StoreResult<Vec<MemoryDoc>> {
        let f = after.map(|a| doc! {"_id": {"$gt": a}}).unwrap_or_default();
        let mut cur = self.coll(c::MEMORY).find(f).sort(doc! {"_id": 1}).limit(limit as i64).await.map_err(mongo_err)?;
        let mut out = vec![];
        while let Some(d) = cur.try_next().await.map_err(mongo_err)? {
            match parse::<MemoryDoc>(c::MEMORY, &d) {
                Ok(m) => out.push(m),
                // Keep paging: one unreadable document must not stop a reembed of the rest.
                Err(e) => tracing::warn!(error = %e, "memory document REEF cannot read; skipped"),
            }
        }
        Ok(out)
    }

    async fn set_embeddings(&self, updates: Vec<(String, Vec<f32>)>, embedder: &str) -> StoreResult<()> {
        let Some(dim) = updates.first().map(|u| u.1.len()) else { return Ok(()) };
        self.ensure_vector_index(dim).await;
        for (id, v) in updates {
            let v = unit(&v)?;
            // `metadata.embedder` cannot be set inside a null or missing metadata: make it an object.
            self.coll(c::MEMORY)
                .update_one(doc! {"_id": &id, "metadata": {"$not": {"$type": "object"}}}, doc! {"$set": {"metadata": {}}})
                .await
                .map_err(mongo_err)?;
            self.coll(c::MEMORY)
                .update_one(doc! {"_id": &id}, doc! {"$set": {"embedding": v, "metadata.embedder": embedder}})
                .await
                .map_err(mongo_err)?;
        }
        Ok(())
    }
}

#[async_trait]
impl Graph for MongoStore {
    async fn upsert_entity(&self, entity: Entity) -> StoreResult<()> {
        let mut d = doc_of(&entity)?;
        d.remove("_id");
        self.coll(c::ENTITIES).update_one(doc! {"_id": &entity.id}, doc! {"$set": d}).upsert(true).await.map_err(mongo_err)?;
        Ok(())
    }

    async fn entity(&self, id: &str) -> StoreResult<Entity> {
        let d = self
            .coll(c::ENTITIES)
            .find_one(doc! {"_id": id})
            .await
            .map_err(mongo_err)?
            .ok_or_else(|| StoreError::not_found(format!("entity {id}")))?;
        parse(c::ENTITIES, &d)
    }

    async fn entities(&self, kind: Option<&str>, limit: usize) -> StoreResult<Listing<Entity>> {
        let f = kind.map(|k| doc! {"type": k}).unwrap_or_default();
        let docs: Vec<Document> = self
            .coll(c::ENTITIES)
            .find(f)
            .sort(doc! {"_id": 1})
            .limit(limit as i64)
            .await
            .map_err(mongo_err)?
            .try_collect()
            .await
            .map_err(mongo_err)?;
        Ok(super::ports::listing(c::ENTITIES, docs))
    }

    async fn relate(&self, rel: Relationship) -> StoreResult<()> {
        if !rel.weight.is_finite() {
            return Err(StoreError::Invalid("relationship weight must be a finite number".into()));
        }
        let id = format!("{}|{}|{}", rel.from, rel.kind, rel.to);
        let mut d = doc_of(&rel)?;
        d.insert("_id", &id);
        self.coll(c::RELATIONSHIPS).replace_one(doc! {"_id": &id}, d).upsert(true).await.map_err(mongo_err)?;
        Ok(())
    }

    async fn traverse(&self, start: &str, depth: u32) -> StoreResult<Traversal> {
        // Start from the entity; an id known only from edges starts from its first edge instead.
        let mut cur = self.coll(c::ENTITIES).aggregate(q::traversal_pipeline(start, depth, c::RELATIONSHIPS)).await.map_err(mongo_err)?;
        let mut root = cur.try_next().await.map_err(mongo_err)?;
        if root.is_none() {
            let mut p = q::traversal_pipeline(start, depth, c::RELATIONSHIPS);
            p[0] = doc! {"$match": {"from": start}};
            p.insert(1, doc! {"$limit": 1});
            p.insert(2, doc! {"$project": {"_id": "$from"}});
            let mut cur = self.coll(c::RELATIONSHIPS).aggregate(p).await.map_err(mongo_err)?;
            root = cur.try_next().await.map_err(mongo_err)?;
        }
        let Some(root) = root else { return Err(StoreError::not_found(format!("entity {start}"))) };
        let mut edges: Vec<Relationship> = vec![];
        if depth > 0 {
            for e in root.get_array("edges").map(|a| a.to_vec()).unwrap_or_default() {
                if let Bson::Document(e) = e {
                    if let Ok(r) = parse::<Relationship>(c::RELATIONSHIPS, &e) {
                        edges.push(r);
                    }
                }
            }
        }
        // Breadth-first over the returned edges gives each node its smallest depth; a cycle back
        // to a node already reached changes nothing.
        let mut depths: BTreeMap<String, u32> = BTreeMap::from([(start.to_string(), 0)]);
        let mut frontier = vec![start.to_string()];
        for d in 1..=depth {
            let mut next = vec![];
            for r in edges.iter().filter(|r| frontier.contains(&r.from)) {
                if !depths.contains_key(&r.to) {
                    depths.insert(r.to.clone(), d);
                    next.push(r.to.clone());
                }
            }
            frontier = next;
        }
        edges.retain(|r| depths.get(&r.from).is_some_and(|d| *d < depth) && depths.contains_key(&r.to));
        let ids: Vec<&String> = depths.keys().collect();
        let ents: Vec<Document> =
            self.coll(c::ENTITIES).find(doc! {"_id": {"$in": ids}}).await.map_err(mongo_err)?.try_collect().await.map_err(mongo_err)?;
        let by_id: BTreeMap<String, Entity> =
            ents.iter().filter_map(|d| parse::<Entity>(c::ENTITIES, d).ok()).map(|e| (e.id.clone(), e)).collect();
        let nodes = depths
            .iter()
            .map(|(id, d)| {
                (
                    by_id.get(id).cloned().unwrap_or_else(|| Entity {
                        id: id.clone(),
                        kind: "unknown".into(),
                        name: id.clone(),
                        properties: serde_json::Value::Null,
                    }),
                    *d,
                )
            })
            .collect();
        Ok(Traversal { start: start.into(), nodes, edges })
    }
}

#[async_trait]
impl Revenue for MongoStore {
    async fn upsert_product(&self, product: Product) -> StoreResult<()> {
        let mut d = doc_of(&product)?;
        d.remove("_id");
        self.coll(c::PRODUCTS).update_one(doc! {"_id": &product.id}, doc! {"$set": d}).upsert(true).await.map_err(mongo_err)?;
        Ok(())
    }

    async fn products(&self) -> StoreResult<Listing<Product>> {
        let docs: Vec<Document> =
            self.coll(c::PRODUCTS).find(doc! {}).sort(doc! {"_id": 1}).await.map_err(mongo_err)?.try_collect().await.map_err(mongo_err)?;
        Ok(super::ports::listing(c::PRODUCTS, docs))
    }

    async fn record(&self, event: RevenueEvent) -> StoreResult<bool> {
        if event.currency.len() != 3 || !event.currency.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(StoreError::Invalid(format!("currency {:?} is not an ISO 4217 code", event.currency)));
        }
        match self.coll(c::REVENUE).insert_one(doc_of(&event)?).await {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(mongo_err(e)),
        }
    }

    async fn by_product_month(&self) -> StoreResult<Vec<RevenueRow>> {
        let p = vec![
            doc! {"$project": {
                "product": 1, "amount_minor": 1,
                "month": {"$dateToString": {"format": "%Y-%m", "date": "$at"}},
                "currency": {"$toLower": "$currency"},
            }},
            doc! {"$group": {
                "_id": {"product": "$product", "month": "$month", "currency": "$currency"},
                "amount": {"$sum": "$amount_minor"},
            }},
            doc! {"$sort": {"_id.product": 1, "_id.month": 1, "_id.currency": 1}},
        ];
        let mut cur = self.coll(c::REVENUE).aggregate(p).await.map_err(mongo_err)?;
        let mut out = vec![];
        while let Some(d) = cur.try_next().await.map_err(mongo_err)? {
            let k = d.get_document("_id").cloned().unwrap_or_default();
            let amount = d.get("amount").and_then(|b| b.as_i64().or_else(|| b.as_i32().map(i64::from))).unwrap_or(0);
            out.push(RevenueRow {
                product: k.get_str("product").unwrap_or("").into(),
                month: k.get_str("month").unwrap_or("").into(),
                currency: k.get_str("currency").unwrap_or("").into(),
                amount_minor: amount,
            });
        }
        Ok(out)
    }

    async fn product_of_reference(&self, reference: &str) -> StoreResult<Option<String>> {
        let d = self
            .coll(c::REVENUE)
            .find_one(doc! {"reference": reference})
            .sort(doc! {"at": 1})
            .projection(doc! {"product": 1})
            .await
            .map_err(mongo_err)?;
        Ok(d.and_then(|d| d.get_str("product").ok().map(String::from)))
    }

    async fn upsert_subscription(&self, sub: Subscription) -> StoreResult<bool> {
        let at = mongodb::bson::DateTime::from_millis(sub.updated_at.timestamp_millis());
        let mut d = doc_of(&sub)?;
        d.remove("_id");
        // Matches only a report no newer than this one; when a newer one exists the upsert's
        // insert collides on _id, which means "keep the newer".
        match self.coll(c::SUBSCRIPTIONS).update_one(doc! {"_id": &sub.id, "updated_at": {"$lte": at}}, doc! {"$set": d}).upsert(true).await
        {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(mongo_err(e)),
        }
    }

    async fn subscriptions(&self) -> StoreResult<Vec<Subscription>> {
        let docs: Vec<Document> = self
            .coll(c::SUBSCRIPTIONS)
            .find(doc! {})
            .sort(doc! {"_id": 1})
            .await
            .map_err(mongo_err)?
            .try_collect()
            .await
            .map_err(mongo_err)?;
        Ok(super::ports::listing::<Subscription>(c::SUBSCRIPTIONS, docs).items)
    }
}
