//! Generated task documents another program wrote — odd and hostile ids, control characters,
//! fields of the wrong type, prompts past argv's limit — pushed through a real `reef serve`: the
//! readable ones run once each in their own work dir, the rest are quarantined and listed, and
//! nothing panics.

use crate::common::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::Duration;

fn any_id() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-zA-Z0-9][a-zA-Z0-9:@+._-]{0,30}",
        3 => "[0-9a-f]{24}",
        1 => r"\.\./\.\./[a-z]{1,6}",
        1 => "/tmp/[a-z]{1,6}",
        1 => "[a-z]{1,4}[ \u{1b}\u{7}\n/]{1,2}[a-z]{1,4}",
        1 => "[a-zéü日]{1,8}",
        1 => "[a-z]{129,160}",
    ]
}

fn any_title() -> impl Strategy<Value = String> {
    prop_oneof!["\\PC{1,30}", "[a-z \u{1b}\u{7}\u{9b}\r\\[\\]0-9;]{1,24}", "[\u{202e}a-z]{1,10}"]
}

/// One generated document, and whether REEF should be able to read it.
fn any_doc() -> impl Strategy<Value = (String, Value, bool)> {
    (any_id(), any_title(), prop_oneof![8 => Just(0usize), 1 => Just(200 * 1024usize)], -3i64..5, 0u8..12).prop_map(
        |(id, title, big, priority, shape)| {
            let mut d = json!({"_id": id, "title": title, "status": "pending", "priority": priority, "type": "effect",
                "assigned_to": "rex", "created_at": "2026-11-21T08:00:00.000Z", "attempts": 0,
                "description": "x".repeat(big)});
            // A few documents with a field of the wrong type: unreadable whatever their id.
            let readable_fields = match shape {
                0 => {
                    d["priority"] = json!("high");
                    false
                }
                1 => {
                    d["depends_on"] = json!("not-a-list");
                    false
                }
                _ => true,
            };
            let ok = readable_fields && reef_core::check_id(&id).is_ok();
            (id, d, ok)
        },
    )
}

#[test]
fn generated_foreign_tasks_run_once_or_are_quarantined_and_nothing_panics() {
    let e = Env::new();
    let fx = e.fx();
    let script = format!("printf '%s\\n' \"$REEF_TASK_ID\" >> {d}/runs.log; pwd >> {d}/pwds.log; echo ok", d = fx.display());
    e.write_config(&format!(
        "[engine]\nworkers = 4\n[[agents]]\nname = \"rex\"\nrole = \"builder\"\ndaily_cap_usd = 40\nmax_concurrent = 4\n\
         [[executors]]\nname = \"effect\"\nkinds = [\"effect\"]\ncommand = [\"sh\", \"-c\", {script:?}]\n{w}",
        w = e.fx_writable()
    ));
    e.with_prices();

    let mut runner = TestRunner::default();
    let generated = proptest::collection::vec(any_doc(), 40..48).new_tree(&mut runner).unwrap().current();
    let mut docs: HashMap<String, (Value, bool)> = HashMap::new();
    for (id, d, ok) in generated {
        docs.entry(id).or_insert((d, ok));
    }
    let readable: HashSet<&str> = docs.iter().filter(|(_, (_, ok))| *ok).map(|(id, _)| id.as_str()).collect();
    let unreadable: HashSet<&str> = docs.iter().filter(|(_, (_, ok))| !*ok).map(|(id, _)| id.as_str()).collect();
    assert!(!readable.is_empty() && !unreadable.is_empty(), "the generator reaches both sides");

    // In as another program would put them: a backup restored over the store.
    let path = e.dir.path().join("foreign.reef.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
    writeln!(gz, "{}", json!({"reef_backup": 1})).unwrap();
    for (d, _) in docs.values() {
        writeln!(gz, "{}", json!({"c": "tasks", "d": d})).unwrap();
    }
    gz.finish().unwrap();
    e.ok(&["restore", "--force", path.to_str().unwrap()]);

    let mut serve = e.serve("both", &[]);
    let all_done = wait_until(Duration::from_secs(120), || {
        let l = e.json(&["task", "list", "--limit", "100000"]);
        let tasks = l["tasks"].as_array().cloned().unwrap_or_default();
        tasks.iter().filter(|t| t["status"] == "done").count() == readable.len()
    });
    let alive = serve.try_wait().unwrap().is_none();
    sigterm(&mut serve);
    let log: String = std::fs::read_dir(e.dir.path())
        .unwrap()
        .flatten()
        .filter(|f| f.file_name().to_string_lossy().starts_with("serve-"))
        .map(|f| std::fs::read_to_string(f.path()).unwrap_or_default())
        .collect();
    assert!(alive, "reef serve died on a generated document; its log:\n{log}");
    assert!(!log.contains("panicked"), "reef serve panicked; its log:\n{log}");
    let l = e.json(&["task", "list", "--limit", "100000"]);
    assert!(
        all_done,
        "every readable task done: {:?}",
        l["tasks"].as_array().unwrap().iter().filter(|t| t["status"] != "done").take(3).collect::<Vec<_>>()
    );

    // Each readable task ran once, in its own dir inside the work dir; no unreadable one ran.
    let runs = std::fs::read_to_string(fx.join("runs.log")).unwrap_or_default();
    let ran: Vec<&str> = runs.lines().collect();
    assert_eq!(ran.len(), readable.len(), "one run per readable task: {ran:?}");
    assert_eq!(ran.iter().copied().collect::<HashSet<_>>(), readable, "the readable tasks are the ones that ran");
    let work = std::fs::canonicalize(e.work.path()).unwrap();
    let pwds = std::fs::read_to_string(fx.join("pwds.log")).unwrap_or_default();
    let dirs: HashSet<&str> = pwds.lines().collect();
    assert_eq!(dirs.len(), readable.len(), "each task its own work dir");
    for d in &dirs {
        assert!(std::path::Path::new(d).starts_with(&work), "a work dir {d} outside {}", work.display());
    }

    // The rest are listed with a reason, stay pending (never claimed), and show fails cleanly.
    let malformed: HashMap<String, String> = l["malformed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap().to_string(), m["reason"].as_str().unwrap().to_string()))
        .collect();
    for id in &unreadable {
        let reason = malformed.get(*id).unwrap_or_else(|| panic!("{id:?} is not listed as unreadable: {malformed:?}"));
        assert!(!reason.is_empty());
        let out = e.cmd().args(["task", "show", id]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && !err.contains("panicked"), "show {id:?}: {err}");
    }
    // Their text reaches a terminal escaped: no raw escape, bell or CSI byte in the human listing.
    let human = e.ok(&["task", "list", "--limit", "100000"]);
    assert!(!human.contains(['\u{1b}', '\u{7}', '\u{9b}']), "raw control characters reached the terminal");
    eprintln!(
        "foreign documents through reef serve: {} generated, {} ran once each, {} quarantined and listed",
        docs.len(),
        readable.len(),
        unreadable.len()
    );
}
