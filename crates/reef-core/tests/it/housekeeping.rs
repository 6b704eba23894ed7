//! Housekeeping on the embedded store over a simulated busy fortnight: the feed, agents' output
//! and telemetry are cut back to `[retention]`, what a webhook still owes stays, and finished
//! tasks' directories go while live ones — and anything outside the work dir — stay.

use reef_core::config::{Config, Defaults};
use reef_core::engine::{housekeeping, relay, sandbox::dir_name};
use reef_core::factory::Factory;
use reef_core::time::parse_ts;
use reef_core::*;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn factory(dir: &std::path::Path, clock: Arc<ManualClock>, port: u16) -> Factory {
    let d = Defaults { data_dir: dir.join("data"), machine_timezone: Some("UTC".into()), host: "test".into(), cache_dir: dir.into() };
    // A receiver that is never up: the subscription falls behind and stays there.
    let toml = format!(
        "[retention]\nevents_days = 3\noutput_days = 1\nowed_days = 10\ntelemetry_days = 2\nwork_days = 2\n\
         [[webhooks]]\nname = \"ops\"\nurl = \"http://127.0.0.1:{port}/hook\"\nevents = [\"task.done\"]\nsecret = \"REEF_WEBHOOK_OPS_SECRET\"\n"
    );
    let cfg =
        Config::resolve(Some(&toml), &|k| (k == "REEF_WEBHOOK_OPS_SECRET").then(|| "whsec_test_secret_value".to_string()), &d).unwrap();
    let ports = reef_store::sqlite::SqliteStore::open(&dir.join("data/reef.db")).unwrap().ports();
    Factory::new(ports, clock, Arc::new(cfg))
}

