//! The delivery loop end to end, with real git, a real `reef serve`, a contained builder, the
//! real LiteLLM proxy and real processes: a product whose test fails; a builder that first
//! deletes the test (flagged: its merge waits for a person, who turns it down) and then fixes the
//! code; the product's checks run contained in the worktree; a reviewer that sees the diff;
//! approval; a merge pushed to a bare remote's main; a deploy that records its version; a health
//! check that fails; a rollback proposed, approved, and the previous version restored.
//!
//! Stand-ins, named: the reviewer's model is the scripted provider (no paid model can be called
//! here), and "production" is a small HTTP server that answers the health URL from the files the
//! product's own deploy command writes — its error rate spikes under the new version.

use crate::common::{git_in, sigterm, wait_until, Env};
use crate::engine::one_answer_roster;
use serde_json::{json, Value};
use std::time::Duration;

/// A health endpoint for the stand-in production: 200 while the live version is one the test
/// lists as healthy, 500 otherwise.
fn start_production(live: &std::path::Path, healthy: &std::path::Path) -> u16 {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let script = r#"
import http.server, sys, pathlib
live, healthy, port = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3])
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        v = (live / "version").read_text().strip() if (live / "version").exists() else ""
        ok = v != "" and v in healthy.read_text().split()
        self.send_response(200 if ok else 500); self.end_headers(); self.wfile.write(b"ok" if ok else b"errors spiking")
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
"#;
    crate::common::python_server(
        &["-c", script, live.to_str().unwrap(), healthy.to_str().unwrap(), &port.to_string()],
        port,
        "the stand-in production",
    );
    port
}

/// What the `reef serve` processes logged (for a failure's message).
pub(crate) fn logs(e: &Env) -> String {
    let mut s = String::new();
    for f in std::fs::read_dir(e.dir.path()).unwrap().flatten() {
        if f.file_name().to_string_lossy().starts_with("serve-") {
            s.push_str(&std::fs::read_to_string(f.path()).unwrap_or_default());
        }
    }
    s.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).collect::<Vec<_>>().join("\n")
}

/// The product: a bare remote whose main holds `calc.py` (add() subtracts) and `test_calc.py`
/// (which therefore fails), and the checkout REEF works in. Answers (remote, checkout, main's commit).
pub(crate) fn calc_product(fx: &std::path::Path, test: &str) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let remote = fx.join("calc.git");
    let repo = fx.join("calc");
    std::fs::create_dir_all(&remote).unwrap();
    git_in(&remote, &["init", "-q", "--bare", "-b", "main"]);
    git_in(fx, &["clone", "-q", remote.to_str().unwrap(), repo.to_str().unwrap()]);
    let git = |args: &[&str]| git_in(&repo, args);
    git(&["checkout", "-q", "-b", "main"]);
    std::fs::write(repo.join("calc.py"), "def add(a, b):\n    return a - b\n").unwrap();
    std::fs::write(repo.join("test_calc.py"), test).unwrap();
    git(&["add", "."]);
    git(&["commit", "-qm", "calc with a failing test"]);
    git(&["push", "-q", "origin", "main"]);
    let v0 = git(&["rev-parse", "HEAD"]).trim().to_string();
    (remote, repo, v0)
}

pub(crate) fn pending_approval(e: &Env, task: &str) -> Option<Value> {
    e.json(&["approvals"])["approvals"].as_array().unwrap().iter().find(|a| a["task_id"] == task).cloned()
}

pub(crate) fn task_titled(e: &Env, prefix: &str) -> Option<Value> {
    e.tasks().into_iter().find(|t| t["title"].as_str().unwrap_or("").starts_with(prefix))
}

