//! Outbound webhooks end to end: real `reef serve` processes, a receiver on 127.0.0.1 written in
//! Python that verifies signatures with its own hmac, the receiver down, REEF killed mid-delivery.

use crate::common::{free_port, root, sigkill, sigterm, wait_until, Env};
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SECRET: &str = "whk_test_0123456789abcdef";

fn receiver(port: u16, out: &std::path::Path, delay: f64) -> Child {
    let c = Command::new("python3")
        .arg(root().join("tests/support/webhook_receiver.py"))
        .args([port.to_string(), SECRET.to_string(), out.display().to_string(), delay.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()), "receiver did not start");
    c
}

/// A receiver that is down: it holds the port (so no other test's server can take it while the
/// real receiver is away) and drops every connection unanswered.
struct Down {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn down(port: u16) -> Down {
    let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    l.set_nonblocking(true).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let thread = std::thread::spawn(move || {
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            match l.accept() {
                Ok((conn, _)) => drop(conn),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    Down { stop, thread: Some(thread) }
}

impl Drop for Down {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn received(out: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out).unwrap_or_default().lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn config(port: u16) -> String {
    format!(
        "[engine]\nlease_seconds = 2\n[[webhooks]]\nname = \"ops\"\nurl = \"http://127.0.0.1:{port}/hook\"\nevents = [\"task.created\"]\nsecret = \"REEF_WEBHOOK_OPS_SECRET\"\n"
    )
}

#[test]
fn bad_subscriptions_are_refused_at_config_load() {
    let e = Env::new();
    let run = |cfg: &str, env: &[(&str, &str)]| {
        e.write_config(cfg);
        let mut c = e.cmd();
        c.arg("status");
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        assert!(!o.status.success());
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let base = "[[webhooks]]\nname = \"ops\"\nevents = [\"*\"]\nsecret = \"REEF_WEBHOOK_OPS_SECRET\"\n";
    let err = run(&format!("{base}url = \"htp:/nowhere\"\n"), &[("REEF_WEBHOOK_OPS_SECRET", SECRET)]);
    assert!(err.contains("webhooks[0].url"), "{err}");
    let err = run(&format!("{base}url = \"http://hooks.example.com/x\"\n"), &[("REEF_WEBHOOK_OPS_SECRET", SECRET)]);
    assert!(err.contains("plain http"), "{err}");
    let err = run(&format!("{base}url = \"https://hooks.example.com/x\"\n"), &[]);
    assert!(err.contains("webhooks[0].secret") && err.contains("not set"), "{err}");
}

#[test]
fn every_event_reaches_the_receiver_through_an_outage_and_a_kill_mid_delivery() {
    let e = Env::new();
    let port = free_port();
    e.write_config(&config(port));
    e.with_prices();
    let out = e.dir.path().join("received.jsonl");
    e.set_env("REEF_WEBHOOK_OPS_SECRET", SECRET);
    let env = [];
    let mut rx = receiver(port, &out, 0.0);
    let mut serve = e.serve("dispatcher", &env);
    let ready = || e.json(&["webhooks"])["subscriptions"][0]["watermark"].is_string();
    // Under the full suite's load (the crash drill's three engines beside it) `reef serve` can take
    // a while to reach its first relay pass: wait for the condition, generously.
    assert!(wait_until(Duration::from_secs(60), ready), "the relay starts its subscription");
    let created = |e: &Env| -> BTreeSet<String> {
        e.json(&["events", "--kind", "task.created", "--limit", "1000"])["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["_id"].as_str().unwrap().to_string())
            .collect()
    };
    let ids = |out: &std::path::Path| -> BTreeSet<String> { received(out).iter().map(|v| v["id"].as_str().unwrap().to_string()).collect() };

    // Delivered while all is well.
    for i in 0..3 {
        e.ok(&["task", "add", &format!("Before the outage {i}")]);
    }
    assert!(wait_until(Duration::from_secs(20), || ids(&out).len() == 3), "{:?}", received(&out));
    // …and REEF has the receiver's answers: a receiver killed between writing an event down and
    // answering leaves that delivery owed (at least once), which would count below.
    let owed = || e.json(&["webhooks"])["subscriptions"][0]["pending"].as_u64();
    assert!(wait_until(Duration::from_secs(20), || owed() == Some(0)), "{}", e.ok(&["webhooks"]));

    // The receiver goes away: deliveries fail and are retried, nothing is dropped.
    sigkill(&mut rx);
    let outage = down(port);
    for i in 0..3 {
        e.ok(&["task", "add", &format!("During the outage {i}")]);
    }
    let failing = || {
        let v = e.json(&["webhooks"]);
        v["subscriptions"][0]["failures"].as_u64().unwrap_or(0) >= 1 && v["subscriptions"][0]["pending"].as_u64() == Some(3)
    };
    assert!(
        wait_until(Duration::from_secs(30), failing),
        "the relay reports the failures and what it still owes: {}",
        e.json(&["webhooks"])
    );

    // REEF is killed while the receiver holds a delivery unanswered (it records, then waits).
    sigkill(&mut serve);
    drop(outage);
    let mut rx = receiver(port, &out, 3.0);
    let before = received(&out).len();
    let mut serve = e.serve("dispatcher", &env);
    assert!(wait_until(Duration::from_secs(30), || received(&out).len() > before), "the restarted relay delivers again");
    sigkill(&mut serve);
    sigkill(&mut rx);

    // Back to normal: everything owed arrives, the one in flight at the kill arrives again.
    let mut rx = receiver(port, &out, 0.0);
    let mut serve = e.serve("dispatcher", &env);
    let want = created(&e);
    assert_eq!(want.len(), 6);
    assert!(wait_until(Duration::from_secs(60), || ids(&out) == want), "all six arrive: got {:?}, want {want:?}", ids(&out));
    sigterm(&mut serve);
    sigkill(&mut rx);
    let all = received(&out);
    // (Each receiver process dedupes by X-Reef-Event-Id; this one was restarted, so count here.)
    let repeated = all.len() - ids(&out).len();
    assert!(repeated >= 1, "the delivery cut off by the kill was repeated (at least once): {all:?}");
    assert!(all.iter().all(|v| v["kind"] == "task.created"), "only the subscribed kind");
    // The delivery log says what happened.
    let log = e.json(&["events", "--kind", "webhook.delivery", "--limit", "1000"])["events"].as_array().unwrap().clone();
    assert!(log.iter().any(|v| v["data"]["ok"] == false), "failures are logged");
    assert!(log.iter().filter(|v| v["data"]["ok"] == true).count() >= 6);
}

fn curl(args: &[&str]) -> (u16, String) {
    let o = Command::new("curl").args(["-s", "-w", "\n%{http_code}"]).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn an_approval_webhook_carries_links_that_decide_once_only_by_post_and_are_audited() {
    let e = Env::new();
    let (port, listen) = (free_port(), free_port());
    e.write_config(&format!(
        "[engine]\nlease_seconds = 2\n[serve]\nlisten = \"127.0.0.1:{listen}\"\n\
         [[executors]]\nname = \"deployer\"\nkinds = [\"deploy\"]\ncommand = [\"sh\", \"-c\", \"echo deployed\"]\n\
         [[webhooks]]\nname = \"phone\"\nurl = \"http://127.0.0.1:{port}/hook\"\nevents = [\"approval.requested\"]\nsecret = \"REEF_WEBHOOK_OPS_SECRET\"\napprove_links = true\n"
    ));
    e.set_env("REEF_WEBHOOK_OPS_SECRET", SECRET);
    // Without the link key, approve_links is refused at load.
    let o = e.cmd().arg("status").output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("webhooks[0].approve_links"), "{}", String::from_utf8_lossy(&o.stderr));
    e.set_env("REEF_LINK_SECRET", "link-key-0123456789abcdef");
    e.with_prices();
    let out = e.dir.path().join("received.jsonl");
    let mut rx = receiver(port, &out, 0.0);
    let mut serve = e.serve("both", &[]);
    // The relay starts with the engine; on a loaded machine that can take a while.
    assert!(
        wait_until(Duration::from_secs(60), || e.json(&["webhooks"])["subscriptions"][0]["watermark"].is_string()),
        "the relay never started"
    );
    e.ok(&["task", "add", "Deploy <b>Invoicely</b>", "--type", "deploy", "--agent", "rex", "--action-class", "production_deploy"]);
    assert!(
        wait_until(Duration::from_secs(30), || received(&out).iter().any(|v| v["links"]["approve"].is_string())),
        "{:?}",
        received(&out)
    );
    let links = received(&out).into_iter().find(|v| v["links"]["approve"].is_string()).unwrap()["links"].clone();
    let approve = links["approve"].as_str().unwrap().to_string();
    assert!(approve.starts_with(&format!("http://127.0.0.1:{listen}/decide?")), "{approve}");
    let form = approve.split_once('?').unwrap().1.to_string();
    let pending = || e.json(&["approvals"])["approvals"].as_array().map(|a| a.len()).unwrap_or(0);
    assert_eq!(pending(), 1);

    // A GET (what a chat app's preview does) shows the request and decides nothing; the task's
    // title is shown escaped (agent output is untrusted).
    let (code, body) = curl(&[&approve]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Deploy &lt;b&gt;Invoicely&lt;/b&gt;") && body.contains("Approve"), "{body}");
    assert_eq!(pending(), 1, "a GET never decides");
    // A changed link is refused.
    let forged = form.replace("d=approve", "d=reject");
    let (code, _) = curl(&["-X", "POST", "--data", &forged, &format!("http://127.0.0.1:{listen}/decide")]);
    assert_eq!(code, 403);
    // The POST decides, once.
    let (code, body) =
        curl(&["-X", "POST", "--data", &format!("{form}&reason=from+my+phone"), &format!("http://127.0.0.1:{listen}/decide")]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("approved"), "{body}");
    assert_eq!(pending(), 0);
    let (code, body) = curl(&["-X", "POST", "--data", &form, &format!("http://127.0.0.1:{listen}/decide")]);
    assert_eq!(code, 410, "{body}");
    assert!(body.contains("already used"));
    // Audited as decided through the link; the task goes on to run.
    let decided = e.json(&["events", "--kind", "approval.decided"])["events"][0].clone();
    assert!(decided["data"]["reason"].as_str().unwrap().contains("signed link"), "{decided}");
    assert!(wait_until(Duration::from_secs(30), || e.count("done") == 1), "{:?}", e.tasks());
    sigterm(&mut serve);
    sigkill(&mut rx);
}
