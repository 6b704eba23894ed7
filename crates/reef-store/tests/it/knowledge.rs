//! The conformance suite's second half: memory, the graph, revenue, archives, named leases,
//! the event and audit logs, and shared settings — checked the same way on each store.

use crate::conformance::{add, secs, t0};
use crate::harness::Fixture;
use reef_core::time::{fmt_ts, parse_ts};
use reef_core::*;
use serde_json::json;
use std::sync::Arc;

crate::conformance!(
    memory_search_ranks_by_similarity_within_filters,
    memory_rejects_mixed_dimensions,
    memory_index_has_one_embedder_and_reembed_switches_it,
    graph_traversal_handles_cycles_and_depth,
    revenue_is_idempotent_and_kept_per_currency,
    archive_round_trips_into_a_fresh_store,
    named_lease_has_one_holder_at_a_time,
    events_and_audit_are_listed_newest_first,
    routing_never_overrides_an_assignment_and_settings_are_shared,
);

fn mem(id: &str, v: Vec<f32>, product: &str) -> MemoryDoc {
    MemoryDoc {
        id: id.into(),
        content: format!("note {id}"),
        kind: "memory".into(),
        agent: Some("scout".into()),
        product: Some(product.into()),
        embedding: v,
        created_at: t0(),
        metadata: json!({}),
    }
}

async fn memory_search_ranks_by_similarity_within_filters(f: Fixture) {
    let m = &f.ports.memory;
    m.put(mem("near", vec![1.0, 0.1, 0.0], "qf")).await.unwrap();
    m.put(mem("far", vec![0.0, 0.0, 1.0], "qf")).await.unwrap();
    m.put(mem("nearest-other-product", vec![1.0, 0.0, 0.0], "other")).await.unwrap();
    let all = m.search(&[1.0, 0.0, 0.0], &MemoryFilter::default(), 2).await.unwrap();
    assert_eq!(all.hits.iter().map(|h| h.doc.id.as_str()).collect::<Vec<_>>(), vec!["nearest-other-product", "near"]);
    assert!((all.hits[0].score - 1.0).abs() < 1e-5);
    let qf = m.search(&[1.0, 0.0, 0.0], &MemoryFilter { product: Some("qf".into()), ..Default::default() }, 5).await.unwrap();
    assert_eq!(qf.hits.iter().map(|h| h.doc.id.as_str()).collect::<Vec<_>>(), vec!["near", "far"]);
    assert!(qf.hits[0].score > qf.hits[1].score);
    let text = m.search(&[1.0, 0.0, 0.0], &MemoryFilter { text: Some("FAR".into()), ..Default::default() }, 5).await.unwrap();
    assert_eq!(text.hits.len(), 1);
    assert_eq!(m.count().await.unwrap(), 3);
}

async fn memory_rejects_mixed_dimensions(f: Fixture) {
    let m = &f.ports.memory;
    m.put(mem("a", vec![1.0, 0.0, 0.0], "p")).await.unwrap();
    let e = m.put(mem("b", vec![1.0, 0.0], "p")).await.unwrap_err();
    assert!(matches!(e, StoreError::DimensionMismatch { expected: 3, got: 2 }), "{e:?}");
    assert!(matches!(m.search(&[1.0; 4], &MemoryFilter::default(), 1).await, Err(StoreError::DimensionMismatch { .. })));
    assert!(matches!(m.put(mem("c", vec![0.0, 0.0, 0.0], "p")).await, Err(StoreError::Invalid(_))));
    assert_eq!(m.dimension().await.unwrap(), Some(3));
}

