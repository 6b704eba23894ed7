//! Property tests: task documents other programs wrote — any id, any field of any type — go
//! through list, show and claim on each store without a panic and without one being lost: each is
//! read, or quarantined (reported with a reason, marked, left as written, never claimed).

use crate::harness::Fixture;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use reef_core::time::parse_ts;
use reef_core::*;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

crate::conformance!(generated_task_documents_are_read_or_quarantined_never_lost);

/// Ids a foreign program might use: REEF-like, ObjectId-like, and hostile ones.
fn any_id() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => "[a-z0-9]{8}-[a-z0-9]{4}",
        5 => "[0-9a-f]{24}",
        5 => "[a-zA-Z0-9][a-zA-Z0-9:@+._-]{0,19}",
        1 => r"\.\./[a-z]{1,8}",
        1 => "/[a-z]{1,8}/[a-z]{1,8}",
        1 => "[a-z]{1,4}[/\\\\ \t\n\u{1b}\u{7f}]{1,3}[a-z]{0,4}",
        1 => "[a-zü€日\u{202e}]{1,12}",
        1 => "[a-z]{129,200}",
        1 => Just(".".to_string()),
        1 => Just("..".to_string()),
        1 => Just("-rf".to_string()),
    ]
}

/// A JSON value of any type, for a field that should have had one.
fn any_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
        Just(json!([1, "two", null])),
        Just(json!({"nested": {"deep": [true]}})),
    ]
}

/// A field that is usually well-formed and sometimes anything at all (or missing: `None`).
fn field(good: impl Strategy<Value = Value> + 'static) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![40 => good.prop_map(Some), 2 => any_scalar().prop_map(Some), 1 => Just(None)]
}

