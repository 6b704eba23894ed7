//! The webhook relay against floods and refusals, on the embedded store with a local receiver:
//! every wanted event delivered once, in the log's order, however many other events are written
//! around it; an event a receiver keeps refusing is dead-lettered with an alert, and the rest go on.

use reef_core::config::{Config, Defaults};
use reef_core::engine::relay;
use reef_core::factory::Factory;
use reef_core::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};

/// A receiver on 127.0.0.1: records each delivery's event id and answers `status(id)`.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<String>>>,
}

fn receiver(status: impl Fn(&str) -> u16 + Send + 'static) -> Receiver {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(vec![]));
    let g = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let (mut id, mut len) = (String::new(), 0usize);
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("x-reef-event-id:") {
                    id = line[line.len() - v.len()..].trim().to_string();
                }
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; len];
            let _ = r.read_exact(&mut body);
            let code = status(&id);
            if code < 300 {
                g.lock().unwrap().push(id);
            }
            let mut s = s;
            let _ = s.write_all(format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes());
        }
    });
    Receiver { port, got }
}

fn factory(dir: &std::path::Path, port: u16) -> Factory {
    let d = Defaults { data_dir: dir.into(), machine_timezone: Some("UTC".into()), host: "test".into(), cache_dir: dir.into() };
    let toml = format!("[[webhooks]]\nname = \"ops\"\nurl = \"http://127.0.0.1:{port}/hook\"\nevents = [\"approval.requested\"]\nsecret = \"REEF_WEBHOOK_OPS_SECRET\"\n");
    let cfg =
        Config::resolve(Some(&toml), &|k| (k == "REEF_WEBHOOK_OPS_SECRET").then(|| "whsec_test_secret_value".to_string()), &d).unwrap();
    let ports = reef_store::sqlite::SqliteStore::open(&dir.join("reef.db")).unwrap().ports();
    Factory::new(ports, Arc::new(SystemClock), Arc::new(cfg))
}

async fn event(f: &Factory, kind: &str, note: &str) -> String {
    let ev = Event {
        id: new_id(),
        kind: kind.into(),
        at: f.now(),
        actor: "test".into(),
        subject: None,
        data: serde_json::json!({"note": note}),
    };
    let id = ev.id.clone();
    f.ports.events.append(ev).await.unwrap();
    id
}

fn no_links(_: &Event) -> Option<serde_json::Value> {
    None
}

/// Passes until one delivers nothing more (retry delays are the loop's business, not this test's).
async fn drain(f: &Factory, sub: &reef_core::rules::webhook::Subscription) {
    let http = reqwest::Client::new();
    for _ in 0..50 {
        let p = relay::pass(f, &http, sub, &no_links).await.unwrap();
        if p.delivered == 0 && p.retry_in.is_none() {
            return;
        }
    }
}

#[tokio::test]
async fn a_flood_of_other_events_never_pushes_an_approval_request_out_of_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let rx = receiver(|_| 200);
    let f = factory(dir.path(), rx.port);
    let sub = f.config.webhooks[0].clone();
    drain(&f, &sub).await; // a new subscription starts at the end of the log
    let mut wanted = vec![];
    // A busy minute: thousands of agent output lines, the requests scattered among them.
    for i in 0..2_500 {
        if i % 600 == 17 {
            wanted.push(event(&f, "approval.requested", &format!("ask {i}")).await);
        }
        event(&f, "task.output", "compiling…").await;
    }
    drain(&f, &sub).await;
    assert_eq!(*rx.got.lock().unwrap(), wanted, "every request delivered once, in the log's order");
}

#[tokio::test]
async fn an_event_a_receiver_keeps_refusing_is_dead_lettered_with_an_alert_and_the_rest_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let poison = Arc::new(Mutex::new(String::new()));
    let p2 = poison.clone();
    let rx = receiver(move |id| if *p2.lock().unwrap() == id { 422 } else { 200 });
    let f = factory(dir.path(), rx.port);
    let sub = f.config.webhooks[0].clone();
    drain(&f, &sub).await;
    let bad = event(&f, "approval.requested", "the receiver rejects this one").await;
    *poison.lock().unwrap() = bad.clone();
    let good = event(&f, "approval.requested", "and accepts this one").await;
    drain(&f, &sub).await;
    assert_eq!(*rx.got.lock().unwrap(), vec![good.clone()], "the refused event does not stall the subscription");
    let dead = f
        .ports
        .events
        .recent(&EventQuery { kind_prefix: Some("webhook.dead_letter".into()), limit: 5, ..Default::default() })
        .await
        .unwrap()
        .items;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!((dead[0].data["event"].as_str(), dead[0].data["alert"].as_bool()), (Some(bad.as_str()), Some(true)));
    assert_eq!(relay::progress(&f, "ops").await.unwrap().dead_letters, vec![bad.clone()]);
    // What the operator sees: the event's kind and the receiver's answer.
    let shown = relay::status(&f).await.unwrap().remove(0).dead_letters;
    assert_eq!(shown.len(), 1);
    assert_eq!(
        (shown[0].event.as_str(), shown[0].kind.as_str(), shown[0].error.as_str()),
        (bad.as_str(), "approval.requested", "HTTP 422")
    );
    // Only a dead letter can be pushed again, and only to a configured subscription.
    let not_dead = relay::redeliver(&f, "ops", &good, "operator:adam").await.unwrap_err();
    assert!(matches!(not_dead, relay::RedeliverError::NotDead(..)), "{not_dead}");
    let nobody = relay::redeliver(&f, "nobody", &bad, "operator:adam").await.unwrap_err();
    assert!(matches!(nobody, relay::RedeliverError::NoSubscription(..)), "{nobody}");
    // Redelivered while the receiver still refuses: it stays a dead letter, and says why.
    let still = relay::redeliver(&f, "ops", &bad, "operator:adam").await.unwrap_err();
    assert!(still.to_string().contains("HTTP 422"), "{still}");
    assert_eq!(relay::progress(&f, "ops").await.unwrap().dead_letters, vec![bad.clone()]);
    // The operator redelivers it once the receiver is fixed; each try is audited under their name.
    *poison.lock().unwrap() = String::new();
    relay::redeliver(&f, "ops", &bad, "operator:adam").await.unwrap();
    assert_eq!(*rx.got.lock().unwrap(), vec![good, bad.clone()]);
    assert!(relay::progress(&f, "ops").await.unwrap().dead_letters.is_empty(), "no longer dead once delivered");
    let audit = f.ports.audit.list(Some("ops"), 10).await.unwrap().items;
    let tries: Vec<_> =
        audit.iter().filter(|a| a.action == "webhook.redeliver").map(|a| (a.actor.as_str(), a.new["delivered"].as_bool())).collect();
    assert_eq!(tries, vec![("operator:adam", Some(true)), ("operator:adam", Some(false))], "newest first");
}