/// A real embedder (feature hashing) under another name and size: what a model swap looks like
/// to the index, without needing the model in the store suite.
struct Renamed(&'static str, reef_core::embed::HashingEmbedder);

#[async_trait::async_trait]
impl reef_core::embed::Embedder for Renamed {
    fn name(&self) -> &str {
        self.0
    }
    fn dimension(&self) -> usize {
        self.1.dim
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        Ok(texts.iter().map(|t| self.1.embed_one(t)).collect())
    }
}

async fn memory_index_has_one_embedder_and_reembed_switches_it(f: Fixture) {
    use reef_core::memory::{MemoryError, MemoryIndex, NewMemory, INDEX_KEY};
    let small: Arc<dyn reef_core::embed::Embedder> = Arc::new(Renamed("small", reef_core::embed::HashingEmbedder { dim: 16 }));
    let big: Arc<dyn reef_core::embed::Embedder> = Arc::new(Renamed("big", reef_core::embed::HashingEmbedder { dim: 48 }));
    let old = MemoryIndex::new(f.ports.clone(), small.clone());
    let new = MemoryIndex::new(f.ports.clone(), big.clone());
    let item = |i: usize| NewMemory {
        id: format!("m{i:03}"),
        content: format!("note {i} about {}", if i.is_multiple_of(2) { "stripe billing" } else { "vercel deploys" }),
        kind: "note".into(),
        agent: Some("scout".into()),
        product: Some("qf".into()),
        created_at: t0(),
        metadata: if i == 3 { json!(null) } else { json!({"i": i}) },
    };
    assert_eq!(old.remember((0..150).map(item).collect()).await.unwrap(), 150);
    assert_eq!(f.ports.memory.dimension().await.unwrap(), Some(16));
    // The other embedder can neither write nor search this index: a clear error, nothing written.
    let e = new.remember(vec![item(999)]).await.unwrap_err();
    assert!(matches!(e, MemoryError::OtherEmbedder { .. }) && e.to_string().contains("reef memory reembed"), "{e}");
    assert!(new.search("billing", &MemoryFilter::default(), 3).await.is_err());
    assert_eq!(f.ports.memory.count().await.unwrap(), 150);

    // A reembed killed part-way: simulate by re-embedding only the first page by hand, with the
    // identity already switched (what reembed does first).
    let first = f.ports.memory.scan(None, 64).await.unwrap();
    assert_eq!(first.len(), 64);
    assert!(first.windows(2).all(|w| w[0].id < w[1].id), "scan pages in id order");
    let vs = big.embed(&first.iter().map(|d| d.content.clone()).collect::<Vec<_>>()).await.unwrap();
    f.ports.memory.set_embeddings(first.iter().map(|d| d.id.clone()).zip(vs).collect(), "big").await.unwrap();
    f.ports.settings.put(INDEX_KEY, json!({"embedder": "big", "dimension": 48, "reembedding_from": "small"})).await.unwrap();
    // Mid-way, a search only sees vectors of the index's new size, never misreads old ones.
    let mid = new.search("stripe billing", &MemoryFilter::default(), 200).await.unwrap();
    assert_eq!(mid.hits.len(), 64);

    let mut seen = vec![];
    let p = new.reembed(|p| seen.push(p)).await.unwrap();
    assert_eq!((p.done, p.total, p.skipped), (150, 150, 64), "the resumed run skips what the first run did");
    assert!(seen.first().unwrap().done == 0 && seen.windows(2).all(|w| w[0].done <= w[1].done));
    let ident = f.ports.settings.get(INDEX_KEY).await.unwrap().unwrap();
    assert_eq!(ident, json!({"embedder": "big", "dimension": 48}));
    assert_eq!(f.ports.memory.dimension().await.unwrap(), Some(48));
    let all = new.search("stripe billing", &MemoryFilter::default(), 200).await.unwrap();
    assert_eq!(all.hits.len(), 150, "every memory is searchable again, none lost");
    assert!(all.hits[0].doc.content.contains("stripe billing"));
    let three = f.ports.memory.get("m003").await.unwrap();
    assert_eq!(three.metadata["embedder"], "big", "a document with null metadata gets its embedder recorded too");
    assert_eq!(f.ports.memory.get("m004").await.unwrap().metadata["i"], 4, "other metadata is kept");
    // Now the old embedder is the stranger.
    assert!(matches!(old.remember(vec![item(500)]).await, Err(MemoryError::OtherEmbedder { .. })));
    assert_eq!(new.remember(vec![item(500)]).await.unwrap(), 1);
}

async fn graph_traversal_handles_cycles_and_depth(f: Fixture) {
    let g = &f.ports.graph;
    for (id, kind) in [("a", "product"), ("b", "provider"), ("c", "repository"), ("d", "customer")] {
        g.upsert_entity(Entity { id: id.into(), kind: kind.into(), name: id.to_uppercase(), properties: json!({}) }).await.unwrap();
    }
    let rel = |from: &str, to: &str| Relationship { from: from.into(), to: to.into(), kind: "links".into(), weight: 0.5, created_at: t0() };
    for (x, y) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        g.relate(rel(x, y)).await.unwrap();
    }
    let t1 = g.traverse("a", 1).await.unwrap();
    let ids = |t: &Traversal| t.nodes.iter().map(|(e, d)| (e.id.clone(), *d)).collect::<Vec<_>>();
    assert_eq!(ids(&t1), vec![("a".into(), 0), ("b".into(), 1)]);
    let t3 = g.traverse("a", 3).await.unwrap();
    assert_eq!(
        ids(&t3),
        vec![("a".into(), 0), ("b".into(), 1), ("c".into(), 2), ("d".into(), 3)],
        "the cycle back to a keeps a at depth 0"
    );
    assert_eq!(t3.edges.len(), 4);
    let t10 = g.traverse("a", 10).await.unwrap();
    assert_eq!(t10.nodes.len(), 4, "a deep walk over a cycle ends");
    assert!(matches!(g.traverse("zzz", 2).await, Err(StoreError::NotFound { .. })));
}

