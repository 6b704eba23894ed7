//! The filters, update documents, pipelines and index specs the MongoDB store sends — pure
//! functions, so they are unit-tested here without a server.

use super::convert::date;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::IndexOptions;
use mongodb::IndexModel;
use reef_core::{ClaimFilter, Lease, MemoryFilter, Timestamp};

/// Tasks a claimer may take: pending, or leased by REEF with the lease expired. Tasks another
/// program claimed (seed 000's pattern sets no lease) never match; documents REEF already found
/// unreadable are skipped; `attempts` must be absent or a number (not an array holding one) so
/// `$inc` cannot fail.
pub fn claim_filter(filter: &ClaimFilter, now: &Timestamp) -> Document {
    let mut f = doc! {
        "$or": [
            {"status": "pending"},
            {"status": {"$in": ["claimed", "running"]}, "lease.expires_at": {"$lt": date(now)}},
        ],
        "reef_malformed": {"$exists": false},
        // `$type` matches an array that holds a number too, and `$inc` fails on an array.
        "$and": [ {"$or": [{"attempts": {"$exists": false}}, {"attempts": {"$type": "number", "$not": {"$type": "array"}}}]} ],
    };
    if let Some(agents) = &filter.agents {
        let mut ors: Vec<Bson> = vec![];
        if !agents.is_empty() {
            ors.push(Bson::Document(doc! {"assigned_to": {"$in": agents.clone()}}));
        }
        if filter.include_unassigned {
            ors.push(Bson::Document(doc! {"assigned_to": null}));
        }
        if ors.is_empty() {
            // Matches nothing: the claimer takes no agent's work.
            ors.push(Bson::Document(doc! {"_id": {"$exists": false}}));
        }
        if let Ok(and) = f.get_array_mut("$and") {
            and.push(Bson::Document(doc! {"$or": ors}));
        }
    }
    f
}

pub fn claim_sort() -> Document {
    doc! {"priority": -1, "created_at": 1}
}

pub fn claim_update(lease: &Lease, now: &Timestamp) -> Document {
    doc! {
        "$set": {
            "status": "claimed",
            "lease": {"holder": &lease.holder, "token": &lease.token, "expires_at": date(&lease.expires_at)},
            "claimed_at": date(now),
            "updated_at": date(now),
        },
        "$inc": {"attempts": 1},
    }
}

/// Restores what a claim changed on a document REEF then could not read, and marks it.
pub fn unclaim_malformed(before: &Document, reason: &str, now: &Timestamp) -> Document {
    let mut set = doc! {"reef_malformed": {"reason": reason, "at": date(now)}};
    let mut unset = Document::new();
    for k in ["status", "lease", "claimed_at", "updated_at", "attempts"] {
        match before.get(k) {
            Some(v) => {
                set.insert(k, v.clone());
            }
            None => {
                unset.insert(k, "");
            }
        }
    }
    let mut u = doc! {"$set": set};
    if !unset.is_empty() {
        u.insert("$unset", unset);
    }
    u
}

/// Only the current lease holder may act on a task.
pub fn fenced(id_filter: Document, token: &str) -> Document {
    let mut f = id_filter;
    f.insert("lease.token", token);
    f.insert("status", doc! {"$in": ["claimed", "running"]});
    f
}

/// Reserve `amount` in a scope only if it still fits under `cap`.
pub fn fits_under_cap(scope: &str, amount: i64, cap: i64) -> Document {
    doc! {"_id": scope, "$expr": {"$lte": [{"$add": ["$spent", "$reserved", amount]}, cap]}}
}

/// The same as [`close_scope`] as a classic update, for servers without pipeline updates: the
/// caller read `prior_spent`/`prior_reserved`/`cap` and the filter makes the write conditional on
/// them being unchanged (compare-and-set).
pub fn close_scope_cas(
    scope: &str,
    prior_spent: i64,
    prior_reserved: i64,
    cap: i64,
    held: i64,
    spent: i64,
    now: &Timestamp,
) -> (Document, Document) {
    let overshoot = (prior_spent + spent - cap).max(0) - (prior_spent - cap).max(0);
    let reserved = (prior_reserved - held).max(0);
    (
        doc! {"_id": scope, "spent": prior_spent, "reserved": prior_reserved},
        doc! {"$set": {"spent": prior_spent + spent, "reserved": reserved, "updated_at": date(now)}, "$inc": {"overshoot": overshoot}},
    )
}

