//! The conformance suite: what every store must do, checked the same way on each. This half:
//! tasks and claims, the ledger, approvals, the watch and agents; `knowledge` holds the rest.

use crate::harness::Fixture;
use futures::StreamExt;
use reef_core::time::parse_ts;
use reef_core::*;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

crate::conformance!(
    create_get_and_idempotency_key,
    tasks_are_found_by_text_in_their_title_or_id,
    claim_takes_highest_priority_then_oldest,
    concurrent_claimers_take_each_task_exactly_once,
    stale_lease_token_cannot_complete,
    writes_that_arrive_together_keep_their_own_outcomes,
    expired_lease_is_reclaimed_and_old_holder_fenced,
    external_seed_shaped_task_is_claimable,
    task_claimed_by_another_program_is_never_claimed_again,
    malformed_documents_are_reported_not_lost,
    concurrent_reservations_never_pass_the_cap,
    reservation_is_all_or_nothing_across_scopes,
    settle_release_and_expiry_move_the_money_right,
    approvals_are_decided_once,
    watch_sees_writes_from_another_handle_and_resumes,
    the_event_log_is_read_by_position_in_order,
    retention_prunes_events_but_keeps_what_a_webhook_still_owes,
    agent_config_changes_become_revisions,
);

pub(crate) fn t0() -> Timestamp {
    parse_ts("2026-11-21T09:00:00Z").unwrap()
}

pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(crate) async fn add(p: &Ports, title: &str, priority: i64, at: Timestamp) -> Task {
    let mut n = NewTask::titled(title);
    n.priority = priority;
    p.tasks.create(n, at).await.unwrap().0
}

async fn create_get_and_idempotency_key(f: Fixture) {
    let p = &f.ports;
    let mut n = NewTask::titled("ship quickform");
    n.idempotency_key = Some("k-1".into());
    n.product = Some("quickform".into());
    let (a, created) = p.tasks.create(n.clone(), t0()).await.unwrap();
    assert!(created);
    assert_eq!(a.status, TaskStatus::Pending);
    let (b, created) = p.tasks.create(n, t0()).await.unwrap();
    assert!(!created, "the same idempotency key must not create a second task");
    assert_eq!(a.id, b.id);
    let got = p.tasks.get(&a.id).await.unwrap();
    assert_eq!(got, a, "a task reads back as it was written");
    let mut dep = NewTask::titled("after it");
    dep.depends_on = vec![a.id.clone()];
    let (d, _) = p.tasks.create(dep, t0()).await.unwrap();
    assert_eq!(d.status, TaskStatus::Blocked, "a task with dependencies starts blocked");
    let counts = p.tasks.counts().await.unwrap();
    assert_eq!(counts, vec![(TaskStatus::Pending, 1), (TaskStatus::Blocked, 1)]);
    assert!(matches!(p.tasks.get("nope").await, Err(StoreError::NotFound { .. })));
}

async fn tasks_are_found_by_text_in_their_title_or_id(f: Fixture) {
    let p = &f.ports;
    let a = add(p, "Ship QuickForm v2", 0, t0()).await;
    add(p, "Research uptime pricing", 0, t0()).await;
    // Text that means something to SQL's LIKE or to a regex is only text.
    let odd = add(p, "100% done_ish (v1.2)*", 0, t0()).await;
    let find = |t: &str| {
        let q = TaskQuery { text: Some(t.into()), ..Default::default() };
        async move { p.tasks.list(&q).await.unwrap().items.into_iter().map(|t| t.title).collect::<Vec<_>>() }
    };
    assert_eq!(find("quickform").await, vec!["Ship QuickForm v2"], "case-insensitive, in the title");
    assert_eq!(find(&a.id[a.id.len() - 12..]).await, vec!["Ship QuickForm v2"], "or the id");
    assert_eq!(find("100% done_ish (v1.2)*").await, vec![odd.title.clone()]);
    assert!(find("%").await == vec![odd.title.clone()], "a % is a percent sign, not a wildcard");
    assert!(find("_").await == vec![odd.title.clone()], "an _ is an underscore");
    assert!(find(".*").await.is_empty(), "a regex is text");
    assert!(find("nothing like it").await.is_empty());
}

