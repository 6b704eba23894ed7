//! A product's pipeline as revisions, with a real `reef serve` and real git: an edit made with
//! `reef pipeline set` (what the window's Products view calls too) is what the engine runs at the
//! next attempt; a bad edit is refused naming its key and changes nothing; an edit against an
//! older revision is refused; a rollback is a new revision; a restart keeps the edit; a change of
//! the config file's table is the newest revision at the next start.

use crate::common::{sigterm, wait_until, Env};
use crate::delivery::calc_product;
use std::time::Duration;

fn config(repo: &std::path::Path, check: &str) -> String {
    format!(
        "[engine]\nlease_seconds = 2\n\
         [[executors]]\nname = \"builder\"\nkinds = [\"build\"]\ncommand = [\"sh\", \"-c\", \"echo edited > notes.txt\"]\n\
         [[products]]\nname = \"calc\"\nrepository = {repo:?}\nmax_check_rounds = 1\n\
         checks = [{{ name = \"test\", command = [\"sh\", \"-c\", {check:?}] }}]\n{roster}",
        repo = repo.display().to_string(),
        roster = crate::engine::one_answer_roster(),
    )
}

#[test]
fn a_pipeline_edited_as_a_revision_is_what_the_engine_runs_and_can_be_rolled_back() {
    let e = Env::new();
    let fx = e.fx();
    let (_remote, repo, _) = calc_product(&fx, "print('ok')\n");
    e.write_config(&config(&repo, "echo check from the file; exit 0"));
    e.with_prices();
    let revisions = || e.json(&["pipeline", "revisions", "calc"])["revisions"].as_array().unwrap().clone();

    // The file's table, shown as the text to edit.
    let shown = e.json(&["pipeline", "show", "calc"]);
    assert_eq!((shown["revision"].as_u64(), shown["exists"].as_bool()), (Some(0), Some(true)), "{shown}");
    let text = shown["text"].as_str().unwrap().to_string();
    assert!(text.contains("check from the file"), "{text}");

    // A bad edit is refused, naming its key, and keeps nothing.
    let bad = fx.join("bad.toml");
    std::fs::write(&bad, text.replace("\"sh\", \"-c\", \"echo check from the file; exit 0\"", "")).unwrap();
    let why = e.fails(&["pipeline", "set", "calc", "--file", bad.to_str().unwrap()]);
    assert!(why.contains("products[0].checks[0].command"), "{why}");
    std::fs::write(&bad, text.replace("name = \"calc\"", "name = \"other\"")).unwrap();
    assert!(e.fails(&["pipeline", "set", "calc", "--file", bad.to_str().unwrap()]).contains("cannot be renamed"));
    assert!(revisions().is_empty());

    // The edit: the file's table becomes revision 1, the edit revision 2.
    let edited = fx.join("edited.toml");
    std::fs::write(&edited, text.replace("echo check from the file; exit 0", "echo check from revision 2; exit 1")).unwrap();
    let r = e.json(&["pipeline", "set", "calc", "--file", edited.to_str().unwrap(), "--base", "0", "--reason", "stricter"]);
    assert_eq!(r["revision"], 2, "{r}");
    let revs = revisions();
    assert_eq!((revs.len(), revs[1]["author"].as_str()), (2, Some("config file")), "{revs:?}");
    assert_eq!(revs[0]["reason"], "stricter");
    // An edit made from revision 0 again (someone else's stale editor) is refused.
    let stale = e.fails(&["pipeline", "set", "calc", "--file", edited.to_str().unwrap(), "--base", "0"]);
    assert!(stale.contains("at revision 2 now"), "{stale}");

    // The engine runs revision 2's check.
    let id = e.add_task("Take notes", &["--type", "build", "--agent", "rex", "--product", "calc", "--tier", "cheap"]);
    let mut serve = e.serve("both", &[]);
    let checked = wait_until(Duration::from_secs(60), || e.json(&["task", "show", &id])["change"]["checks"][0]["output"].is_string());
    let change = e.json(&["task", "show", &id])["change"].clone();
    sigterm(&mut serve);
    assert!(checked, "{change} {:#}\n{}", e.json(&["task", "show", &id]), crate::delivery::logs(&e));
    assert!(change["checks"][0]["output"].as_str().unwrap().contains("check from revision 2"), "{change}");
    assert_eq!(change["checks"][0]["passed"], false);
    assert_eq!(revisions().len(), 2, "a start with the file unchanged adds no revision");

    // Rolled back: a new revision with the file's table.
    let r = e.json(&["pipeline", "rollback", "calc", "1"]);
    assert_eq!(r["revision"], 3);
    assert!(e.json(&["pipeline", "show", "calc"])["text"].as_str().unwrap().contains("check from the file"));
    let kinds = e.json(&["events", "--kind", "pipeline.revised"])["events"].as_array().unwrap().len();
    assert_eq!(kinds, 2, "the edit and the rollback are evented");
    assert!(e.ok(&["audit"]).contains("pipeline.edit"));

    // The file's table changed: the newest revision at the next start.
    e.write_config(&config(&repo, "echo check from the file, changed; exit 0"));
    let mut serve = e.serve("both", &[]);
    let applied = wait_until(Duration::from_secs(30), || revisions().len() == 4);
    sigterm(&mut serve);
    assert!(applied, "{:?}", revisions());
    assert!(e.json(&["pipeline", "show", "calc"])["text"].as_str().unwrap().contains("changed"));
    assert_eq!(revisions()[0]["author"], "config file");
}