/// Settle or release: move `held` out of `reserved`, add `spent`, count any spend past the cap
/// as overshoot. One pipeline stage, so every field is computed from the same prior document.
pub fn close_scope(held: i64, spent: i64, now: &Timestamp) -> Vec<Document> {
    vec![doc! {"$set": {
        "reserved": {"$max": [{"$subtract": ["$reserved", held]}, 0]},
        "spent": {"$add": ["$spent", spent]},
        "overshoot": {"$add": [
            {"$ifNull": ["$overshoot", 0]},
            {"$subtract": [
                {"$max": [{"$subtract": [{"$add": ["$spent", spent]}, "$cap"]}, 0]},
                {"$max": [{"$subtract": ["$spent", "$cap"]}, 0]},
            ]},
        ]},
        "updated_at": date(now),
    }}]
}

/// `$graphLookup` from one document's `_id` along `from → to` edges, up to `depth` hops. Depths
/// are worked out by REEF from the edges (no `depthField`, which some compatible servers lack).
pub fn traversal_pipeline(start: &str, depth: u32, edges: &str) -> Vec<Document> {
    vec![
        doc! {"$match": {"_id": start}},
        doc! {"$graphLookup": {
            "from": edges,
            "startWith": "$_id",
            "connectFromField": "to",
            "connectToField": "from",
            "as": "edges",
            "maxDepth": (depth.max(1) - 1) as i64,
        }},
    ]
}

pub fn memory_match(f: &MemoryFilter) -> Document {
    let mut m = Document::new();
    if let Some(a) = &f.agent {
        m.insert("agent", a);
    }
    if let Some(p) = &f.product {
        m.insert("product", p);
    }
    if let Some(k) = &f.kind {
        m.insert("type", k);
    }
    let mut range = Document::new();
    if let Some(s) = &f.since {
        range.insert("$gte", date(s));
    }
    if let Some(u) = &f.until {
        range.insert("$lt", date(u));
    }
    if !range.is_empty() {
        m.insert("created_at", range);
    }
    m
}

/// `$vectorSearch` over the `memory_vector` index; the text condition, which a vector index
/// cannot pre-filter on, follows as a `$match`.
pub fn vector_search_pipeline(query: &[f32], f: &MemoryFilter, k: usize) -> Vec<Document> {
    let mut vs = doc! {
        "index": super::VECTOR_INDEX,
        "path": "embedding",
        "queryVector": query.iter().map(|x| *x as f64).collect::<Vec<f64>>(),
        "numCandidates": (k * 20).max(100) as i64,
        "limit": (if f.text.is_some() { k * 10 } else { k }) as i64,
    };
    let m = memory_match(f);
    if !m.is_empty() {
        vs.insert("filter", m);
    }
    let mut p = vec![doc! {"$vectorSearch": vs}];
    if let Some(t) = &f.text {
        p.push(doc! {"$match": {"content": {"$regex": regex_escape(t), "$options": "i"}}});
        p.push(doc! {"$limit": k as i64});
    }
    p.push(doc! {"$addFields": {"reef_score": {"$meta": "vectorSearchScore"}}});
    p
}

/// The search index definition for memory vectors of `dim` dimensions, filterable by metadata.
pub fn vector_index_definition(dim: usize) -> Document {
    doc! {"fields": [
        {"type": "vector", "path": "embedding", "numDimensions": dim as i64, "similarity": "cosine"},
        {"type": "filter", "path": "agent"},
        {"type": "filter", "path": "product"},
        {"type": "filter", "path": "type"},
        {"type": "filter", "path": "created_at"},
    ]}
}

pub fn regex_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            o.push('\\');
        }
        o.push(c);
    }
    o
}