async fn claim_takes_highest_priority_then_oldest(f: Fixture) {
    let p = &f.ports;
    let old_low = add(p, "old low", 1, t0()).await;
    let new_high = add(p, "new high", 5, t0() + chrono::Duration::seconds(2)).await;
    let old_high = add(p, "old high", 5, t0() + chrono::Duration::seconds(1)).await;
    let now = t0() + chrono::Duration::seconds(10);
    let order: Vec<String> = {
        let mut v = vec![];
        while let Some(t) = p.tasks.claim("w", &ClaimFilter::default(), secs(30), now).await.unwrap() {
            assert_eq!(t.status, TaskStatus::Claimed);
            assert_eq!(t.attempts, 1);
            assert!(t.lease.is_some());
            v.push(t.id);
        }
        v
    };
    assert_eq!(order, vec![old_high.id, new_high.id, old_low.id]);
}

async fn concurrent_claimers_take_each_task_exactly_once(f: Fixture) {
    let p = f.ports.clone();
    const N: usize = 2000;
    for i in 0..N {
        add(&p, &format!("t{i}"), (i % 7) as i64, t0()).await;
    }
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut handles = vec![];
    for w in 0..16 {
        let (p, seen) = (p.clone(), seen.clone());
        handles.push(tokio::spawn(async move {
            let worker = format!("w{w}");
            while let Some(t) = p.tasks.claim(&worker, &ClaimFilter::default(), secs(300), t0()).await.unwrap() {
                let token = t.lease.as_ref().unwrap().token.clone();
                p.tasks
                    .finish(
                        &t.id,
                        &token,
                        Outcome::Succeeded { result: worker.clone(), work_products: Default::default(), review: false },
                        t0(),
                    )
                    .await
                    .unwrap();
                seen.lock().unwrap().push(t.id);
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let seen = seen.lock().unwrap().clone();
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(seen.len(), N, "every task claimed once: {} claims for {N} tasks", seen.len());
    assert_eq!(unique.len(), N, "no task claimed twice");
    assert_eq!(p.tasks.counts().await.unwrap(), vec![(TaskStatus::Done, N as u64)]);
}

async fn stale_lease_token_cannot_complete(f: Fixture) {
    let p = &f.ports;
    let t = add(p, "x", 0, t0()).await;
    let c = p.tasks.claim("w1", &ClaimFilter::default(), secs(30), t0()).await.unwrap().unwrap();
    assert_eq!(c.id, t.id);
    let err = p.tasks.finish(&t.id, "not-the-token", Outcome::Failed { error: "x".into() }, t0()).await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost { .. }), "wrong token must be fenced, got {err:?}");
    assert_eq!(p.tasks.get(&t.id).await.unwrap().status, TaskStatus::Claimed, "a fenced write changes nothing");
    let ev = |id: &str| Event {
        id: id.into(),
        kind: "task.failed".into(),
        at: t0(),
        actor: "agent:rex".into(),
        subject: Some(t.id.clone()),
        data: json!({}),
    };
    assert!(matches!(
        p.tasks.finish_with(&t.id, "stale", Outcome::Failed { error: "x".into() }, Some(ev("e-stale")), t0()).await,
        Err(StoreError::LeaseLost { .. })
    ));
    let tok = c.lease.as_ref().unwrap().token.clone();
    p.tasks.finish_with(&t.id, &tok, Outcome::Failed { error: "x".into() }, Some(ev("e-ok")), t0()).await.unwrap();
    let evs = p.events.recent(&EventQuery { subject: Some(t.id.clone()), limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(
        evs.items.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        vec!["e-ok"],
        "the outcome's event is written with it, and only with it"
    );
}

async fn expired_lease_is_reclaimed_and_old_holder_fenced(f: Fixture) {
    let p = &f.ports;
    let t = add(p, "x", 0, t0()).await;
    let first = p.tasks.claim("dead", &ClaimFilter::default(), secs(30), t0()).await.unwrap().unwrap();
    let tok1 = first.lease.unwrap().token;
    p.tasks.start(&t.id, &tok1, t0()).await.unwrap();
    assert!(
        p.tasks.claim("other", &ClaimFilter::default(), secs(30), t0() + chrono::Duration::seconds(29)).await.unwrap().is_none(),
        "a live lease is not taken"
    );
    let later = t0() + chrono::Duration::seconds(31);
    let second = p.tasks.claim("alive", &ClaimFilter::default(), secs(30), later).await.unwrap().expect("an expired lease comes back");
    assert_eq!(second.id, t.id);
    assert_eq!(second.attempts, 2, "the dead worker's attempt counts");
    let tok2 = second.lease.unwrap().token;
    assert_ne!(tok1, tok2);
    assert!(matches!(p.tasks.renew(&t.id, &tok1, secs(30), later).await, Err(StoreError::LeaseLost { .. })));
    assert!(matches!(
        p.tasks
            .finish(&t.id, &tok1, Outcome::Succeeded { result: "late".into(), work_products: Default::default(), review: false }, later)
            .await,
        Err(StoreError::LeaseLost { .. })
    ));
    let done = p
        .tasks
        .finish(&t.id, &tok2, Outcome::Succeeded { result: "ok".into(), work_products: Default::default(), review: false }, later)
        .await
        .unwrap();
    assert_eq!(done.status, TaskStatus::Done);
    assert_eq!(done.result.as_deref(), Some("ok"));
    assert!(done.lease.is_none());

    // A clean requeue (operator stop, shutdown) gives its attempt back; a retry does not.
    let u = add(p, "y", 0, t0()).await;
    let c = p.tasks.claim("w", &ClaimFilter::default(), secs(30), later).await.unwrap().unwrap();
    assert_eq!((c.id.as_str(), c.attempts), (u.id.as_str(), 1));
    let back = p.tasks.finish(&u.id, &c.lease.unwrap().token, Outcome::Requeue { error: "worker shut down".into() }, later).await.unwrap();
    assert_eq!((back.status, back.attempts), (TaskStatus::Pending, 0));
    let c = p.tasks.claim("w", &ClaimFilter::default(), secs(30), later).await.unwrap().unwrap();
    let back = p.tasks.finish(&u.id, &c.lease.unwrap().token, Outcome::Retry { error: "rate limited".into() }, later).await.unwrap();
    assert_eq!((back.status, back.attempts), (TaskStatus::Pending, 1));

    // Waiting for subtasks blocks the task on them (each once) and gives the attempt back.
    let (w, _) = p.tasks.create(NewTask::titled("waits"), t0()).await.unwrap();
    let c = loop {
        let c = p.tasks.claim("w", &ClaimFilter::default(), secs(30), later).await.unwrap().unwrap();
        if c.id == w.id {
            break c;
        }
        p.tasks.finish(&c.id, &c.lease.unwrap().token, Outcome::Failed { error: "not this one".into() }, later).await.unwrap();
    };
    let on = vec!["sub-1".to_string(), "sub-1".to_string(), "sub-2".to_string()];
    let back = p.tasks.finish(&w.id, &c.lease.unwrap().token, Outcome::Blocked { on }, later).await.unwrap();
    assert_eq!((back.status, back.attempts), (TaskStatus::Blocked, 0));
    assert_eq!(back.depends_on, ["sub-1", "sub-2"]);
    assert!(back.lease.is_none());
}

async fn external_seed_shaped_task_is_claimable(f: Fixture) {
    // Seed 000's shape, as mongosh or an OpenClaw agent would insert it, plus a field REEF
    // does not know.
    f.raw
        .insert(
            "tasks",
            json!({"_id": "ext-1", "title": "Write launch tweet", "status": "pending", "assigned_to": null,
                                "priority": 3, "created_at": "2026-11-21T08:00:00.000Z", "openclaw_channel": "whatsapp"}),
        )
        .await;
    let t = f.ports.tasks.claim("w", &ClaimFilter::default(), secs(30), t0()).await.unwrap().expect("external task claimable");
    assert_eq!(t.id, "ext-1");
    assert_eq!(t.priority, 3);
    let tok = t.lease.unwrap().token;
    f.ports
        .tasks
        .finish("ext-1", &tok, Outcome::Succeeded { result: "done".into(), work_products: Default::default(), review: false }, t0())
        .await
        .unwrap();
    let raw = f.raw.fetch("tasks", "ext-1").await.unwrap();
    assert_eq!(raw["openclaw_channel"], "whatsapp", "fields REEF does not know survive its writes");
    assert_eq!(raw["status"], "done");
}

async fn task_claimed_by_another_program_is_never_claimed_again(f: Fixture) {
    // What seed 000's findOneAndUpdate leaves behind: claimed, assigned, no REEF lease.
    f.raw
        .insert(
            "tasks",
            json!({"_id": "ext-2", "title": "theirs", "status": "claimed", "assigned_to": "rex",
                                "claimed_at": "2026-11-21T08:00:00.000Z", "priority": 9, "created_at": "2026-11-21T07:00:00.000Z"}),
        )
        .await;
    let far_future = t0() + chrono::Duration::days(30);
    assert!(f.ports.tasks.claim("w", &ClaimFilter::default(), secs(30), far_future).await.unwrap().is_none());
}

async fn malformed_documents_are_reported_not_lost(f: Fixture) {
    f.raw.insert("tasks", json!({"_id": "bad-1", "status": "pending", "priority": "high", "created_at": "2026-11-21T08:00:00.000Z"})).await;
    let good = add(&f.ports, "good", 0, t0()).await;
    let l = f.ports.tasks.list(&TaskQuery::default()).await.unwrap();
    assert_eq!(l.items.len(), 1);
    assert_eq!(l.malformed.len(), 1);
    assert_eq!(l.malformed[0].id, "bad-1");
    assert!(
        l.malformed[0].reason.contains("priority") || l.malformed[0].reason.contains("title"),
        "reason names the problem: {}",
        l.malformed[0].reason
    );
    let c = f.ports.tasks.claim("w", &ClaimFilter::default(), secs(30), t0()).await.unwrap().unwrap();
    assert_eq!(c.id, good.id, "the malformed task is skipped, the good one claimed");
    assert!(f.ports.tasks.claim("w", &ClaimFilter::default(), secs(30), t0()).await.unwrap().is_none());
    let raw = f.raw.fetch("tasks", "bad-1").await.expect("malformed document still there");
    assert_eq!(raw["priority"], "high", "its fields are not rewritten");
    assert_eq!(raw["status"], "pending");
    let err = f.ports.tasks.get("bad-1").await.unwrap_err();
    assert!(matches!(err, StoreError::Malformed { .. }), "{err:?}");
}

async fn concurrent_reservations_never_pass_the_cap(f: Fixture) {
    let p = f.ports.clone();
    let cap = Usd::from_dollars(1.0);
    let scope = ScopeKey("global:day:2026-11-21".into());
    let mut handles = vec![];
    for i in 0..64 {
        let (p, scope) = (p.clone(), scope.clone());
        handles.push(tokio::spawn(async move {
            let r = p
                .ledger
                .reserve(
                    ReserveRequest {
                        id: format!("r{i}"),
                        scopes: vec![ScopeCap { scope, cap }],
                        amount: Usd::from_dollars(0.05),
                        expires_at: t0() + chrono::Duration::minutes(5),
                        task_id: None,
                        agent: None,
                    },
                    t0(),
                )
                .await;
            match r {
                Ok(r) => {
                    // Real cost is a bit lower than the worst case, as it usually is.
                    p.ledger.settle(&r.id, Usd::from_dollars(0.04), t0()).await.unwrap();
                    true
                }
                Err(StoreError::BudgetRefused { .. }) => false,
                Err(e) => panic!("unexpected error {e}"),
            }
        }));
    }
    let mut ok = 0;
    for h in handles {
        ok += h.await.unwrap() as usize;
    }
    let t = &p.ledger.totals(&[scope]).await.unwrap()[0];
    assert!(t.spent + t.reserved <= cap, "spent {} + reserved {} passed cap {}", t.spent, t.reserved, cap);
    assert_eq!(t.reserved, Usd::ZERO);
    assert_eq!(t.spent, Usd::from_dollars(0.04) * ok as i64);
    assert!(ok >= 20, "the cap admits at least 20 worst-case calls; {ok} got through");
    assert!(ok < 64, "not every call fits");
}

async fn reservation_is_all_or_nothing_across_scopes(f: Fixture) {
    let l = &f.ports.ledger;
    let roomy = ScopeCap { scope: ScopeKey("global:day:d".into()), cap: Usd::from_dollars(100.0) };
    let tight = ScopeCap { scope: ScopeKey("agent:blaze:day:d".into()), cap: Usd::from_dollars(1.0) };
    let req = |id: &str, amt: f64| ReserveRequest {
        id: id.into(),
        scopes: vec![roomy.clone(), tight.clone()],
        amount: Usd::from_dollars(amt),
        expires_at: t0() + chrono::Duration::minutes(5),
        task_id: None,
        agent: Some("blaze".into()),
    };
    l.reserve(req("a", 0.8), t0()).await.unwrap();
    let err = l.reserve(req("b", 0.5), t0()).await.unwrap_err();
    match &err {
        StoreError::BudgetRefused { scope, .. } => assert_eq!(scope, "agent:blaze:day:d", "the refusal names the scope that is full"),
        e => panic!("expected BudgetRefused, got {e:?}"),
    }
    assert!(err.to_string().contains("agent:blaze:day:d"));
    let totals = l.totals(&[roomy.scope.clone(), tight.scope.clone()]).await.unwrap();
    for t in totals {
        assert_eq!(t.reserved, Usd::from_dollars(0.8), "{}: the refused reservation left nothing behind", t.scope.0);
    }
}

async fn settle_release_and_expiry_move_the_money_right(f: Fixture) {
    let l = &f.ports.ledger;
    let s = ScopeCap { scope: ScopeKey("task:t1".into()), cap: Usd::from_dollars(1.0) };
    let mk = |id: &str| ReserveRequest {
        id: id.into(),
        scopes: vec![s.clone()],
        amount: Usd::from_dollars(0.3),
        expires_at: t0() + chrono::Duration::seconds(60),
        task_id: Some("t1".into()),
        agent: None,
    };
    l.reserve(mk("settled"), t0()).await.unwrap();
    l.reserve(mk("released"), t0()).await.unwrap();
    l.reserve(mk("abandoned"), t0()).await.unwrap();
    l.settle("settled", Usd::from_dollars(0.1), t0()).await.unwrap();
    l.settle("settled", Usd::from_dollars(0.1), t0()).await.unwrap(); // idempotent
    l.release("released", t0()).await.unwrap();
    // A long run renews its hold: extended, it outlives the sweep the others do not.
    l.reserve(mk("renewed"), t0()).await.unwrap();
    let r = l.extend("renewed", t0() + chrono::Duration::seconds(600)).await.unwrap();
    assert_eq!(r.expires_at, t0() + chrono::Duration::seconds(600));
    assert_eq!(l.expire(t0() + chrono::Duration::seconds(30)).await.unwrap(), 0, "not yet expired");
    assert_eq!(l.expire(t0() + chrono::Duration::seconds(61)).await.unwrap(), 1, "the abandoned one expires, the renewed one not");
    let t = &l.totals(std::slice::from_ref(&s.scope)).await.unwrap()[0];
    assert_eq!((t.spent, t.reserved), (Usd::from_dollars(0.1), Usd::from_dollars(0.3)), "the renewed hold still counts");
    assert!(
        matches!(l.extend("abandoned", t0() + chrono::Duration::seconds(600)).await, Err(StoreError::Conflict(_))),
        "an expired hold cannot be revived"
    );
    l.release("renewed", t0()).await.unwrap();
    let t = &l.totals(std::slice::from_ref(&s.scope)).await.unwrap()[0];
    assert_eq!((t.spent, t.reserved), (Usd::from_dollars(0.1), Usd::ZERO));
    // A CLI agent that overshoots: spend is recorded past the cap and the overshoot is shown.
    l.reserve(mk("cli"), t0()).await.unwrap();
    l.settle("cli", Usd::from_dollars(1.5), t0()).await.unwrap();
    let t = &l.totals(std::slice::from_ref(&s.scope)).await.unwrap()[0];
    assert_eq!(t.spent, Usd::from_dollars(1.6));
    assert_eq!(t.overshoot, Usd::from_dollars(0.6));
    // Calls are recorded and summed; monthly roll-ups are kept apart from the (expiring) calls.
    let roll = |a: &str| vec![ScopeKey("spend:month:2026-11:global".into()), ScopeKey::spend_month("2026-11", "agent", a)];
    for (i, agent) in ["rex", "rex", "kev"].iter().enumerate() {
        let call = LlmCall {
            id: format!("c{i}"),
            at: t0(),
            agent: agent.to_string(),
            product: None,
            task_id: None,
            model: "cheap".into(),
            provider: None,
            prompt_tokens: 10,
            completion_tokens: 20,
            cost: Usd::from_dollars(0.01),
            latency_ms: 5,
            error: None,
            finished_at: None,
        };
        l.record_call(call.clone(), &roll(agent)).await.unwrap();
        l.record_call(call, &roll(agent)).await.unwrap(); // a retried record counts once
    }
    let rolled = l.totals_with_prefix("spend:month:2026-11:").await.unwrap();
    let get = |k: &str| rolled.iter().find(|t| t.scope.0 == k).map(|t| t.spent);
    assert_eq!(get("spend:month:2026-11:global"), Some(Usd::from_dollars(0.03)));
    assert_eq!(get("spend:month:2026-11:agent:rex"), Some(Usd::from_dollars(0.02)));
    let by_agent = l.spend(SpendGroup::Agent, t0(), t0() + chrono::Duration::days(1)).await.unwrap();
    assert_eq!(by_agent[0].key, "rex");
    assert_eq!(by_agent[0].cost, Usd::from_dollars(0.02));
    assert_eq!(by_agent[0].calls, 2);
    assert_eq!(f.ports.metrics.prune(t0() + chrono::Duration::days(31)).await.unwrap(), 3, "calls expire");
    assert_eq!(l.totals_with_prefix("spend:month:2026-11:").await.unwrap().len(), rolled.len(), "roll-ups do not");
}

async fn approvals_are_decided_once(f: Fixture) {
    let a = &f.ports.approvals;
    let req = |exp| NewApproval {
        task_id: "t".into(),
        action_class: "production_deploy".into(),
        summary: "deploy quickform".into(),
        work_products: WorkProducts { preview_url: Some("https://preview.example/qf".into()), ..Default::default() },
        requested_by: "agent:rex".into(),
        expires_at: exp,
        attempt: 1,
        in_task: false,
    };
    let x = a.request(req(None), t0()).await.unwrap();
    let y = a.request(req(Some(t0() + chrono::Duration::hours(1))), t0()).await.unwrap();
    assert_eq!(a.list(Some(ApprovalStatus::Pending), 10).await.unwrap().items.len(), 2);
    let d = a.decide(&x.id, Decision::Approve, "operator:adam", None, t0()).await.unwrap();
    assert_eq!(d.status, ApprovalStatus::Approved);
    assert!(matches!(a.decide(&x.id, Decision::Reject, "operator:adam", Some("no"), t0()).await, Err(StoreError::Conflict(_))));
    let expired = a.expire_due(t0() + chrono::Duration::hours(2)).await.unwrap();
    assert_eq!(expired.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), vec![y.id.clone()]);
    assert!(matches!(a.decide(&y.id, Decision::Approve, "operator:adam", None, t0()).await, Err(StoreError::Conflict(_))));
    let for_t = a.for_task("t").await.unwrap();
    assert_eq!(for_t.len(), 2, "both requests about task t");
    assert!(a.for_task("other").await.unwrap().is_empty());
    let got = a.get(&x.id).await.unwrap();
    assert_eq!(got.decided_by.as_deref(), Some("operator:adam"));
    assert_eq!(got.work_products.preview_url.as_deref(), Some("https://preview.example/qf"));
}

async fn watch_sees_writes_from_another_handle_and_resumes(f: Fixture) {
    let mut stream = f.ports.changes.watch(None).await.unwrap();
    let other = (f.reopen)().await;
    // Real time here: a standalone MongoDB's polling watch follows the documents' time fields.
    let t = add(&other, "from elsewhere", 0, SystemClock.now()).await;
    let ch = tokio::time::timeout(secs(10), stream.next()).await.expect("change within 10 s").unwrap().unwrap();
    assert_eq!((ch.collection.as_str(), ch.op, ch.id.as_str()), ("tasks", ChangeOp::Insert, t.id.as_str()));
    f.ports.changes.save_cursor("dispatcher", &ch.token).await.unwrap();
    drop(stream);
    // Missed while not watching: seen on resume from the saved cursor.
    let t2 = add(&other, "while away", 0, SystemClock.now()).await;
    let tok = f.ports.changes.load_cursor("dispatcher").await.unwrap().unwrap();
    let mut resumed = f.ports.changes.watch(Some(tok)).await.unwrap();
    let ch2 = tokio::time::timeout(secs(10), resumed.next()).await.expect("resumed change").unwrap().unwrap();
    assert_eq!(ch2.id, t2.id, "resuming delivers what happened after the cursor, nothing before");
}

async fn agent_config_changes_become_revisions(f: Fixture) {
    let g = &f.ports.agents;
    let mut cfg = reef_core::domain::agent::default_agents().remove(1);
    g.upsert(cfg.clone(), "operator:adam", t0()).await.unwrap();
    let same = g.upsert(cfg.clone(), "operator:adam", t0()).await.unwrap();
    assert_eq!(same.revision, 1, "an unchanged config is not a new revision");
    cfg.prompt = "You are Rex, now stricter about tests.".into();
    let a = g.upsert(cfg.clone(), "operator:adam", t0()).await.unwrap();
    assert_eq!(a.revision, 2);
    let revs = g.revisions("rex").await.unwrap();
    assert_eq!(revs.iter().map(|r| r.revision).collect::<Vec<_>>(), vec![2, 1]);
    assert_ne!(revs[0].config.prompt, revs[1].config.prompt);
    g.heartbeat("rex", AgentStatus::Working, Some("t1"), t0()).await.unwrap();
    let got = g.get("rex").await.unwrap();
    assert_eq!((got.status, got.current_task.as_deref(), got.heartbeat_at), (AgentStatus::Working, Some("t1"), Some(t0())));
    assert_eq!(got.config.prompt, cfg.prompt, "a heartbeat keeps the config");
    assert!(matches!(g.heartbeat("ghost", AgentStatus::Idle, None, t0()).await, Err(StoreError::NotFound { .. })));
}

async fn the_event_log_is_read_by_position_in_order(f: Fixture) {
    let log = &f.ports.events;
    assert_eq!(log.log_tail().await.unwrap(), None, "an empty log has no end yet");
    let ev = |i: i64| Event {
        id: format!("ev-{i:03}"),
        kind: if i % 2 == 0 { "task.output".into() } else { "approval.requested".into() },
        at: t0() + chrono::Duration::milliseconds(i),
        actor: "test".into(),
        subject: None,
        data: serde_json::json!({"i": i}),
    };
    for i in 0..25 {
        log.append(ev(i)).await.unwrap();
    }
    // Paged by position, whatever the kinds: every event once, in order.
    let (mut seen, mut after) = (vec![], None::<String>);
    loop {
        let page = log.log(after.as_deref(), None, 7).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = Some(page.last().unwrap().0.clone());
        seen.extend(page.into_iter().map(|(_, e)| e.id));
    }
    assert_eq!(seen, (0..25).map(|i| format!("ev-{i:03}")).collect::<Vec<_>>());
    assert_eq!(log.log_tail().await.unwrap(), after, "the tail is the last position read");
    let from = log.log(None, Some(t0() + chrono::Duration::milliseconds(20)), 100).await.unwrap();
    assert_eq!(from.first().map(|(_, e)| e.id.as_str()), Some("ev-020"), "from a time on");
    assert!(log.log(Some("not a position"), None, 5).await.is_err(), "a foreign position is refused, not guessed");
}

async fn retention_prunes_events_but_keeps_what_a_webhook_still_owes(f: Fixture) {
    let log = &f.ports.events;
    let day = |d: i64| t0() + chrono::Duration::days(d);
    // One event a day for 10 days, alternately agent output and a task event.
    for d in 0..10 {
        let kind = if d % 2 == 0 { "task.output" } else { "task.done" };
        log.append(Event { id: format!("d{d:02}"), kind: kind.into(), at: day(d), actor: "t".into(), subject: None, data: json!({}) })
            .await
            .unwrap();
    }
    let ids = |l: Vec<(String, Event)>| l.into_iter().map(|(_, e)| e.id).collect::<Vec<_>>();
    let all = log.log(None, None, 100).await.unwrap();
    let pos = |id: &str| all.iter().find(|(_, e)| e.id == id).unwrap().0.clone();
    let left = || async { ids(log.log(None, None, 100).await.unwrap()) };

    // Output lines older than day 5 go; other kinds stay.
    let n =
        log.prune(&EventPrune { before: day(5), kind: Some("task.output".into()), owed_after: vec![], owed_before: day(0) }).await.unwrap();
    assert_eq!(n, 3, "d00, d02, d04");
    assert_eq!(left().await, ["d01", "d03", "d05", "d06", "d07", "d08", "d09"]);

    // Everything older than day 8 would go, but one webhook has been sent only up to d03 and
    // another up to d07: d05 onwards is still owed to the first, so it stays.
    let owed = vec![pos("d07"), pos("d03")];
    let n = log.prune(&EventPrune { before: day(8), kind: None, owed_after: owed.clone(), owed_before: day(0) }).await.unwrap();
    assert_eq!(n, 2, "d01 and d03 were sent everywhere");
    assert_eq!(left().await, ["d05", "d06", "d07", "d08", "d09"]);

    // A receiver down longer than owed_days: what it is owed from before then goes too.
    let n = log.prune(&EventPrune { before: day(8), kind: None, owed_after: owed, owed_before: day(7) }).await.unwrap();
    assert_eq!(n, 2, "d05 and d06 are past the owed limit");
    assert_eq!(left().await, ["d07", "d08", "d09"]);
}

/// Many writes at once, half of them fenced out: each keeps its own outcome (the embedded store
/// commits writes that arrive together in one transaction, each in a savepoint of its own).
async fn writes_that_arrive_together_keep_their_own_outcomes(f: Fixture) {
    let p = &f.ports;
    let mut claimed = vec![];
    for i in 0..20 {
        add(p, &format!("t{i}"), 0, t0()).await;
        claimed.push(p.tasks.claim("w1", &ClaimFilter::default(), secs(30), t0()).await.unwrap().unwrap());
    }
    let ev = |id: String, task: &str| Event {
        id,
        kind: "task.done".into(),
        at: t0(),
        actor: "agent:rex".into(),
        subject: Some(task.into()),
        data: json!({}),
    };
    let done = || Outcome::Succeeded { result: "ok".into(), work_products: WorkProducts::default(), review: false };
    let tokens: Vec<String> = claimed.iter().map(|c| c.lease.as_ref().unwrap().token.clone()).collect();
    let mut writes = vec![];
    for (i, (c, tok)) in claimed.iter().zip(&tokens).enumerate() {
        writes.push(p.tasks.finish_with(&c.id, "stale", done(), Some(ev(format!("e-stale-{i}"), &c.id)), t0()));
        writes.push(p.tasks.finish_with(&c.id, tok, done(), Some(ev(format!("e-ok-{i}"), &c.id)), t0()));
    }
    let outcomes = futures::future::join_all(writes).await;
    for (i, o) in outcomes.iter().enumerate() {
        if i % 2 == 0 {
            assert!(matches!(o, Err(StoreError::LeaseLost { .. })), "write {i}: {o:?}");
        } else {
            assert_eq!(o.as_ref().unwrap().status, TaskStatus::Done, "write {i}");
        }
    }
    let evs = p.events.recent(&EventQuery { kind_prefix: Some("task.done".into()), limit: 100, ..Default::default() }).await.unwrap();
    let mut ids: Vec<&str> = evs.items.iter().map(|e| e.id.as_str()).collect();
    ids.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("e-ok-{i}")).collect();
    want.sort();
    assert_eq!(ids, want.iter().map(String::as_str).collect::<Vec<_>>(), "only the fenced-in writes' events");
}
