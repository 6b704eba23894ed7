//! Revenue end to end: Stripe-shaped events signed locally with Stripe's real scheme and posted to
//! a running `reef serve`; pull mode against a local stand-in for Stripe's events API (the real
//! API cannot be reached from here — the stand-in is named as such); manual entry and CSV import;
//! the books that come out.

use crate::common::{free_port, wait_until, Env};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::Duration;

const SECRET: &str = "whsec_reef_test_signing_secret";

pub(crate) fn http(port: u16, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
    json!({"id": id, "object": "event", "type": kind, "created": created, "livemode": false, "data": {"object": object}})
}

fn invoice_paid(id: &str, amount: i64, price: &str, charge: &str) -> Value {
    event(
        id,
        "invoice.paid",
        now() - 60,
        json!({"id": format!("in_{id}"), "object": "invoice", "amount_paid": amount, "currency": "usd", "charge": charge,
               "lines": {"data": [{"price": {"id": price, "product": "prod_qf"}, "quantity": 1}]}}),
    )
}

#[test]
fn stripe_webhooks_are_verified_counted_once_and_roll_up_into_the_books() {
    let e = Env::new();
    e.ok(&["revenue", "product", "quickform", "--name", "QuickForm", "--stripe-id", "price_qf_monthly", "--payment-provider", "stripe"]);
    e.ok(&["revenue", "product", "invoicely", "--name", "Invoicely", "--stripe-id", "prod_inv"]);
    e.with_prices();
    let port = free_port();
    let mut serve = e.serve("both", &[("REEF_LISTEN", &format!("127.0.0.1:{port}")), ("REEF_STRIPE_WEBHOOK_SECRET", SECRET)]);
    assert!(wait_until(Duration::from_secs(20), || http_ok(port)), "reef serve did not answer on {port}");
    let post = |body: &Value, sig: Option<String>| {
        let raw = serde_json::to_vec(body).unwrap();
        let headers: Vec<(&str, String)> = sig.map(|s| vec![("Stripe-Signature", s)]).unwrap_or_default();
        http(port, "POST", "/webhooks/stripe", &headers, &raw)
    };
    let signed = |body: &Value, t: i64| {
        let raw = serde_json::to_vec(body).unwrap();
        (reef_core::stripe::sign(SECRET, t, &raw), raw)
    };

    // Valid: recorded once; the same event again (Stripe retries) is acknowledged, not counted.
    let paid = invoice_paid("evt_paid_1", 900, "price_qf_monthly", "ch_1");
    let (sig, _) = signed(&paid, now());
    let (st, body) = post(&paid, Some(sig.clone()));
    assert_eq!(st, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["result"], "recorded");
    let (st, body) = post(&paid, Some(sig));
    assert_eq!((st, serde_json::from_str::<Value>(&body).unwrap()["result"].clone()), (200, json!("duplicate")));

    // Tampered: the amount changed after signing.
    let (sig, _) = signed(&invoice_paid("evt_paid_2", 900, "price_qf_monthly", "ch_2"), now());
    let (st, body) = post(&invoice_paid("evt_paid_2", 90000, "price_qf_monthly", "ch_2"), Some(sig));
    assert!(st == 400 && body.contains("does not match"), "{st} {body}");
    // Unsigned, and signed with another secret.
    let (st, body) = post(&invoice_paid("evt_paid_3", 900, "price_qf_monthly", "ch_3"), None);
    assert!(st == 400 && body.contains("unsigned"), "{st} {body}");
    let other =
        reef_core::stripe::sign("whsec_someone_else", now(), &serde_json::to_vec(&invoice_paid("evt_paid_4", 1, "x", "c")).unwrap());
    assert_eq!(post(&invoice_paid("evt_paid_4", 1, "x", "c"), Some(other)).0, 400);
    // Too old: a captured request replayed ten minutes later.
    let old = invoice_paid("evt_paid_5", 900, "price_qf_monthly", "ch_5");
    let (sig, _) = signed(&old, now() - 600);
    let (st, body) = post(&old, Some(sig));
    assert!(st == 400 && body.contains("tolerance"), "{st} {body}");
    // Not JSON at all, but correctly signed: refused with a reason, nothing stored.
    let raw = b"not json".to_vec();
    let (st, body) = http(port, "POST", "/webhooks/stripe", &[("Stripe-Signature", reef_core::stripe::sign(SECRET, now(), &raw))], &raw);
    assert!(st == 400 && body.contains("not a Stripe event"), "{st} {body}");

    // A one-off charge mapped by metadata, a refund of the invoice's charge, a charge of an
    // invoice (counted by invoice.paid, so ignored), subscriptions for MRR, a euro payment.
    let events = vec![
        event(
            "evt_charge_1",
            "charge.succeeded",
            now() - 50,
            json!({"id": "ch_9", "amount": 4900, "currency": "usd", "invoice": null, "metadata": {"reef_product": "invoicely"}}),
        ),
        event(
            "evt_charge_inv",
            "charge.succeeded",
            now() - 49,
            json!({"id": "ch_1", "amount": 900, "currency": "usd", "invoice": "in_evt_paid_1"}),
        ),
        json!({"id": "evt_refund_1", "type": "charge.refunded", "created": now() - 40,
               "data": {"object": {"id": "ch_1", "amount": 900, "amount_refunded": 300, "currency": "usd"},
                        "previous_attributes": {"amount_refunded": 0}}}),
        event(
            "evt_sub_1",
            "customer.subscription.created",
            now() - 30,
            json!({"id": "sub_1", "customer": "cus_1", "status": "active", "currency": "usd",
                   "items": {"data": [{"price": {"id": "price_qf_monthly", "unit_amount": 900, "recurring": {"interval": "month", "interval_count": 1}}, "quantity": 1}]}}),
        ),
        event(
            "evt_sub_2",
            "customer.subscription.created",
            now() - 29,
            json!({"id": "sub_2", "customer": "cus_2", "status": "active", "currency": "eur",
                   "items": {"data": [{"price": {"id": "price_inv_yearly", "product": "prod_inv", "unit_amount": 24000, "recurring": {"interval": "year"}}, "quantity": 1}]}}),
        ),
        event(
            "evt_sub_3",
            "customer.subscription.deleted",
            now() - 20,
            json!({"id": "sub_3", "status": "canceled", "currency": "usd",
                   "items": {"data": [{"price": {"id": "price_qf_monthly", "unit_amount": 900, "recurring": {"interval": "month"}}, "quantity": 1}]}}),
        ),
        event(
            "evt_eur",
            "charge.succeeded",
            now() - 10,
            json!({"id": "ch_eur", "amount": 1700, "currency": "EUR", "metadata": {"reef_product": "invoicely"}}),
        ),
        event("evt_unknown", "charge.succeeded", now() - 5, json!({"id": "ch_x", "amount": 100, "currency": "usd"})),
    ];
    for ev in &events {
        let (sig, _) = signed(ev, now());
        let (st, body) = post(ev, Some(sig));
        assert_eq!(st, 200, "{} → {body}", ev["id"]);
    }
    serve.kill().ok();
    serve.wait().ok();

    let b = e.json(&["revenue", "report"]);
    let product = |id: &str| b["products"].as_array().unwrap().iter().find(|p| p["product"] == id).cloned().unwrap_or(Value::Null);
    assert_eq!(
        product("quickform")["revenue"],
        json!({"usd": 600}),
        "900 paid, 300 refunded, the invoice's charge not double-counted: {b}"
    );
    assert_eq!(product("invoicely")["revenue"], json!({"eur": 1700, "usd": 4900}), "currencies kept apart: {b}");
    assert_eq!(product("unmapped")["revenue"], json!({"usd": 100}), "an event no product claims is kept, not lost: {b}");
    let mrr: Vec<(String, String, i64)> = b["mrr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["product"].as_str().unwrap().into(), m["currency"].as_str().unwrap().into(), m["mrr_minor"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        mrr,
        vec![("invoicely".into(), "eur".into(), 2000), ("quickform".into(), "usd".into(), 900)],
        "yearly → monthly; cancelled not counted"
    );
    assert_eq!(b["revenue_usd_minor"], 5600);
    assert_eq!(b["other_currencies"], json!({"eur": 1700}));
    assert_eq!(b["self_funding"], Value::Null, "no LLM spend yet: no ratio, not infinity");
    // The product's providers are in the knowledge graph.
    let g = e.json(&["graph", "show", "product:quickform", "--depth", "1"]);
    assert!(g["edges"].as_array().unwrap().iter().any(|r| r["to"] == "provider:stripe" && r["type"] == "integrates_with"), "{g}");
}

