//! `reef demo`: a realistic factory a newcomer can look at at once — seed 000's four agents and
//! caps, products earning revenue, a knowledge graph, memories, tasks in every state, today's spend.
//! Running it again adds nothing (everything carries a fixed id or idempotency key).

use super::Out;
use reef_core::factory::Factory;
use reef_core::*;
use serde_json::json;

mod change;
mod drive;
use drive::drive_to;

pub async fn run(f: &Factory, out: &Out) -> anyhow::Result<()> {
    let now = f.now();
    let actor = "reef:demo";
    f.sync_live(actor).await?;

    let products = [
        ("quickform", "QuickForm", "live", Some("cloudflare"), Some("clerk"), vec!["prod_QF1", "price_QF_monthly"]),
        ("invoicely", "Invoicely", "live", Some("vercel"), Some("supabase"), vec!["prod_INV1"]),
        ("pagepulse", "PagePulse", "building", Some("cloudflare"), None, vec![]),
    ];
    for (id, name, status, deploy, auth, stripe) in &products {
        let p = Product {
            id: id.to_string(),
            name: name.to_string(),
            status: status.to_string(),
            deploy_target: deploy.map(String::from),
            auth_provider: auth.map(String::from),
            payment_provider: Some("stripe".into()),
            stripe_ids: stripe.iter().map(|s| s.to_string()).collect(),
            created_at: now - chrono::Duration::days(120),
        };
        reef_core::books::save_product(&f.ports, p, now).await?;
    }

    // Revenue over the last four months, per product; one refund, one sale in euros.
    let mut rev = 0;
    for m in 0..4i64 {
        for (p, base, n) in [("quickform", 900i64, 6 + m * 3), ("invoicely", 1900, 2 + m)] {
            for i in 0..n {
                let at = now - chrono::Duration::days(30 * (3 - m) + (i % 27) + 1);
                if f.ports
                    .revenue
                    .record(RevenueEvent {
                        id: format!("demo_evt_{p}_{m}_{i}"),
                        product: p.into(),
                        amount_minor: base,
                        currency: "usd".into(),
                        kind: RevenueKind::InvoicePaid,
                        at,
                        source: "demo".into(),
                        data: json!({}),
                        reference: None,
                    })
                    .await?
                {
                    rev += 1;
                }
            }
        }
    }
    f.ports
        .revenue
        .record(RevenueEvent {
            id: "demo_evt_refund".into(),
            product: "quickform".into(),
            amount_minor: -900,
            currency: "usd".into(),
            kind: RevenueKind::Refund,
            at: now - chrono::Duration::days(3),
            source: "demo".into(),
            data: json!({}),
            reference: None,
        })
        .await?;
    f.ports
        .revenue
        .record(RevenueEvent {
            id: "demo_evt_eur".into(),
            product: "invoicely".into(),
            amount_minor: 1700,
            currency: "eur".into(),
            kind: RevenueKind::Charge,
            at: now - chrono::Duration::days(5),
            source: "demo".into(),
            data: json!({}),
            reference: None,
        })
        .await?;

    // Subscriptions, for MRR: QuickForm at $9 a month, Invoicely at $19 (one paying in euros,
    // one cancelled, one still trialing — neither of those two counts).
    let subs: Vec<(String, &str, &str, &str, i64)> = (0..14)
        .map(|i| (format!("demo_sub_qf_{i}"), "quickform", "active", "usd", 900))
        .chain((0..6).map(|i| (format!("demo_sub_inv_{i}"), "invoicely", "active", "usd", 1900)))
        .chain([
            ("demo_sub_inv_eur".to_string(), "invoicely", "active", "eur", 1700),
            ("demo_sub_qf_gone".to_string(), "quickform", "canceled", "usd", 900),
            ("demo_sub_pp_trial".to_string(), "pagepulse", "trialing", "usd", 500),
        ])
        .collect();
    for (id, product, status, currency, monthly) in subs {
        f.ports
            .revenue
            .upsert_subscription(Subscription {
                id,
                product: product.into(),
                customer: None,
                status: status.into(),
                currency: currency.into(),
                monthly_minor: monthly,
                updated_at: now - chrono::Duration::days(2),
                source: "demo".into(),
            })
            .await?;
    }

    // The knowledge graph.
    let ents = [
        ("agent:kev", "agent", "Kev"),
        ("agent:rex", "agent", "Rex"),
        ("agent:scout", "agent", "Scout"),
        ("agent:blaze", "agent", "Blaze"),
        ("product:quickform", "product", "QuickForm"),
        ("product:invoicely", "product", "Invoicely"),
        ("product:pagepulse", "product", "PagePulse"),
        ("provider:stripe", "provider", "Stripe"),
        ("provider:cloudflare", "provider", "Cloudflare"),
        ("provider:vercel", "provider", "Vercel"),
        ("provider:anthropic", "provider", "Anthropic"),
        ("repo:quickform", "repository", "github.com/factory/quickform"),
        ("repo:invoicely", "repository", "github.com/factory/invoicely"),
        ("customer:acme", "customer", "Acme Forms Ltd"),
    ];
    for (id, kind, name) in ents {
        f.ports.graph.upsert_entity(Entity { id: id.into(), kind: kind.into(), name: name.into(), properties: json!({}) }).await?;
    }
    let rels = [
        ("agent:rex", "product:quickform", "built", 1.0),
        ("agent:rex", "product:invoicely", "built", 1.0),
        ("agent:scout", "product:pagepulse", "researched", 0.8),
        ("agent:blaze", "product:quickform", "markets", 0.7),
        ("agent:kev", "agent:rex", "delegates_to", 0.9),
        ("agent:kev", "agent:scout", "delegates_to", 0.9),
        ("agent:kev", "agent:blaze", "delegates_to", 0.6),
        ("product:quickform", "provider:stripe", "integrates_with", 0.9),
        ("product:quickform", "provider:cloudflare", "deployed_on", 1.0),
        ("product:invoicely", "provider:stripe", "integrates_with", 0.9),
        ("product:invoicely", "provider:vercel", "deployed_on", 1.0),
        ("product:quickform", "repo:quickform", "lives_in", 1.0),
        ("product:invoicely", "repo:invoicely", "lives_in", 1.0),
        ("customer:acme", "product:quickform", "pays_for", 0.5),
        ("agent:rex", "provider:anthropic", "uses", 0.7),
        ("product:pagepulse", "product:quickform", "reuses_code_of", 0.4),
    ];
    for (a, b, k, w) in rels {
        f.ports.graph.relate(Relationship { from: a.into(), to: b.into(), kind: k.into(), weight: w, created_at: now }).await?;
    }

    // Memories, embedded by the configured embedder (MiniLM once scripts/setup-model.sh ran).
    let notes = [
        ("scout", "quickform", "research", "Form builders with Stripe payments convert best when the checkout is embedded in the form."),
        ("rex", "quickform", "task_result", "Deployed QuickForm to Cloudflare Workers; cold start 40 ms, bundle 180 KB."),
        ("rex", "invoicely", "task_result", "Invoicely PDF rendering moved to a queue; p95 render time down from 4 s to 900 ms."),
        ("blaze", "quickform", "note", "Launch tweet thread got 14k impressions; best hook was the 60-second setup video."),
        ("scout", "pagepulse", "research", "Uptime monitors compete on price; a free tier with 5 monitors is the market norm."),
        ("kev", "invoicely", "note", "Invoicely churn is concentrated in users who never connected Stripe in week one."),
        ("rex", "quickform", "task_result", "Stripe webhook signature verification added; replayed events are ignored by event id."),
        ("scout", "invoicely", "research", "Freelancers want recurring invoices and automatic payment reminders more than templates."),
        ("blaze", "invoicely", "note", "Cold email to accounting firms: 3.1% reply rate, mostly asking about multi-currency."),
        ("rex", "pagepulse", "task_result", "PagePulse checker prototype pings 1k URLs per minute from one Worker."),
    ];
    let index = reef_core::memory::MemoryIndex::new(f.ports.clone(), reef_host::embedder(&f.config)?);
    let items = notes
        .iter()
        .enumerate()
        .map(|(i, (agent, product, kind, text))| reef_core::memory::NewMemory {
            id: format!("demo_mem_{i}"),
            content: text.to_string(),
            kind: kind.to_string(),
            agent: Some(agent.to_string()),
            product: Some(product.to_string()),
            created_at: now - chrono::Duration::hours(6 * i as i64 + 1),
            metadata: json!({"source": "demo"}),
        })
        .collect();
    if let Err(e) = index.remember(items).await {
        eprintln!("demo memories not written: {e}");
    }

    // Three weeks of finished attempts, for the outcome analytics: QA on the cheap tier keeps
    // failing (what learned routing would move up a tier), research on the local tier does fine.
    let history: [(&str, &str, &str, u32, u32, i64, u64); 6] = [
        ("rex", "cheap", "build", 8, 6, 40_000, 95_000),
        ("rex", "cheap", "qa", 6, 2, 25_000, 60_000),
        ("rex", "mid", "qa", 3, 3, 180_000, 70_000),
        ("scout", "local", "research", 10, 9, 0, 140_000),
        ("blaze", "cheap", "marketing", 6, 5, 15_000, 30_000),
        ("kev", "mid", "plan", 4, 4, 90_000, 45_000),
    ];
    let mut n = 0i64;
    for (agent, tier, kind, attempts, ok, cost, latency) in history {
        for i in 0..attempts {
            n += 1;
            f.ports
                .events
                .append(Event {
                    id: format!("demo_outcome_{agent}_{tier}_{kind}_{i}"),
                    kind: if i < ok { "task.done" } else { "task.failed" }.into(),
                    at: now - chrono::Duration::hours(5 * n),
                    actor: format!("agent:{agent}"),
                    subject: None,
                    data: json!({"agent": agent, "tier": tier, "task_type": kind, "cost": cost, "latency_ms": latency, "source": "demo"}),
                })
                .await?;
        }
    }

    // Tasks in every state.
    // (title, agent, type, product, action class, priority, the state the demo leaves it in)
    type Spec<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>, i64, TaskStatus);
    let specs: [Spec<'_>; 14] = [
        ("Plan PagePulse MVP scope", "kev", "plan", Some("pagepulse"), None, 5, TaskStatus::Done),
        ("Research uptime-monitor pricing", "scout", "research", Some("pagepulse"), None, 3, TaskStatus::Done),
        ("Build PagePulse checker worker", "rex", "build", Some("pagepulse"), None, 4, TaskStatus::Running),
        ("Write QuickForm onboarding emails", "blaze", "content", Some("quickform"), None, 2, TaskStatus::Claimed),
        (
            "Deploy Invoicely v1.4 to production",
            "rex",
            "deploy",
            Some("invoicely"),
            Some("production_deploy"),
            6,
            TaskStatus::AwaitingApproval,
        ),
        ("Post QuickForm launch thread", "blaze", "marketing", Some("quickform"), Some("public_post"), 3, TaskStatus::AwaitingApproval),
        ("Review Invoicely reminder feature", "kev", "review", Some("invoicely"), None, 3, TaskStatus::Review),
        ("Fix flaky QuickForm e2e test", "rex", "qa", Some("quickform"), None, 2, TaskStatus::Failed),
        ("Rotate Stripe restricted key", "rex", "security", Some("invoicely"), Some("security_change"), 5, TaskStatus::NeedsHuman),
        ("Competitor teardown: Tally vs QuickForm", "scout", "research", Some("quickform"), None, 1, TaskStatus::Pending),
        ("Weekly revenue summary", "kev", "report", None, None, 1, TaskStatus::Pending),
        ("Blog post: 5 invoice templates", "blaze", "content", Some("invoicely"), None, 0, TaskStatus::Paused),
        ("Translate QuickForm to German", "scout", "content", Some("quickform"), None, 0, TaskStatus::Cancelled),
        ("PagePulse pricing page", "blaze", "content", Some("pagepulse"), None, 1, TaskStatus::Backlog),
    ];
    let mut created = 0;
    let mut ids = vec![];
    for (i, (title, agent, kind, product, action, prio, target)) in specs.iter().enumerate() {
        let new = NewTask {
            title: title.to_string(),
            description: format!("Demo task: {title}."),
            priority: *prio,
            assigned_to: Some(agent.to_string()),
            kind: Some(kind.to_string()),
            action_class: action.map(String::from),
            product: product.map(String::from),
            idempotency_key: Some(format!("demo:{i}")),
            backlog: *target == TaskStatus::Backlog,
            ..Default::default()
        };
        let (t, is_new) = f.ports.tasks.create(new, now - chrono::Duration::minutes(90 - 5 * i as i64)).await?;
        ids.push(t.id.clone());
        if !is_new {
            continue;
        }
        created += 1;
        f.announce_created(&t, actor).await?;
        drive_to(f, &t, *target, agent).await?;
    }
    // A task waiting on another one.
    let mut dep = NewTask::titled("Announce PagePulse beta");
    dep.assigned_to = Some("blaze".into());
    dep.kind = Some("marketing".into());
    dep.product = Some("pagepulse".into());
    dep.depends_on = vec![ids[2].clone()];
    dep.idempotency_key = Some("demo:blocked".into());
    let (bt, is_new) = f.ports.tasks.create(dep, now).await?;
    if is_new {
        created += 1;
        f.announce_created(&bt, actor).await?;
        f.comment(&ids[2], &f.operator(), "Keep the free tier at 5 monitors, per Scout's research.").await?;
    }

    // A builder's change to QuickForm's repository, checked and reviewed, its merge waiting.
    if change::seed(f, actor).await? {
        created += 2;
    }

    // Kev's plan ran as REEF's agent loop: its steps, for `reef task trace` and the window.
    if created > 0 {
        use reef_core::engine::agent_loop::trace::{record, Step, ToolStep};
        let call = |id: &str, name: &str, arguments: serde_json::Value, answer: serde_json::Value| ToolStep {
            id: id.into(),
            name: name.into(),
            arguments: arguments.to_string(),
            ok: true,
            answer: answer.to_string(),
            diff: None,
        };
        let step = |n: u32, tokens: (u64, u64), cost: f64, ms: u64, text: &str, calls: Vec<ToolStep>| Step {
            attempt: 1,
            step: n,
            model: "mid".into(),
            prompt_tokens: tokens.0,
            completion_tokens: tokens.1,
            cost: Usd::from_dollars(cost),
            latency_ms: ms,
            text: text.into(),
            calls,
            note: None,
            answered: true,
        };
        let steps = [
            step(
                0,
                (1_840, 62),
                0.0196,
                1_240,
                "First, what do we already know about uptime monitors?",
                vec![call(
                    "call_0",
                    "search_memory",
                    serde_json::json!({"query": "uptime monitor pricing and buyers", "k": 3}),
                    serde_json::json!({"hits": [{"score": 0.71, "text": "Competitors charge $9-$29/month; 5 monitors free is the norm."}]}),
                )],
            ),
            step(
                1,
                (2_310, 118),
                0.0255,
                1_780,
                "Pricing needs fresh numbers: Scout researches it.",
                vec![call(
                    "call_1",
                    "create_task",
                    serde_json::json!({"title": "Research uptime-monitor pricing", "assigned_to": "scout", "budget_usd": 2}),
                    serde_json::json!({"task_id": ids[1], "status": "pending", "created": true, "product": "pagepulse"}),
                )],
            ),
            step(
                2,
                (2_604, 96),
                0.0280,
                1_410,
                "",
                vec![call(
                    "call_2",
                    "remember",
                    serde_json::json!({"content": "PagePulse MVP: HTTP checks every minute, email alerts, status page; free tier 5 monitors."}),
                    serde_json::json!({"written": 1}),
                )],
            ),
            step(
                3,
                (2_890, 141),
                0.0317,
                1_960,
                "The scope is set.",
                vec![call(
                    "call_3",
                    "finish",
                    serde_json::json!({"result": "MVP scope: 1-minute HTTP checks, email alerts, a public status page; free tier of 5 monitors. Pricing research handed to Scout."}),
                    serde_json::json!({"ok": true}),
                )],
            ),
        ];
        for s in &steps {
            record(f, &ids[0], "kev", s).await?;
        }
        // Rex, still at work on the checker in its task's directory: a file written, a test run,
        // a fix — the diffs as the workspace tools keep them.
        use reef_core::engine::workspace::diff;
        let v1 = "import httpx\n\n\ndef check(url: str) -> bool:\n    r = httpx.get(url, timeout=5)\n    return r.status_code == 200\n";
        let v2 = "import httpx\n\n\ndef check(url: str) -> bool:\n    try:\n        r = httpx.get(url, timeout=5, follow_redirects=True)\n    except httpx.HTTPError:\n        return False\n    return r.status_code < 400\n";
        let with_diff = |mut c: ToolStep, d: String| {
            c.diff = Some(d);
            c
        };
        let rex = [
            step(
                0,
                (1_420, 210),
                0.0009,
                820,
                "The checker first: one function, tested.",
                vec![with_diff(
                    call(
                        "call_r0",
                        "write_file",
                        serde_json::json!({"path": "checker.py", "content": v1}),
                        serde_json::json!({"path": "checker.py", "bytes": v1.len(), "created": true, "lines_added": 6, "lines_removed": 0}),
                    ),
                    diff("checker.py", None, v1),
                )],
            ),
            step(
                1,
                (1_760, 48),
                0.0006,
                640,
                "",
                vec![call(
                    "call_r1",
                    "run_command",
                    serde_json::json!({"command": "pytest -q test_checker.py"}),
                    serde_json::json!({"exit_code": 1, "timed_out": false, "seconds": 2.1, "output": "F.\nFAILED test_checker.py::test_redirect - assert False\n1 failed, 1 passed in 1.92s\n"}),
                )],
            ),
            step(
                2,
                (2_080, 260),
                0.0011,
                910,
                "A redirect counts as up; a network error as down.",
                vec![with_diff(
                    call(
                        "call_r2",
                        "edit_file",
                        serde_json::json!({"path": "checker.py", "old_text": "    r = httpx.get(url, timeout=5)", "new_text": "    try: …"}),
                        serde_json::json!({"path": "checker.py", "bytes": v2.len(), "created": false, "lines_added": 5, "lines_removed": 2}),
                    ),
                    diff("checker.py", Some(v1), v2),
                )],
            ),
        ];
        for mut s in rex {
            s.model = "cheap".into();
            record(f, &ids[2], "rex", &s).await?;
        }
    }

    // Today's spend: settled reservations and the calls behind them.
    if created > 0 {
        // Spread over the factory's day so far (never before its midnight), each for a product.
        let day_start = reef_core::time::start_of_local_day(f.config.timezone, now);
        for (i, (agent, model, cost, provider, product)) in [
            ("kev", "mid", 2.40, "google", "pagepulse"),
            ("rex", "cheap", 6.15, "groq", "quickform"),
            ("rex", "frontier", 11.80, "anthropic", "invoicely"),
            ("scout", "local", 0.0, "ollama", "quickform"),
            ("scout", "cheap", 1.35, "groq", "quickform"),
            ("blaze", "cheap", 3.20, "groq", "quickform"),
        ]
        .iter()
        .enumerate()
        {
            let scopes = f.scopes_for(agent, Some(provider), None).await?;
            let id = format!("demo_res_{}_{i}", now.timestamp());
            f.ports
                .ledger
                .reserve(
                    ReserveRequest {
                        id: id.clone(),
                        scopes,
                        amount: Usd::from_dollars(cost * 1.3),
                        expires_at: now + chrono::Duration::minutes(10),
                        task_id: None,
                        agent: Some(agent.to_string()),
                    },
                    now,
                )
                .await?;
            f.ports.ledger.settle(&id, Usd::from_dollars(*cost), now).await?;
            f.record_call(LlmCall {
                id: format!("demo_call_{}_{i}", now.timestamp()),
                at: (now - chrono::Duration::minutes(50 * i as i64)).max(day_start),
                agent: agent.to_string(),
                product: Some(product.to_string()),
                task_id: None,
                model: model.to_string(),
                provider: Some(provider.to_string()),
                prompt_tokens: 12_000,
                completion_tokens: 3_000,
                cost: Usd::from_dollars(*cost),
                latency_ms: 1_800,
                error: None,
                finished_at: Some(now),
            })
            .await?;
        }
    }

    let summary =
        json!({"tasks_created": created, "revenue_events_added": rev, "agents": f.config.agents.len(), "store": f.ports.kind.to_string()});
    out.print(&summary, || {
        if created == 0 {
            format!("demo data already present in {} (nothing added); try `reef status`", f.ports.kind)
        } else {
            format!("seeded a demo factory into {}: {created} tasks, {rev} revenue events, 4 agents, 3 products, a knowledge graph and memories.\nTry: reef status | reef task list | reef approvals", f.ports.kind)
        }
    });
    Ok(())
}