/// Every index REEF relies on, per collection. Created idempotently at start.
pub fn indexes() -> Vec<(&'static str, IndexModel)> {
    let idx = |keys: Document, opts: Option<IndexOptions>| IndexModel::builder().keys(keys).options(opts).build();
    let named = |n: &str| IndexOptions::builder().name(n.to_string()).build();
    vec![
        ("tasks", idx(doc! {"status": 1, "priority": -1, "created_at": 1}, Some(named("reef_claim")))),
        (
            "tasks",
            idx(
                doc! {"lease.expires_at": 1},
                Some(
                    IndexOptions::builder()
                        .name("reef_lease".to_string())
                        .partial_filter_expression(doc! {"lease.expires_at": {"$exists": true}})
                        .build(),
                ),
            ),
        ),
        (
            "tasks",
            idx(
                doc! {"idempotency_key": 1},
                Some(
                    IndexOptions::builder()
                        .name("reef_idempotency".to_string())
                        .unique(true)
                        .partial_filter_expression(doc! {"idempotency_key": {"$type": "string"}})
                        .build(),
                ),
            ),
        ),
        ("tasks", idx(doc! {"parent_id": 1}, Some(named("reef_parent")))),
        ("approvals", idx(doc! {"status": 1, "created_at": -1}, Some(named("reef_status")))),
        ("approvals", idx(doc! {"task_id": 1}, Some(named("reef_task")))),
        ("audit", idx(doc! {"subject": 1, "at": -1}, Some(named("reef_subject")))),
        ("events", idx(doc! {"subject": 1}, Some(named("reef_subject")))),
        ("events", idx(doc! {"type": 1, "at": -1}, Some(named("reef_type")))),
        ("agent_revisions", idx(doc! {"agent": 1, "revision": -1}, Some(named("reef_agent")))),
        ("relationships", idx(doc! {"from": 1}, Some(named("reef_from")))),
        ("memory", idx(doc! {"product": 1, "agent": 1}, Some(named("reef_meta")))),
        ("revenue", idx(doc! {"product": 1, "at": 1}, Some(named("reef_product")))),
        ("revenue", idx(doc! {"reference": 1}, Some(named("reef_reference")))),
        ("reservations", idx(doc! {"state": 1, "expires_at": 1}, Some(named("reef_open")))),
    ]
}