async fn count(f: &Factory, kind: &str) -> usize {
    f.ports.events.recent(&EventQuery { kind_prefix: Some(kind.into()), limit: 1_000_000, ..Default::default() }).await.unwrap().items.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_fortnight_is_cut_back_to_retention_and_nothing_owed_or_live_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(parse_ts("2026-11-01T00:00:00Z").unwrap()));
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let f = factory(tmp.path(), clock.clone(), dead_port);

    // The subscription starts at the log's end on day 0 and never gets further: its receiver is down.
    f.event("task.created", "t", None, serde_json::json!({})).await.unwrap();
    let no_links = reef_core::links::maker(&f);
    relay::pass(&f, &reqwest::Client::new(), &f.config.webhooks[0], no_links.as_ref()).await.unwrap();
    let position = relay::progress(&f, "ops").await.unwrap().position;
    assert!(position.is_some(), "the subscription has a position: {position:?}");

    // Fourteen days: each hour 20 output lines, 2 task.done events (owed to the webhook), a
    // sample; a sweep every 6 hours, as the loop would do.
    let mut sizes = vec![];
    for hour in 0..14 * 24 {
        for _ in 0..20 {
            f.event("task.output", "agent:rex", Some("t1"), serde_json::json!({"line": "building..."})).await.unwrap();
        }
        for _ in 0..2 {
            f.event("task.done", "agent:rex", Some("t1"), serde_json::json!({})).await.unwrap();
        }
        let s = MetricSample { timestamp: f.now(), source: MetricSource { host: "test".into(), metric: "cpu.percent".into() }, value: 1.0 };
        f.ports.metrics.record(&[s]).await.unwrap();
        if hour % 6 == 5 {
            housekeeping::sweep(&f, None).await.unwrap();
            sizes.push(count(&f, "").await);
        }
        clock.advance(Duration::from_secs(3600));
    }
    // Output: one day's worth kept (the last sweep was an hour ago), never the 14 days written.
    let output = count(&f, "task.output").await;
    assert!((20 * 18..=20 * 25).contains(&output), "agents' output kept for ~1 day: {output} lines");
    // task.done is owed to the webhook: kept past events_days (3), up to owed_days (10).
    let done = count(&f, "task.done").await;
    assert!((2 * 24 * 9..=2 * 24 * 11).contains(&done), "owed events kept ~10 days (not 3, not 14): {done}");
    // Telemetry: two days.
    let samples = f.ports.metrics.query(None, "cpu.percent", f.now() - chrono::Duration::days(30), f.now()).await.unwrap().len();
    assert!((2 * 24..=2 * 24 + 6).contains(&samples), "two days of samples: {samples}");
    // Bounded: after the first ten days the log stops growing.
    let late = &sizes[sizes.len() - 8..];
    assert!(late.iter().max().unwrap() - late.iter().min().unwrap() < 200, "the log is bounded once retention bites: {sizes:?}");
    // The audit log is never touched.
    let swept = count(&f, "housekeeping.swept").await;
    assert!(swept > 0, "each sweep that removed something says so in the feed");

    // With the webhook gone from the config, nothing holds task.done past events_days.
    let f2 = {
        let mut cfg = (*f.config).clone();
        cfg.webhooks.clear();
        Factory::new(f.ports.clone(), clock.clone(), Arc::new(cfg))
    };
    housekeeping::sweep(&f2, None).await.unwrap();
    let done = count(&f2, "task.done").await;
    assert!(done <= 2 * 24 * 3 + 2, "three days of task.done once nothing is owed: {done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_tasks_directories_go_live_ones_stay_and_nothing_outside_is_touched() {
    let tmp = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(parse_ts("2026-11-01T00:00:00Z").unwrap()));
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let f = factory(tmp.path(), clock.clone(), dead_port);
    let work = tmp.path().join("work");
    let outside = tmp.path().join("precious.txt");
    std::fs::write(&outside, "keep me").unwrap();

    let add = |title: &str| {
        let f = f.clone();
        let title = title.to_string();
        async move { f.ports.tasks.create(NewTask::titled(title), f.now()).await.unwrap().0 }
    };
    let finished = add("finished long ago").await;
    f.ports.tasks.transition(&finished.id, &[TaskStatus::Pending], TaskStatus::Cancelled, None, f.now()).await.unwrap();
    let running = add("still running").await;
    f.ports.tasks.claim("w1", &ClaimFilter::default(), Duration::from_secs(3600 * 24 * 30), f.now()).await.unwrap();
    let running_now = f.ports.tasks.get(&running.id).await.unwrap();
    assert!(!running_now.status.is_terminal());
    let mk = |p: &std::path::Path| {
        std::fs::create_dir_all(p.join("src/deep")).unwrap();
        std::fs::write(p.join("src/deep/main.rs"), "fn main() {}").unwrap();
        // What a hostile agent leaves: a read-only tree and a link to something outside.
        std::os::unix::fs::symlink(&outside, p.join("link-out")).unwrap();
        std::fs::set_permissions(p.join("src/deep"), std::fs::Permissions::from_mode(0o500)).unwrap();
        std::fs::set_permissions(p.join("src"), std::fs::Permissions::from_mode(0o500)).unwrap();
    };
    let (d_fin, d_run) = (work.join(dir_name(&finished.id)), work.join(dir_name(&running.id)));
    let h_fin = work.join(".home/claude").join(dir_name(&finished.id));
    let (orphan, old_orphan) = (work.join("task-nobody-knows"), work.join("task-long-gone"));
    for d in [&d_fin, &d_run, &h_fin, &orphan, &old_orphan] {
        mk(d);
    }
    // A dir no task owns that has not changed since October.
    assert!(std::process::Command::new("touch").args(["-h", "-d", "2026-10-01T00:00:00Z"]).arg(&old_orphan).status().unwrap().success());

    // Inside work_days (2): only the orphan unchanged since October goes.
    clock.advance(DAY);
    assert_eq!(housekeeping::sweep(&f, Some(&work)).await.unwrap().work_dirs, 1);
    assert!(!old_orphan.exists(), "an orphan unchanged since before work_days goes");
    assert!(d_fin.exists() && h_fin.exists(), "a task finished a day ago keeps its dir");
    // Past it: the finished task's dir and HOME go; the running one's stays whatever its age;
    // the orphan goes by its age (its mtime is real time, so it is "new" here: it stays).
    clock.advance(DAY * 2);
    let swept = housekeeping::sweep(&f, Some(&work)).await.unwrap();
    assert_eq!(swept.work_dirs, 2, "{swept:?}");
    assert!(!d_fin.exists() && !h_fin.exists(), "the finished task's dir and HOME are gone");
    assert!(d_run.join("src/deep/main.rs").exists(), "a live task's dir is never touched");
    assert!(orphan.exists(), "a dir no task owns goes only once it is itself old");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep me", "a link out is removed, never followed");
    // Clean up the read-only trees so the temp dir can go.
    for d in [&d_run, &orphan] {
        housekeeping::remove_tree(d).unwrap();
    }
}
