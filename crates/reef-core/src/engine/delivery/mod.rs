//! The delivery loop in the engine: after a builder's attempt in a worktree, REEF commits what
//! it left, measures the change against the product's main, flags what touches tests or check
//! definitions, and runs the product's checks contained in the worktree; the steps that follow
//! a reviewed change (merge, deploy, rollback) are in `steps`.
//!
//! Invariants: an attempt whose checks fail is not done (the failures go back to the builder, a
//! bounded number of rounds, then to a person); checks run under bubblewrap like the agent did,
//! never with REEF's reach; what is recorded names the commit it was measured on.

mod forge;
mod pull_read;
pub mod pulls;
pub(super) mod steps;

use super::exec::Job;
use super::runtime::Engine;
use super::workspace::{Reach, Workspace};
use crate::domain::change::{ChangeRecord, CheckRun};
use crate::git::{flags_of, mirror_dir, remote_url, Mirror};
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// Bytes of one check's output kept with the change (head and tail of what it printed).
const CHECK_OUTPUT_KEPT: usize = 4 * 1024;

/// The product's main as its remote has it now, fetched into REEF's mirror (objects hashed on
/// arrival), or — for a repository without a pipeline — the checkout's current branch (then the
/// base is only as good as that checkout's refs, which agents working in it can move).
pub(crate) fn fetch_main(m: &Mirror, repository: &Path, p: Option<&crate::config::Pipeline>) -> Result<String, crate::git::GitError> {
    match p {
        Some(p) => m.fetch_branch(&remote_url(repository, &p.remote)?, &p.main),
        None => {
            let head = std::fs::read_to_string(repository.join(".git").join("HEAD")).unwrap_or_default();
            let branch = head.trim().strip_prefix("ref: refs/heads/").unwrap_or("main").to_string();
            m.fetch_branch(&repository.display().to_string(), &branch)
        }
    }
}

/// Snapshots the attempt's worktree into REEF's mirror as a child of the product's main, then
/// runs the product's checks on a fresh export of that commit. `None` when the task has no
/// worktree (no repository, or an executor that works elsewhere and left no directory).
pub(super) async fn after_attempt(e: &Engine, job: &Job, cancel: &CancellationToken) -> Result<Option<ChangeRecord>, String> {
    let t = &job.task;
    let Some(repository) = t.work_products.repository.clone() else { return Ok(None) };
    // Decided by REEF's own record (the task names a repository and its directory exists), never
    // by what the agent left in it: deleting `.git` skips nothing.
    if !job.workdir.is_dir() {
        return Ok(None);
    }
    let f = &e.factory;
    let pipeline = f.pipeline(t.product.as_deref()).await.map_err(|e| format!("reading the pipeline of {:?}: {e}", t.product))?;
    let protected = pipeline.as_ref().map(|p| p.protected.clone()).unwrap_or_default();
    let dir = mirror_dir(&f.config.data_dir, &repository);
    let (workdir, repo_path) = (job.workdir.clone(), PathBuf::from(&repository));
    let message = format!("reef: {} (task {}, attempt {})", t.title.chars().take(200).collect::<String>(), t.id, job.attempt);
    let (p2, task_id) = (pipeline.clone(), t.id.clone());
    let measured = tokio::task::spawn_blocking(move || {
        let m = Mirror::open(&dir)?;
        let base = fetch_main(&m, &repo_path, p2.as_ref())?;
        let head = m.snapshot(&workdir, &base, &message, &task_id)?;
        let files = m.files(&base, &head)?;
        let commits = m.commits(&base, &head, 200)?;
        Ok::<_, crate::git::GitError>((m, head, base, files, commits))
    })
    .await
    .map_err(|e| format!("recording the change stopped: {e}"))?
    .map_err(|e| format!("could not record the change of {repository}: {e}"))?;
    let (mirror, head, base, files, commits) = measured;
    let flags = flags_of(&files, &protected);
    let mut checks = vec![];
    if let Some(p) = pipeline.as_ref().filter(|p| !p.checks.is_empty()) {
        // The checks see the commit, not the worktree: nothing the agent kept out of the commit
        // (ignored files, index tricks) is there to help them pass.
        let checkout = e.containment.workdir(&format!("checks-{}", t.id));
        let (m, h, c2) = (mirror.clone(), head.clone(), checkout.clone());
        tokio::task::spawn_blocking(move || m.export(&h, &c2))
            .await
            .map_err(|e| format!("exporting the change stopped: {e}"))?
            .map_err(|e| format!("could not export the change for its checks: {e}"))?;
        let reach = Reach { containment: e.containment.clone(), children_dir: e.children_dir() };
        for c in &p.checks {
            if cancel.is_cancelled() {
                return Err("stopped while the checks ran".into());
            }
            checks.push(run_check(e, &reach, job, &checkout, c, p.check_timeout, cancel).await);
        }
        let _ = std::fs::remove_dir_all(&checkout);
    }
    let old = f.change(&t.id).await.ok().flatten();
    let rec = ChangeRecord {
        task: t.id.clone(),
        product: t.product.clone(),
        repository,
        branch: t.work_products.branch.clone(),
        base,
        head,
        attempt: job.attempt,
        files: files.len() as u64,
        added: files.iter().filter_map(|x| x.added).sum(),
        deleted: files.iter().filter_map(|x| x.deleted).sum(),
        flags,
        stage: if checks.iter().all(|c: &CheckRun| c.passed) { "checked" } else { "checks_failed" }.into(),
        checks,
        review: None,
        comments: old.as_ref().map(|o| o.comments.clone()).unwrap_or_default(),
        steps: old.map(|o| o.steps).unwrap_or_default(),
    };
    // The list first: a record is never read without the list it names being there or computable.
    f.keep_change_files(&rec, &files, &commits).await.map_err(|e| format!("could not save the change's files: {e}"))?;
    f.save_change(&rec).await.map_err(|e| format!("could not save the change: {e}"))?;
    let data = serde_json::json!({
        "head": rec.head, "base": rec.base, "files": rec.files, "added": rec.added, "deleted": rec.deleted,
        "flags": rec.flags.iter().map(|x| x.describe()).collect::<Vec<_>>(),
        "checks": rec.checks.iter().map(|c| serde_json::json!({"name": c.name, "passed": c.passed, "exit_code": c.exit_code})).collect::<Vec<_>>(),
        "passed": rec.checks_passed(), "alert": !rec.flags.is_empty(),
    });
    let _ = f.event("change.recorded", &format!("agent:{}", job.agent.name), Some(&t.id), data).await;
    Ok(Some(rec))
}