#[test]
fn a_change_goes_from_a_worktree_through_checks_review_merge_and_deploy_and_back_by_rollback() {
    // The reviewer sees the diff: it approves the fix only where the patch holds the fixed line,
    // and (fooled) approves the deletion too — the flag, not the reviewer, keeps that from main.
    let reviewer = json!([{"cases": [
        {"match": r"\+    return a \+ b", "say": json!({"verdict": "approve", "summary": "add() is fixed and its test kept", "comments": [{"file": "calc.py", "line": 2, "body": "right operator now"}]}).to_string()},
        {"match": "deletes test test_calc.py", "say": json!({"verdict": "approve", "summary": "the failing test is gone"}).to_string()},
        {"say": json!({"verdict": "revise", "summary": "I cannot see the change"}).to_string()}
    ]}]);
    let Some(s) = crate::scripted::start("delivery loop", &json!({"reviewer": reviewer})) else { return };
    let e = Env::new();
    let fx = e.fx();
    let test = "from calc import add\n\nassert add(2, 3) == 5, 'add(2, 3) should be 5'\nprint('test_calc ok')\n";
    let (remote, repo, v0) = calc_product(&fx, test);
    // Production: what the deploy command copies, and the versions that answer healthy.
    let live = fx.join("live");
    std::fs::create_dir_all(&live).unwrap();
    let healthy = fx.join("healthy-versions");
    std::fs::write(&healthy, format!("{v0}\n")).unwrap();
    let port = start_production(&live, &healthy);

    // The builder: a stand-in CLI agent, contained in its worktree. Attempt 1 deletes the failing
    // test; later attempts put the test back and fix the code.
    let builder = format!(
        r#"if [ "$REEF_ATTEMPT" = 1 ]; then rm test_calc.py; echo 'removed the failing test'; else printf {test:?} > test_calc.py; printf 'def add(a, b):\n    return a + b\n' > calc.py; echo 'fixed add()'; fi"#
    );
    let deploy =
        format!(r#"cp calc.py {l}/calc.py && printf %s "$REEF_VERSION" > {l}/version && echo shipped "$REEF_VERSION""#, l = live.display());
    let config = format!(
        "[engine]\nlease_seconds = 2\nmax_attempts = 10\nlitellm_config = {lc:?}\n[llm.tiers]\nmid = \"reviewer\"\nfrontier = \"reviewer\"\n\
         [[executors]]\nname = \"builder\"\nkinds = [\"build\"]\ncommand = [\"sh\", \"-c\", {builder:?}]\n\
         [[products]]\nname = \"calc\"\nrepository = {repo:?}\nremote = \"origin\"\ndeploy_writable = [{live:?}]\n\
         checks = [{{ name = \"test\", command = [\"sh\", \"-c\", \"for t in test_*.py; do [ -e \\\"$t\\\" ] || continue; python3 \\\"$t\\\" || exit 1; done\"] }}]\n\
         deploy = [\"sh\", \"-c\", {deploy:?}]\nhealth_url = \"http://127.0.0.1:{port}/health\"\nhealth_checks = 2\nhealth_interval_seconds = 0.2\n{roster}",
        lc = s.gateway.config.display().to_string(),
        repo = repo.display().to_string(),
        live = live.display().to_string(),
        roster = one_answer_roster(),
    );
    e.write_config(&config);
    e.with_prices();
    let id = e.add_task("Fix add()", &["--type", "build", "--agent", "rex", "--product", "calc", "--tier", "cheap"]);
    let env = s.env();
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut serve = e.serve("both", &pairs);

    // 1. The deletion: checks pass (no test left to fail), the reviewer approves, but the merge is
    // flagged and waits for a person, who turns it down.
    let flagged = wait_until(Duration::from_secs(90), || {
        task_titled(&e, "Merge: Fix add()").and_then(|m| pending_approval(&e, m["_id"].as_str().unwrap())).is_some()
    });
    let merge1 = task_titled(&e, "Merge: Fix add()");
    assert!(flagged, "the flagged merge waits for approval: {merge1:?} {:?}\n{}", e.tasks(), logs(&e));
    let merge1 = merge1.unwrap();
    let a1 = pending_approval(&e, merge1["_id"].as_str().unwrap()).unwrap();
    assert!(a1["summary"].as_str().unwrap().contains("FLAGGED: deletes test test_calc.py"), "the card says why: {a1}");
    let shown = e.json(&["task", "show", &id]);
    assert_eq!(shown["change"]["flags"][0]["kind"], "tests_deleted", "{}", shown["change"]);
    let diff = e.ok(&["task", "diff", &id]);
    assert!(diff.contains("deleted") && diff.contains("-assert add(2, 3) == 5"), "reef task diff shows the deletion:\n{diff}");
    e.ok(&["reject", a1["_id"].as_str().unwrap(), "--reason", "keep the test; fix add() instead"]);

    // 2. The fix: the builder's next attempt (it reads the rejection), checks, a review of the
    // diff with a line comment, then the merge — approved by a person — lands on the remote's main.
    let second = wait_until(Duration::from_secs(90), || {
        e.tasks().into_iter().any(|t| t["title"] == "Merge: Fix add()" && t["_id"] != merge1["_id"] && t["status"] == "awaiting_approval")
    });
    let merge2 = e.tasks().into_iter().find(|t| t["title"] == "Merge: Fix add()" && t["_id"] != merge1["_id"]);
    assert!(second, "the fixed change's merge waits for approval: {merge2:?}\n{:#}\n{}", e.json(&["task", "show", &id]), logs(&e));
    let merge2 = merge2.unwrap();
    let builder_task = e.json(&["task", "show", &id]);
    let change = &builder_task["change"];
    assert!(change["flags"].as_array().unwrap().is_empty(), "the test is back, so nothing is flagged: {change}");
    assert_eq!(change["checks"][0]["passed"], true, "{change}");
    assert!(change["checks"][0]["output"].as_str().unwrap().contains("test_calc ok"), "the test ran in the worktree: {change}");
    assert_eq!(change["review"]["comments"][0]["file"], "calc.py", "the reviewer's line comment is kept: {change}");
    let comments = builder_task["task"]["comments"].as_array().unwrap().clone();
    assert!(
        comments.iter().any(|c| c["body"].as_str().unwrap().contains("keep the test; fix add() instead")),
        "the builder read why: {comments:?}"
    );
    let a2 = pending_approval(&e, merge2["_id"].as_str().unwrap()).unwrap();
    assert!(!a2["summary"].as_str().unwrap().contains("FLAGGED"), "{a2}");
    assert_eq!(git_in(&remote, &["rev-parse", "main"]).trim(), v0, "nothing reached main before the approval");
    e.ok(&["approve", a2["_id"].as_str().unwrap()]);

    // 3. Merged; the deploy waits behind production_deploy; approved, it ships and records its version.
    let deploy_waits = wait_until(Duration::from_secs(60), || {
        task_titled(&e, "Deploy calc").and_then(|d| pending_approval(&e, d["_id"].as_str().unwrap())).is_some()
    });
    let merged = git_in(&remote, &["rev-parse", "main"]).trim().to_string();
    assert_ne!(merged, v0, "the merge was pushed to the remote's main");
    assert!(git_in(&remote, &["show", "main:calc.py"]).contains("return a + b"));
    assert!(git_in(&remote, &["show", "main:test_calc.py"]).contains("assert add(2, 3) == 5"), "the test stayed");
    let brief = |e: &Env| {
        e.tasks().iter().map(|t| format!("{} [{}] {} {}", t["title"], t["status"], t["error"], t["result"])).collect::<Vec<_>>().join("\n")
    };
    let dep_events =
        |e: &Env| task_titled(e, "Deploy calc").map(|d| e.ok(&["task", "show", d["_id"].as_str().unwrap()])).unwrap_or_default();
    assert!(deploy_waits, "{}\n{}\n{}", brief(&e), dep_events(&e), logs(&e));
    let dep = task_titled(&e, "Deploy calc").unwrap();
    let ad = pending_approval(&e, dep["_id"].as_str().unwrap()).unwrap();
    e.ok(&["approve", ad["_id"].as_str().unwrap()]);

    // 4. The new version is live, its health fails, a rollback is proposed; approved, it restores v0.
    let proposed = wait_until(Duration::from_secs(60), || {
        task_titled(&e, "Roll calc back").and_then(|r| pending_approval(&e, r["_id"].as_str().unwrap())).is_some()
    });
    assert!(proposed, "{}\n{}", brief(&e), logs(&e));
    assert_eq!(std::fs::read_to_string(live.join("version")).unwrap(), merged, "the deploy shipped the merge commit");
    let unhealthy = e.json(&["events", "--kind", "deploy.unhealthy"]);
    assert_eq!(unhealthy["events"][0]["data"]["alert"], true, "{unhealthy}");
    let rb = task_titled(&e, "Roll calc back").unwrap();
    let ar = pending_approval(&e, rb["_id"].as_str().unwrap()).unwrap();
    e.ok(&["approve", ar["_id"].as_str().unwrap()]);
    let restored = wait_until(Duration::from_secs(60), || {
        std::fs::read_to_string(live.join("version")).ok().as_deref() == Some(v0.as_str())
            && e.json(&["deploys", "calc"])["deploys"].as_array().is_some_and(|d| d.last().is_some_and(|x| x["health"] == "healthy"))
    });
    sigterm(&mut serve);
    assert!(restored, "the previous version is live again: {:?}", e.json(&["deploys", "calc"]));
    let deploys = e.json(&["deploys", "calc"])["deploys"].as_array().unwrap().clone();
    let health = |v: &str| deploys.iter().find(|d| d["version"] == v).map(|d| d["health"].clone());
    assert_eq!(health(&merged), Some(json!("rolled_back")), "{deploys:?}");
    assert_eq!(health(&v0), Some(json!("healthy")), "{deploys:?}");
    // Nothing healthy lies before the restored version (the merge was rolled back): asked to roll
    // back again, REEF says so rather than shipping the broken version.
    let why = e.fails(&["rollback", "calc"]);
    assert!(why.contains("no earlier healthy deploy"), "{why}");

    // Every step is in the builder's `task show` and the event log.
    let shown = e.ok(&["task", "show", &id]);
    for want in ["Change (", "check     test passed", "review    approved", "merge", "deploy"] {
        assert!(shown.contains(want), "reef task show lacks {want:?}:\n{shown}");
    }
    let kinds: Vec<String> = e.json(&["events", "--limit", "2000"])["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["type"].as_str().unwrap_or("").to_string())
        .collect();
    for k in [
        "change.recorded",
        "change.reviewed",
        "change.returned",
        "change.merged",
        "deploy.done",
        "deploy.unhealthy",
        "delivery.rollback_proposed",
        "deploy.rolled_back",
    ] {
        assert!(kinds.iter().any(|x| x == k), "the event log lacks {k}: {kinds:?}");
    }
    let audit = e.ok(&["audit"]);
    for a in ["delivery.merge", "delivery.deploy", "delivery.rollback"] {
        assert!(audit.contains(a), "the audit log lacks {a}:\n{audit}");
    }
}

/// A builder that attacks the delivery loop from its worktree, all in one attempt: it points its
/// worktree's git dir at a repository of its own whose config names a filter (so a host git that
/// followed it would run the agent's command as REEF); it commits a backdoor and moves `main`,
/// `origin/main` and a shadowing tag onto it (so a base read from those refs would hide the
/// backdoor from the diff); and it makes the failing test pass with an ignored package that
/// shadows the real module (so checks run in the worktree would pass on files the change does not
/// hold). None of it works: REEF reads no agent's `.git`, measures against the remote's main,
/// and runs the checks on an export of the commit.
#[test]
fn a_hostile_builder_cannot_run_code_on_the_host_hide_part_of_its_change_or_pass_checks_with_files_outside_it() {
    let e = Env::new();
    let fx = e.fx();
    let (remote, repo, v0) = calc_product(&fx, "from calc import add\nassert add(2, 3) == 5\n");
    // Written only if a host process runs the agent's filter: the data dir is outside its sandbox.
    let marker = e.dir.path().join("host-ran-the-agents-filter");
    let attack = format!(
        r#"set -x
G="git -c user.name=a -c user.email=a@a"
gitdir=$(sed 's/^gitdir: //' .git)
$G init -q "$PWD/evil" && $G -C "$PWD/evil" config filter.pwn.clean "sh -c 'touch {m}; cat'"
echo "$PWD/evil/.git" > "$gitdir/commondir"
echo '* filter=pwn' > .gitattributes
echo 'import os  # backdoor' > backdoor.py
$G add backdoor.py && $G commit -qm 'harmless'
$G tag -f origin/main HEAD; $G update-ref refs/remotes/origin/main HEAD; $G update-ref refs/heads/main HEAD
mkdir -p calc && printf 'def add(a, b):\n    return a + b\n' > calc/__init__.py
printf 'calc/\n.gitignore\nevil/\n' > .gitignore
echo 'tidied the docs' > NOTES.md
echo done"#,
        m = marker.display()
    );
    e.write_config(&format!(
        "[engine]\nlease_seconds = 2\n[[executors]]\nname = \"builder\"\nkinds = [\"build\"]\ncommand = [\"sh\", \"-c\", {attack:?}]\n\
         [[products]]\nname = \"calc\"\nrepository = {repo:?}\nmax_check_rounds = 1\n\
         checks = [{{ name = \"test\", command = [\"sh\", \"-c\", \"for t in test_*.py; do python3 \\\"$t\\\" || exit 1; done\"] }}]\n",
        repo = repo.display().to_string()
    ));
    e.with_prices();
    let id = e.add_task("Tidy the docs", &["--type", "build", "--agent", "rex", "--product", "calc"]);
    let mut serve = e.serve("both", &[]);
    let settled = wait_until(Duration::from_secs(60), || e.count("needs_human") == 1);
    sigterm(&mut serve);
    let shown = e.json(&["task", "show", &id]);
    assert!(settled, "{:#}\n{}", shown["task"], logs(&e));
    assert!(!marker.exists(), "a host git ran the agent's filter");
    let change = &shown["change"];
    assert_eq!(change["base"], v0, "measured against the remote's main, not the refs the agent moved: {change}");
    let stat = e.json(&["task", "diff", &id, "--stat"]);
    let files: Vec<&str> = stat["change"]["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert!(files.contains(&"backdoor.py") && files.contains(&"NOTES.md"), "the whole change is shown: {files:?}");
    assert!(!files.iter().any(|f| f.starts_with("calc/") || f.starts_with("evil/")), "ignored files are not part of it: {files:?}");
    assert_eq!(change["checks"][0]["passed"], false, "the checks ran on the commit, without the ignored shadow package: {change}");
    assert!(change["flags"].as_array().unwrap().iter().any(|f| f["path"] == ".gitattributes"), "{change}");
    // The agent's repository and its remote are as they were: REEF pushed nothing.
    assert_eq!(git_in(&remote, &["rev-parse", "main"]).trim(), v0);
}