async fn revenue_is_idempotent_and_kept_per_currency(f: Fixture) {
    let r = &f.ports.revenue;
    let ev = |id: &str, amt: i64, cur: &str, at: &str| RevenueEvent {
        id: id.into(),
        product: "qf".into(),
        amount_minor: amt,
        currency: cur.into(),
        kind: RevenueKind::Charge,
        at: parse_ts(at).unwrap(),
        source: "stripe".into(),
        data: json!({}),
        reference: Some(format!("ch_{id}")),
    };
    assert!(r.record(ev("evt_1", 900, "usd", "2026-10-03T00:00:00Z")).await.unwrap());
    assert!(!r.record(ev("evt_1", 900, "usd", "2026-10-03T00:00:00Z")).await.unwrap(), "a replayed event is not counted twice");
    r.record(ev("evt_2", 1900, "usd", "2026-11-03T00:00:00Z")).await.unwrap();
    r.record(ev("evt_3", -900, "usd", "2026-11-04T00:00:00Z")).await.unwrap();
    r.record(ev("evt_4", 1500, "eur", "2026-11-05T00:00:00Z")).await.unwrap();
    assert!(matches!(r.record(ev("evt_5", 1, "dollars", "2026-11-05T00:00:00Z")).await, Err(StoreError::Invalid(_))));
    let rows: Vec<_> = r.by_product_month().await.unwrap().into_iter().map(|x| (x.month, x.currency, x.amount_minor)).collect();
    assert_eq!(
        rows,
        vec![("2026-10".into(), "usd".into(), 900), ("2026-11".into(), "eur".into(), 1500), ("2026-11".into(), "usd".into(), 1000)]
    );
    assert_eq!(r.product_of_reference("ch_evt_2").await.unwrap().as_deref(), Some("qf"));
    assert_eq!(r.product_of_reference("ch_nope").await.unwrap(), None);

    // Subscriptions: a late-arriving older report never overwrites a newer one.
    let sub = |status: &str, at: &str, monthly: i64| Subscription {
        id: "sub_1".into(),
        product: "qf".into(),
        customer: Some("cus_1".into()),
        status: status.into(),
        currency: "usd".into(),
        monthly_minor: monthly,
        updated_at: parse_ts(at).unwrap(),
        source: "stripe".into(),
    };
    assert!(r.upsert_subscription(sub("active", "2026-11-01T00:00:00Z", 900)).await.unwrap());
    assert!(r.upsert_subscription(sub("past_due", "2026-11-10T00:00:00Z", 1900)).await.unwrap());
    assert!(!r.upsert_subscription(sub("canceled", "2026-11-05T00:00:00Z", 900)).await.unwrap(), "older report ignored");
    let subs = r.subscriptions().await.unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!((subs[0].status.as_str(), subs[0].monthly_minor), ("past_due", 1900));
}