fn http_ok(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && http(port, "GET", "/health", &[], b"").0 == 200
}

#[test]
fn manual_entries_and_csv_import_are_idempotent_and_bad_files_change_nothing() {
    let e = Env::new();
    let r = e.json(&[
        "revenue",
        "add",
        "--product",
        "quickform",
        "--amount",
        "12.50",
        "--currency",
        "USD",
        "--date",
        "2026-10-02",
        "--id",
        "bank-1",
    ]);
    assert_eq!(r["recorded"], true);
    assert_eq!(e.json(&["revenue", "add", "--product", "quickform", "--amount", "12.50", "--id", "bank-1"])["recorded"], false);
    let bad = e.cmd().args(["revenue", "add", "--product", "quickform", "--amount", "12,50"]).output().unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not an amount like 12.50"));

    let csv = e.dir.path().join("rev.csv");
    std::fs::write(&csv, "date,product,amount,currency,kind\n2026-10-05,invoicely,19.00,usd,invoice_paid\n2026-11-05,invoicely,17,eur,charge\n2026-11-06,invoicely,-19.00,usd,refund\n").unwrap();
    assert_eq!(e.json(&["revenue", "import", csv.to_str().unwrap()])["recorded"], 3);
    let again = e.json(&["revenue", "import", csv.to_str().unwrap()]);
    assert_eq!((again["recorded"].as_u64(), again["duplicates"].as_u64()), (Some(0), Some(3)), "re-importing changes nothing");

    let broken = e.dir.path().join("broken.csv");
    std::fs::write(&broken, "date,product,amount\n2026-11-01,quickform,5.00\n2026-11-02,quickform,lots\n").unwrap();
    let out = e.cmd().args(["revenue", "import", broken.to_str().unwrap()]).output().unwrap();
    let msg = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success() && msg.contains("line 3") && msg.contains("\"lots\""), "{msg}");
    let no_header = e.dir.path().join("nohead.csv");
    std::fs::write(&no_header, "2026-11-01,quickform,5.00\n").unwrap();
    let out = e.cmd().args(["revenue", "import", no_header.to_str().unwrap()]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("must name date, product and amount"));

    let b = e.json(&["revenue", "report"]);
    let months: Vec<String> = b["by_month"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r["product"].as_str().unwrap(),
                r["month"].as_str().unwrap(),
                r["currency"].as_str().unwrap(),
                r["amount_minor"]
            )
        })
        .collect();
    assert_eq!(
        months,
        vec!["invoicely 2026-10 usd 1900", "invoicely 2026-11 eur 1700", "invoicely 2026-11 usd -1900", "quickform 2026-10 usd 1250"],
        "the broken file's good first row was not written either"
    );
}