fn any_task_doc() -> impl Strategy<Value = (String, Map<String, Value>)> {
    let status = prop_oneof![Just("pending"), Just("running"), Just("done"), Just("backlog"), Just("claimed")].prop_map(Value::from);
    let ts = prop_oneof![Just("2026-11-21T08:00:00.000Z"), Just("2026-11-21T08:30:00Z"), Just("yesterday")].prop_map(Value::from);
    (
        any_id(),
        field("\\PC{1,40}".prop_map(Value::from)),
        field("(?s).{0,200}".prop_map(Value::from)),
        field(status),
        field((-5i64..10).prop_map(Value::from)),
        field(ts),
        field((0u64..4).prop_map(Value::from)),
        field(prop_oneof![Just(json!([])), Just(json!(["nope"])), Just(json!({"k": 1}))]),
        field(prop_oneof![Just(json!("quickform")), Just(json!("../other"))]),
    )
        .prop_map(|(id, title, description, status, priority, created_at, attempts, labels, product)| {
            let mut m = Map::new();
            for (k, v) in [
                ("title", title),
                ("description", description),
                ("status", status),
                ("priority", priority),
                ("created_at", created_at),
                ("attempts", attempts),
                ("labels", labels),
                ("product", product),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            (id, m)
        })
}

async fn generated_task_documents_are_read_or_quarantined_never_lost(f: Fixture) {
    let batches: usize = std::env::var("REEF_PROPTEST_BATCHES").ok().and_then(|s| s.parse().ok()).unwrap_or(40);
    let mut runner = TestRunner::default();
    let strategy = proptest::collection::vec(any_task_doc(), 1..8);
    let mut seen: HashSet<String> = HashSet::new();
    let (mut read, mut quarantined, mut claimed_total) = (0usize, 0usize, 0usize);
    for batch in 0..batches {
        let docs = strategy.new_tree(&mut runner).expect("a generated batch").current();
        let now = parse_ts("2026-11-21T09:00:00Z").unwrap() + chrono::Duration::seconds(batch as i64);
        let mut written: HashMap<String, Value> = HashMap::new();
        for (id, mut body) in docs {
            // The stores key by id; a generated repeat would be another program's duplicate-key error.
            if !seen.insert(id.clone()) {
                continue;
            }
            body.insert("_id".into(), Value::from(id.clone()));
            let doc = Value::Object(body);
            f.raw.insert("tasks", doc.clone()).await;
            written.insert(id, doc);
        }
        let shown = serde_json::to_string(&written.values().collect::<Vec<_>>()).unwrap();

        // list: every document is an item or reported malformed, with a reason.
        let l = f.ports.tasks.list(&TaskQuery { limit: Some(10_000), ..Default::default() }).await.unwrap();
        let items: HashSet<&str> = l.items.iter().map(|t| t.id.as_str()).collect();
        let bad: HashMap<&str, &str> = l.malformed.iter().map(|m| (m.id.as_str(), m.reason.as_str())).collect();
        for id in written.keys() {
            assert!(items.contains(id.as_str()) ^ bad.contains_key(id.as_str()), "{id:?} was neither read nor reported once: {shown}");
            if check_id(id).is_err() {
                assert!(bad.get(id.as_str()).is_some_and(|r| r.contains("id")), "a bad id {id:?} is quarantined, naming the id: {shown}");
            }
        }
        for m in &l.malformed {
            assert!(!m.reason.trim().is_empty(), "a quarantined document says why");
        }

        // show: a readable one reads back, an unreadable one is a clear error, never a panic.
        for id in written.keys() {
            match f.ports.tasks.get(id).await {
                Ok(t) => {
                    assert_eq!(&t.id, id, "{shown}");
                    assert!(!bad.contains_key(id.as_str()), "{id:?} was quarantined by list but read by show: {shown}");
                }
                Err(e) => assert!(bad.contains_key(id.as_str()), "{id:?} listed fine but show failed with {e}: {shown}"),
            }
        }

        // claim: until nothing is left, each claim a readable task of a valid id, never twice.
        let mut claimed = HashSet::new();
        while let Some(t) = f.ports.tasks.claim("w-prop", &ClaimFilter::default(), Duration::from_secs(600), now).await.unwrap() {
            check_id(&t.id).expect("only tasks with valid ids are claimed");
            assert!(items.contains(t.id.as_str()) || !written.contains_key(&t.id), "claimed {:?}, which did not read: {shown}", t.id);
            assert!(claimed.insert(t.id.clone()), "{:?} claimed twice", t.id);
            assert!(claimed.len() <= seen.len(), "claims never end: {shown}");
        }
        claimed_total += claimed.len();

        // What could not be read is left as written (only REEF's marker added) and still listed.
        for (id, doc) in &written {
            if !bad.contains_key(id.as_str()) {
                continue;
            }
            let now_raw = f.raw.fetch("tasks", id).await.unwrap_or_else(|| panic!("quarantined {id:?} is gone: {shown}"));
            for (k, v) in doc.as_object().unwrap() {
                if k == "_id" {
                    continue;
                }
                let same = &now_raw[k] == v
                    || (k.ends_with("_at")
                        && now_raw[k].as_str().and_then(|s| parse_ts(s).ok()) == v.as_str().and_then(|s| parse_ts(s).ok()));
                assert!(same, "quarantined {id:?}: field {k} was rewritten from {v} to {}", now_raw[k]);
            }
        }
        let again = f.ports.tasks.list(&TaskQuery { limit: Some(10_000), ..Default::default() }).await.unwrap();
        for id in bad.keys() {
            assert!(again.malformed.iter().any(|m| m.id == *id), "quarantined {id:?} is still listed after claims: {shown}");
        }
        read += written.keys().filter(|id| items.contains(id.as_str())).count();
        quarantined += written.keys().filter(|id| bad.contains_key(id.as_str())).count();
    }
    eprintln!(
        "generated task documents: {} in {batches} batches — {read} read, {quarantined} quarantined, {claimed_total} claimed",
        seen.len()
    );
    assert!(read > 0 && quarantined > 0, "the generator reaches both sides ({read} read, {quarantined} quarantined)");
}
