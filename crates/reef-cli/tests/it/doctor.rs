//! `reef doctor` on the embedded store and on the MongoDB-wire-compatible test server (jongodb,
//! not MongoDB): each check printed, the guarantees proven on a scratch store that is gone
//! afterwards, and no write beside a factory without the operator's word.

use crate::common::*;
use serde_json::Value;

fn verdict<'a>(report: &'a Value, name: &str) -> &'a str {
    report["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no check {name}: {report}"))
        ["verdict"]
        .as_str()
        .unwrap()
}

#[test]
fn doctor_proves_the_guarantees_on_a_scratch_embedded_store_and_leaves_nothing_behind() {
    let e = Env::new();
    e.ok(&["task", "add", "a real task that doctor must not touch"]);
    let out = e.cmd().args(["doctor"]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    eprintln!("{table}");
    assert!(out.status.success(), "{table}{}", String::from_utf8_lossy(&out.stderr));
    let r = e.json(&["doctor"]);
    for name in
        ["concurrent claims", "concurrent reservations", "watch resumed after a restart", "write-ahead log", "change feed", "file modes"]
    {
        assert_eq!(verdict(&r, name), "holds", "{name}: {r}");
    }
    let left: Vec<_> = std::fs::read_dir(e.dir.path())
        .unwrap()
        .flatten()
        .filter(|d| d.file_name().to_string_lossy().starts_with(".reef-doctor-"))
        .collect();
    assert!(left.is_empty(), "the scratch store is removed");
    let tasks = e.tasks();
    assert_eq!(tasks.len(), 1, "doctor wrote nothing into the factory: {tasks:?}");
    assert!(table.contains("CHECK") && table.contains("concurrent claims"));
}

#[test]
fn doctor_on_the_wire_compatible_test_server_names_its_fallbacks_and_asks_before_writing_beside_a_factory() {
    let Some(uri) = std::env::var("REEF_TEST_MONGODB_URI").ok().filter(|s| !s.is_empty()) else {
        eprintln!("SKIPPED doctor on MongoDB: REEF_TEST_MONGODB_URI is not set (no MongoDB-compatible server here)");
        return;
    };
    let e = Env::new();
    let db = format!("reef_test_{}", uuid::Uuid::new_v4().simple());
    e.write_config(&format!("[store]\ndatabase = {db:?}\n"));
    e.set_env("REEF_MONGODB_URI", &uri);
    let rt = tokio::runtime::Runtime::new().unwrap();
    // What is left of a scratch database (by the name the report gives): nothing REEF wrote.
    let left_in = |scratch: &str| {
        let s = rt.block_on(reef_store::mongo::MongoStore::reach(&uri, scratch)).unwrap();
        rt.block_on(s.holds_factory()).unwrap()
    };

    // An empty database: doctor goes ahead without asking.
    let out = e.cmd().args(["--json", "doctor"]).output().unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    eprintln!("{}", serde_json::to_string_pretty(&r["checks"]).unwrap());
    let compat = std::env::var("REEF_TEST_MONGODB_COMPAT").ok().as_deref() == Some("jongodb");
    if compat {
        // jongodb is a standalone server without transactions or change streams: said, not hidden.
        for name in ["replica set", "change streams", "transactions"] {
            assert_eq!(verdict(&r, name), "falls_back", "{name}: {r}");
        }
    }
    assert_eq!(verdict(&r, "indexes"), "skipped", "an empty database has no indexes to check yet");
    for name in ["concurrent reservations", "watch resumed after a restart"] {
        assert_eq!(verdict(&r, name), "holds", "{name}: {r}");
    }
    // A failed guarantee is a failed doctor: the exit status says so.
    let claims = verdict(&r, "concurrent claims");
    assert_eq!(out.status.success(), claims != "fails", "exit status follows the verdicts: {r}");
    let scratch = r["scratch"].as_str().unwrap().to_string();
    assert!(scratch.starts_with(reef_store::mongo::SCRATCH_PREFIX), "{scratch}");
    assert!(!left_in(&scratch), "the scratch database {scratch} was dropped");

    // Once the database holds a factory, doctor asks; with no terminal to ask on, it refuses.
    e.ok(&["task", "add", "the factory's own work"]);
    let out = e.cmd().args(["doctor"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--yes"), "refused without consent: {err}");
    assert!(out.stdout.is_empty(), "no report: nothing was tried");
    let out = e.cmd().args(["--json", "doctor", "--yes"]).output().unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict(&r, "indexes"), "holds", "REEF's indexes are on the factory's database: {r}");
    assert_eq!(e.tasks().len(), 1, "the factory's database is untouched");
    assert!(!left_in(r["scratch"].as_str().unwrap()), "the second scratch database was dropped too");
}