/// TTL indexes used where time-series collections (which expire by themselves) are unavailable.
pub fn ttl_fallback_indexes(retention: std::time::Duration) -> Vec<(&'static str, IndexModel)> {
    vec![
        (
            "llm_calls",
            IndexModel::builder()
                .keys(doc! {"at": 1})
                .options(IndexOptions::builder().name("reef_ttl".to_string()).expire_after(retention).build())
                .build(),
        ),
        (
            "metrics",
            IndexModel::builder()
                .keys(doc! {"timestamp": 1})
                .options(IndexOptions::builder().name("reef_ttl".to_string()).expire_after(retention).build())
                .build(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use reef_core::time::parse_ts;

    #[test]
    fn claim_filter_takes_pending_or_expired_reef_leases_only() {
        let now = parse_ts("2026-11-21T09:00:00Z").unwrap();
        let f = claim_filter(&ClaimFilter::default(), &now);
        let or = f.get_array("$or").unwrap();
        assert_eq!(or[0].as_document().unwrap(), &doc! {"status": "pending"});
        let leased = or[1].as_document().unwrap();
        assert_eq!(
            leased.get_document("lease.expires_at").unwrap().get_datetime("$lt").unwrap().timestamp_millis(),
            now.timestamp_millis()
        );
        assert!(f.contains_key("reef_malformed"));
        let scoped = claim_filter(&ClaimFilter { agents: Some(vec!["rex".into()]), include_unassigned: true }, &now);
        let and = scoped.get_array("$and").unwrap();
        assert_eq!(and.len(), 2);
        assert_eq!(and[1].as_document().unwrap(), &doc! {"$or": [{"assigned_to": {"$in": ["rex"]}}, {"assigned_to": null}]});
    }

    #[test]
    fn unclaim_restores_exactly_what_the_claim_changed() {
        let before = doc! {"_id": "x", "status": "pending", "priority": "high"};
        let u = unclaim_malformed(&before, "field `priority`: invalid type", &parse_ts("2026-11-21T09:00:00Z").unwrap());
        assert_eq!(u.get_document("$set").unwrap().get_str("status").unwrap(), "pending");
        let unset = u.get_document("$unset").unwrap();
        for k in ["lease", "claimed_at", "updated_at", "attempts"] {
            assert!(unset.contains_key(k), "{k} did not exist before and must be removed");
        }
        assert!(!u.get_document("$set").unwrap().contains_key("priority"), "fields the claim did not touch are left alone");
    }

    #[test]
    fn budget_condition_and_settlement_pipeline() {
        assert_eq!(
            fits_under_cap("global:day:d", 5, 100),
            doc! {"_id": "global:day:d", "$expr": {"$lte": [{"$add": ["$spent", "$reserved", 5i64]}, 100i64]}}
        );
        let p = close_scope(10, 7, &parse_ts("2026-11-21T09:00:00Z").unwrap());
        assert_eq!(p.len(), 1, "one stage: all fields computed from the same prior document");
        let set = p[0].get_document("$set").unwrap();
        for k in ["reserved", "spent", "overshoot", "updated_at"] {
            assert!(set.contains_key(k));
        }
    }

    #[test]
    fn compare_and_set_settlement_matches_the_pipeline_arithmetic() {
        let now = parse_ts("2026-11-21T09:00:00Z").unwrap();
        let (f, u) = close_scope_cas("s", 90, 30, 100, 30, 25, &now);
        assert_eq!(f, doc! {"_id": "s", "spent": 90i64, "reserved": 30i64});
        let set = u.get_document("$set").unwrap();
        assert_eq!((set.get_i64("spent").unwrap(), set.get_i64("reserved").unwrap()), (115, 0));
        assert_eq!(u.get_document("$inc").unwrap().get_i64("overshoot").unwrap(), 15, "only the part past the cap is overshoot");
    }

    #[test]
    fn traversal_uses_graph_lookup_with_depth_field() {
        let p = traversal_pipeline("product:quickform", 3, "relationships");
        let g = p[1].get_document("$graphLookup").unwrap();
        assert_eq!(g.get_i64("maxDepth").unwrap(), 2, "edges from the start are hop 0, so depth 3 is maxDepth 2");
        assert_eq!(g.get_str("connectFromField").unwrap(), "to");
        assert_eq!(g.get_str("connectToField").unwrap(), "from");
        assert!(!g.contains_key("depthField"));
    }

    #[test]
    fn vector_search_filters_in_the_index_and_text_after() {
        let f = MemoryFilter { product: Some("qf".into()), text: Some("stripe.com".into()), ..Default::default() };
        let p = vector_search_pipeline(&[0.1, 0.2], &f, 5);
        let vs = p[0].get_document("$vectorSearch").unwrap();
        assert_eq!(vs.get_document("filter").unwrap(), &doc! {"product": "qf"});
        assert_eq!(vs.get_i64("limit").unwrap(), 50, "over-fetch when a text condition follows");
        assert_eq!(p[1].get_document("$match").unwrap().get_document("content").unwrap().get_str("$regex").unwrap(), "stripe\\.com");
        let def = vector_index_definition(384);
        assert_eq!(def.get_array("fields").unwrap()[0].as_document().unwrap().get_i64("numDimensions").unwrap(), 384);
    }

    #[test]
    fn index_specs_include_the_claim_index_and_a_partial_unique_idempotency_key() {
        let idx = indexes();
        let claim = idx.iter().find(|(c, m)| *c == "tasks" && m.keys == doc! {"status": 1, "priority": -1, "created_at": 1});
        assert!(claim.is_some());
        let idem = idx.iter().find(|(_, m)| m.keys == doc! {"idempotency_key": 1}).unwrap();
        let o = idem.1.options.as_ref().unwrap();
        assert_eq!(o.unique, Some(true));
        assert!(o.partial_filter_expression.is_some(), "tasks without a key must not collide on null");
        let ttl = ttl_fallback_indexes(std::time::Duration::from_secs(30 * 86400));
        assert_eq!(ttl[0].1.options.as_ref().unwrap().expire_after, Some(std::time::Duration::from_secs(2_592_000)));
    }
}