/// One check, contained in the export of the change (as the agent loop's `run_command`, with
/// no repository of any kind in reach).
async fn run_check(
    e: &Engine,
    reach: &Reach,
    job: &Job,
    checkout: &Path,
    c: &crate::config::Check,
    limit: std::time::Duration,
    cancel: &CancellationToken,
) -> CheckRun {
    let line = shlex::try_join(c.command.iter().map(String::as_str)).unwrap_or_else(|_| c.command.join(" "));
    let mut task = job.task.clone();
    task.work_products.repository = None;
    let ws = Workspace {
        reach,
        task: &task,
        root: checkout.to_path_buf(),
        programs: vec![c.command[0].clone()],
        command_time: limit,
        read_only: e.factory.config.engine.agent_loop.read_only.clone(),
    };
    let mut run = CheckRun {
        name: c.name.clone(),
        command: line.clone(),
        passed: false,
        exit_code: None,
        timed_out: false,
        seconds: 0.0,
        output: String::new(),
    };
    match ws.call("run_command", &serde_json::json!({"command": line}), cancel).await {
        Ok(done) => {
            let a = done.answer;
            run.exit_code = a["exit_code"].as_i64().map(|x| x as i32);
            run.timed_out = a["timed_out"].as_bool().unwrap_or(false);
            run.seconds = a["seconds"].as_f64().unwrap_or(0.0);
            run.output = keep(a["output"].as_str().unwrap_or(""));
            run.passed = run.exit_code == Some(0);
        }
        Err(err) => run.output = format!("the check could not run: {err}"),
    }
    run
}

/// The head and tail of a check's output, within [`CHECK_OUTPUT_KEPT`].
fn keep(s: &str) -> String {
    if s.len() <= CHECK_OUTPUT_KEPT {
        return s.to_string();
    }
    let half = CHECK_OUTPUT_KEPT / 2;
    let (mut a, mut b) = (half, s.len() - half);
    while !s.is_char_boundary(a) {
        a -= 1;
    }
    while !s.is_char_boundary(b) {
        b += 1;
    }
    format!("{}\n[… {} bytes left out …]\n{}", &s[..a], b - a, &s[b..])
}

/// What failing checks tell the builder (and the person, after the last round).
pub(super) fn check_feedback(rec: &ChangeRecord) -> String {
    let mut s = format!("The product's checks failed on commit {}:\n", crate::factory::delivery::short(&rec.head));
    for c in rec.checks.iter().filter(|c| !c.passed) {
        let how = if c.timed_out {
            "timed out".to_string()
        } else {
            format!("exit {}", c.exit_code.map(|x| x.to_string()).unwrap_or("?".into()))
        };
        s.push_str(&format!("\n## {} (`{}`): {how}\n{}\n", c.name, c.command, c.output.trim_end()));
    }
    s
}