async fn archive_round_trips_into_a_fresh_store(f: Fixture) {
    let p = &f.ports;
    add(p, "keep me", 2, t0()).await;
    p.events
        .append(Event { id: "e1".into(), kind: "task.created".into(), at: t0(), actor: "reef".into(), subject: None, data: json!({}) })
        .await
        .unwrap();
    p.memory.put(mem("m1", vec![0.6, 0.8], "qf")).await.unwrap();
    p.metrics
        .record(&[MetricSample {
            timestamp: t0(),
            source: MetricSource { host: "dreamteam".into(), metric: "cpu.percent".into() },
            value: 12.5,
        }])
        .await
        .unwrap();
    p.ledger
        .reserve(
            ReserveRequest {
                id: "r".into(),
                scopes: vec![ScopeCap { scope: ScopeKey("global:day:x".into()), cap: Usd(100) }],
                amount: Usd(10),
                expires_at: t0(),
                task_id: None,
                agent: None,
            },
            t0(),
        )
        .await
        .unwrap();
    p.settings.put("memory.index", json!({"embedder": "hashing", "dimension": 2})).await.unwrap();
    p.revenue
        .upsert_subscription(Subscription {
            id: "sub_1".into(),
            product: "qf".into(),
            customer: None,
            status: "active".into(),
            currency: "usd".into(),
            monthly_minor: 900,
            updated_at: t0(),
            source: "stripe".into(),
        })
        .await
        .unwrap();
    let dump = p.archive.export().await.unwrap();
    let fresh = crate::harness::sqlite();
    for (coll, docs) in dump.clone() {
        fresh.ports.archive.import(&coll, docs).await.unwrap();
    }
    let again = fresh.ports.archive.export().await.unwrap();
    let norm = |d: Vec<(String, Vec<serde_json::Value>)>| {
        d.into_iter()
            .map(|(c, mut v)| {
                v.sort_by_key(|x| x.to_string());
                (c, v)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(norm(again), norm(dump), "export → import → export is the identity");
    let m = fresh.ports.memory.get("m1").await.unwrap();
    assert!((m.embedding[0] - 0.6).abs() < 1e-6);
    assert_eq!(fresh.ports.settings.get("memory.index").await.unwrap().unwrap()["embedder"], "hashing", "settings travel");
    assert_eq!(fresh.ports.revenue.subscriptions().await.unwrap().len(), 1, "subscriptions travel");
    assert_eq!(
        fresh.ports.metrics.query(Some("dreamteam"), "cpu.percent", t0(), t0() + chrono::Duration::seconds(1)).await.unwrap().len(),
        1
    );
}

async fn named_lease_has_one_holder_at_a_time(f: Fixture) {
    let l = &f.ports.leases;
    assert!(l.acquire("dispatcher", "a", secs(10), t0()).await.unwrap());
    assert!(!l.acquire("dispatcher", "b", secs(10), t0() + chrono::Duration::seconds(5)).await.unwrap());
    assert!(l.acquire("dispatcher", "a", secs(10), t0() + chrono::Duration::seconds(5)).await.unwrap(), "the holder renews");
    assert_eq!(l.holder("dispatcher", t0() + chrono::Duration::seconds(14)).await.unwrap().as_deref(), Some("a"));
    assert!(l.acquire("dispatcher", "b", secs(10), t0() + chrono::Duration::seconds(16)).await.unwrap(), "taken over after expiry");
    l.release("dispatcher", "a").await.unwrap(); // not the holder: no effect
    assert_eq!(l.holder("dispatcher", t0() + chrono::Duration::seconds(17)).await.unwrap().as_deref(), Some("b"));
}

async fn events_and_audit_are_listed_newest_first(f: Fixture) {
    let p = &f.ports;
    for (i, k) in ["task.created", "budget.alert", "task.failed"].iter().enumerate() {
        p.events
            .append(Event {
                id: format!("e{i}"),
                kind: k.to_string(),
                at: t0() + chrono::Duration::seconds(i as i64),
                actor: "reef".into(),
                subject: Some(format!("s{i}")),
                data: json!({"n": i, "note": "Stripe"}),
            })
            .await
            .unwrap();
    }
    let tasks = p.events.recent(&EventQuery { kind_prefix: Some("task.".into()), limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(tasks.items.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), vec!["e2", "e0"]);
    let text = p.events.recent(&EventQuery { text: Some("stripe".into()), limit: 2, ..Default::default() }).await.unwrap();
    assert_eq!(text.items.len(), 2);
    // The webhook relay reads forward from a time.
    let q = EventQuery { since: Some(t0() + chrono::Duration::seconds(1)), oldest_first: true, limit: 10, ..Default::default() };
    let fwd = p.events.recent(&q).await.unwrap();
    assert_eq!(fwd.items.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), vec!["e1", "e2"]);
    p.audit
        .record(AuditEntry {
            id: "a1".into(),
            at: t0(),
            actor: "operator:adam@laptop".into(),
            action: "cap.override".into(),
            subject: "rex".into(),
            old: json!(40),
            new: json!(60),
            host: Some("laptop".into()),
            reason: Some("launch day".into()),
        })
        .await
        .unwrap();
    let a = p.audit.list(Some("rex"), 10).await.unwrap();
    assert_eq!(a.items[0].reason.as_deref(), Some("launch day"));
    let _ = fmt_ts(&t0());
}

async fn routing_never_overrides_an_assignment_and_settings_are_shared(f: Fixture) {
    let p = &f.ports;
    let free = add(p, "free", 0, t0()).await;
    let mut n = NewTask::titled("taken");
    n.assigned_to = Some("rex".into());
    let (taken, _) = p.tasks.create(n, t0()).await.unwrap();
    assert!(p.tasks.route(&free.id, "scout", ModelTier::Local, t0()).await.unwrap());
    assert!(!p.tasks.route(&taken.id, "scout", ModelTier::Local, t0()).await.unwrap(), "an assignment is never overridden");
    assert!(!p.tasks.route(&free.id, "kev", ModelTier::Mid, t0()).await.unwrap(), "routed once");
    let got = p.tasks.get(&free.id).await.unwrap();
    assert_eq!((got.assigned_to.as_deref(), got.model_tier), (Some("scout"), Some(ModelTier::Local)));
    p.tasks.set_tier(&free.id, ModelTier::Cheap, t0()).await.unwrap();
    assert_eq!(p.tasks.get(&free.id).await.unwrap().model_tier, Some(ModelTier::Cheap));

    let other = (f.reopen)().await;
    p.settings.put("factory.paused", json!({"by": "operator:adam"})).await.unwrap();
    assert_eq!(other.settings.get("factory.paused").await.unwrap(), Some(json!({"by": "operator:adam"})), "another process sees it");
    assert!(other.settings.put_if_absent("alert:x", json!(1)).await.unwrap());
    assert!(!p.settings.put_if_absent("alert:x", json!(2)).await.unwrap(), "only the first marks it");
    p.settings.delete("factory.paused").await.unwrap();
    assert_eq!(other.settings.get("factory.paused").await.unwrap(), None);
}