/// A local stand-in for Stripe's `GET /v1/events` (the real API is unreachable here): two pages,
/// newest first, as Stripe returns them. It records the requests it saw.
fn fake_stripe_events_api(events: Vec<Value>) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let line = req.lines().next().unwrap_or("").to_string();
            seen2.lock().unwrap().push(req.clone());
            let authed = req.to_ascii_lowercase().contains("authorization: basic");
            let mut newest_first = events.clone();
            newest_first.sort_by_key(|e| -e["created"].as_i64().unwrap());
            let since: i64 =
                line.split("created%5Bgte%5D=").nth(1).and_then(|r| r.split(['&', ' ']).next()).and_then(|v| v.parse().ok()).unwrap_or(0);
            newest_first.retain(|e| e["created"].as_i64().unwrap() >= since);
            let after = line.split("starting_after=").nth(1).and_then(|r| r.split(['&', ' ']).next()).map(String::from);
            let start = after.and_then(|a| newest_first.iter().position(|e| e["id"] == a.as_str()).map(|p| p + 1)).unwrap_or(0);
            let page: Vec<Value> = newest_first.iter().skip(start).take(2).cloned().collect();
            let has_more = start + page.len() < newest_first.len();
            let (status, body) = if authed {
                ("200 OK", json!({"object": "list", "data": page, "has_more": has_more}))
            } else {
                ("401 Unauthorized", json!({"error": {"message": "You did not provide an API key."}}))
            };
            let body = body.to_string();
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, seen)
}

#[test]
fn pull_mode_pages_through_events_since_its_cursor() {
    let e = Env::new();
    e.ok(&["revenue", "product", "quickform", "--stripe-id", "price_qf_monthly"]);
    let t = now() - 3600;
    let events: Vec<Value> = (0..5)
        .map(|i| {
            let mut ev = invoice_paid(&format!("evt_pull_{i}"), 900, "price_qf_monthly", &format!("ch_p{i}"));
            ev["created"] = json!(t + i);
            ev
        })
        .collect();
    let (port, seen) = fake_stripe_events_api(events.clone());
    e.write_config(&format!("[stripe]\napi_base = \"http://127.0.0.1:{port}\"\n"));
    let pull = |env: &[(&str, &str)]| {
        let mut c = e.cmd();
        c.args(["--json", "revenue", "pull"]);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let no_key = pull(&[]);
    assert!(String::from_utf8_lossy(&no_key.stdout).contains("REEF_STRIPE_API_KEY"));

    let out = pull(&[("REEF_STRIPE_API_KEY", "rk_test_restricted")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((r["fetched"].as_u64(), r["recorded"].as_u64(), r["cursor"].as_i64()), (Some(5), Some(5), Some(t + 4)), "{r}");
    assert!(seen.lock().unwrap().len() >= 3, "five events at two per page is three requests");
    assert!(seen.lock().unwrap().iter().all(|q| q.contains("types%5B%5D=invoice.paid")), "asks only for the events it counts");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("rk_test_restricted"));

    // Later: the next pull asks from the cursor and counts nothing twice.
    let out = pull(&[("REEF_STRIPE_API_KEY", "rk_test_restricted")]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((r["recorded"].as_u64(), r["duplicates"].as_u64()), (Some(0), Some(1)), "only the cursor's own second is re-read: {r}");
    assert!(seen.lock().unwrap().last().unwrap().contains(&format!("created%5Bgte%5D={}", t + 4)));
    assert_eq!(e.json(&["revenue", "report"])["revenue_usd_minor"], 4500);
}