/// A change no reviewer could review (no other agent) waits in review; a person accepts it, as its
/// reviewer, and it goes on to its merge behind the merge gate.
#[test]
fn a_change_no_agent_could_review_is_accepted_by_a_person_and_goes_on_to_its_merge() {
    let e = Env::new();
    let fx = e.fx();
    let (_remote, repo, _) = calc_product(&fx, "print('ok')\n");
    e.write_config(&format!(
        "[engine]\nlease_seconds = 2\n\
         [[executors]]\nname = \"builder\"\nkinds = [\"build\"]\ncommand = [\"sh\", \"-c\", \"echo edited > notes.txt\"]\n\
         [[products]]\nname = \"calc\"\nrepository = {repo:?}\nchecks = [{{ name = \"test\", command = [\"sh\", \"-c\", \"exit 0\"] }}]\n\
         [[agents]]\nname = \"rex\"\nrole = \"builder\"\ncapabilities = [\"build\"]\nmodel_tier = \"cheap\"\ndaily_cap_usd = 10\nmax_concurrent = 1\n",
        repo = repo.display().to_string(),
    ));
    e.with_prices();
    let id = e.add_task("Take notes", &["--type", "build", "--agent", "rex", "--product", "calc", "--tier", "cheap"]);
    let mut serve = e.serve("both", &[]);
    let waits = wait_until(Duration::from_secs(60), || e.json(&["task", "show", &id])["task"]["status"] == "review");
    assert!(waits, "{:#}\n{}", e.json(&["task", "show", &id]), crate::delivery::logs(&e));
    assert!(e.fails(&["accept", "no-such-task"]).contains("no-such-task"));
    e.ok(&["accept", &id, "--note", "read the diff; fine"]);
    let merge = wait_until(Duration::from_secs(30), || {
        e.tasks().iter().any(|t| t["title"] == "Merge: Take notes" && t["status"] == "awaiting_approval")
    });
    let shown = e.json(&["task", "show", &id]);
    sigterm(&mut serve);
    assert!(merge, "{:?}\n{shown:#}", e.tasks());
    assert_eq!(shown["task"]["status"], "done");
    assert_eq!(shown["change"]["review"]["reviewer"], "operator:tester@testhost", "{shown}");
    assert_eq!(shown["change"]["review"]["summary"], "read the diff; fine");
    assert!(e.fails(&["accept", &id]).contains("not waiting in review"), "a done task is not accepted twice");
    assert!(e.ok(&["audit"]).contains("task.accept"));
}
