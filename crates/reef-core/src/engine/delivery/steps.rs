//! The steps after a reviewed change, each a task behind its own gate: merge the reviewed
//! commit into the product's main, deploy a version (recorded, then its health read), roll back
//! to the version before.
//!
//! Invariants: a merge merges the commit its step names and only while that is still the
//! change's latest (a superseded step does nothing); a conflict sends the change back to its
//! builder with the files; a deploy whose health fails raises an alert and a rollback (proposed
//! behind approve-before, or at once where the product says so); every step is audited.

use super::super::exec::{ExecError, ExecSuccess, ProgressTx};
use super::super::runtime::Engine;
use crate::config::Pipeline;
use crate::domain::change::{ChangeRecord, Deploy, Health, Step};
use crate::factory::delivery::short;
use crate::git::{mirror_dir, remote_url, GitError, Mirror};
use crate::*;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Runs a step task.
pub(in crate::engine) async fn run(
    e: &Engine,
    task: &Task,
    step: Step,
    tx: ProgressTx,
    cancel: CancellationToken,
) -> Result<ExecSuccess, ExecError> {
    let f = &e.factory;
    let p = f
        .pipeline(Some(step.product()))
        .await
        .map_err(|x| ExecError::Failed(x.to_string()))?
        .ok_or_else(|| ExecError::NotRunnable(format!("product {} has no [[products]] pipeline on this host", step.product())))?;
    let mut work_products = WorkProducts::default();
    let output = match step {
        Step::Merge { change, sha, .. } if p.forge.is_some() => {
            let (said, url) = super::pulls::open(e, task, &p, &change, &sha).await?;
            work_products.pr_url = Some(url);
            said
        }
        Step::Merge { change, sha, .. } => merge(e, task, &p, &change, &sha).await?,
        Step::Deploy { version, change, .. } => deploy(e, task, &p, &version, change.as_deref(), &tx, &cancel).await?,
        Step::Rollback { version, from, reason, .. } => rollback(e, task, &p, &version, &from, &reason, &tx, &cancel).await?,
    };
    Ok(ExecSuccess { output, work_products, cost: Usd(0) })
}

pub(super) async fn git<T: Send + 'static>(f: impl FnOnce() -> Result<T, GitError> + Send + 'static) -> Result<T, GitError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| GitError::Invalid(format!("git stopped: {e}")))?
}

/// The change a merge step names, while `sha` is still its latest (a superseded step does nothing).
pub(super) async fn reviewed_change(f: &crate::factory::Factory, change: &str, sha: &str) -> Result<ChangeRecord, ExecError> {
    let rec = f
        .change(change)
        .await
        .map_err(|x| ExecError::Failed(x.to_string()))?
        .ok_or_else(|| ExecError::NotRunnable(format!("task {change} has no recorded change")))?;
    if rec.head != sha {
        return Err(ExecError::NotRunnable(format!(
            "superseded: task {change}'s change is now at {}, not {} (this merge was for an earlier attempt)",
            short(&rec.head),
            short(sha)
        )));
    }
    Ok(rec)
}

async fn merge(e: &Engine, task: &Task, p: &Pipeline, change: &str, sha: &str) -> Result<String, ExecError> {
    let f = &e.factory;
    let actor = format!("agent:{}", task.assigned_to.as_deref().unwrap_or("reef"));
    let mut rec = reviewed_change(f, change, sha).await?;
    let dir = mirror_dir(&f.config.data_dir, &rec.repository);
    let (repo, main, remote, sha2) = (p.repository.clone(), p.main.clone(), p.remote.clone(), sha.to_string());
    let message = format!("Merge REEF task {change}: {}", task.title.trim_start_matches("Merge: "));
    // Merged in REEF's mirror against main as the remote has it now, then pushed: the remote
    // refuses the push if main moved meanwhile, so nothing is overwritten.
    let merged = git(move || {
        let m = Mirror::open(&dir)?;
        let url = remote_url(&repo, &remote)?;
        let now = m.fetch_branch(&url, &main)?;
        let merged = m.merge(&now, &sha2, &message)?;
        m.push(&url, &merged.merge, &main)?;
        Ok(merged)
    })
    .await;
    match merged {
        Ok(m) => {
            rec.stage = "merged".into();
            rec.steps.insert("merge".into(), task.id.clone());
            let data =
                serde_json::json!({"change": change, "sha": sha, "merge": m.merge, "before": m.before, "main": p.main, "remote": p.remote});
            let _ = f.event("change.merged", &actor, Some(change), data.clone()).await;
            let _ = f.audit(&actor, "delivery.merge", &task.id, serde_json::json!({"main": m.before}), data, None).await;
            if let Some(d) = deploy_after_merge(f, task, p, change, &m.merge, &actor).await.map_err(|x| ExecError::Failed(x.to_string()))? {
                rec.steps.insert("deploy".into(), d.id);
            }
            let _ = f.save_change(&rec).await;
            Ok(format!("merged {} into {} as {}", short(sha), p.main, m.merge))
        }
        Err(GitError::Conflict(files)) => {
            // Back to the builder with the files; this merge is over (the next reviewed commit gets its own).
            let body = format!(
                "Merging into {} conflicts in: {}. Bring the branch up to date with {} and resolve them.",
                p.main,
                files.join(", "),
                p.main
            );
            let _ = f.comment(change, "reef:merge", &body).await;
            let _ = f.ports.tasks.transition(change, &[TaskStatus::Done], TaskStatus::Pending, Some(&body), f.now()).await;
            rec.stage = "conflict".into();
            let _ = f.save_change(&rec).await;
            let _ = f.event("change.conflict", &actor, Some(change), serde_json::json!({"files": files, "sha": sha, "alert": true})).await;
            Err(ExecError::NotRunnable(format!("{body} The change went back to its builder.")))
        }
        Err(err) => Err(ExecError::Failed(format!("merging {}: {err}", short(sha)))),
    }
}

/// The deploy step that ships `version` (main after `merge_task` merged `change`), where the
/// product deploys; it waits for the merge task and behind `production_deploy`.
pub(super) async fn deploy_after_merge(
    f: &crate::factory::Factory,
    merge_task: &Task,
    p: &Pipeline,
    change: &str,
    version: &str,
    actor: &str,
) -> StoreResult<Option<Task>> {
    if p.deploy.is_empty() {
        return Ok(None);
    }
    let step = Step::Deploy { product: p.product.clone(), version: version.into(), change: Some(change.into()) };
    let new = NewTask {
        title: format!("Deploy {} {}", p.product, short(version)),
        description: format!("Ships {version} (main after merging task {change})."),
        action_class: Some("production_deploy".into()),
        assigned_to: merge_task.assigned_to.clone(),
        ..Default::default()
    };
    f.make_step(step, &format!("deploy:{}", merge_task.id), new, Some(&merge_task.id), actor).await.map(Some)
}

/// Runs one of the product's own commands in a fresh export of `version` from REEF's mirror
/// (no `.git`, nothing left from an earlier run), contained like an agent but with the host's
/// network, a home of the product's own, its deploy folders and its own secrets only.
async fn run_command(
    e: &Engine,
    p: &Pipeline,
    argv: &[String],
    version: &str,
    previous: &str,
    tx: &ProgressTx,
    cancel: &CancellationToken,
) -> Result<String, ExecError> {
    let f = &e.factory;
    let dir = e.containment.workdir(&format!("deploy-{}", p.product));
    let mirror = mirror_dir(&f.config.data_dir, &p.repository.display().to_string());
    let (d, v) = (dir.clone(), version.to_string());
    git(move || Mirror::open(&mirror)?.export(&v, &d))
        .await
        .map_err(|x| ExecError::Failed(format!("exporting {}: {x}", short(version))))?;
    let home = e.containment.home("deploy", &p.product);
    crate::engine::agent_files::private_dir(&home).map_err(|x| ExecError::NotRunnable(format!("cannot create {}: {x}", home.display())))?;
    let argv: Vec<String> = match e.containment.bwrap() {
        Ok(Some(bwrap)) => {
            let mut writable = vec![dir.clone(), home.clone()];
            writable.extend(p.deploy_writable.iter().cloned());
            let binds = crate::engine::sandbox::Binds { writable, read_only: vec![], placed: vec![] };
            crate::engine::sandbox::wrap(bwrap, argv, &dir, &binds, crate::config::Network::Host, &f.config.data_dir)
                .map_err(|x| ExecError::NotRunnable(x.to_string()))?
        }
        // The operator turned the sandbox off: their commands run as REEF does.
        Ok(None) => argv.to_vec(),
        Err(x) => return Err(ExecError::NotRunnable(x.to_string())),
    };
    let prefix = format!("REEF_PRODUCT_{}_", p.product.to_uppercase().replace(['-', '.'], "_"));
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("LANG", "C.UTF-8")
        .env("REEF_PRODUCT", &p.product)
        .env("REEF_VERSION", version)
        .env("REEF_PREVIOUS_VERSION", previous)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    // The product's own secrets only (kept in the keyring), never REEF's.
    for (k, s) in e.factory.config.product_secrets.iter().filter(|(k, _)| k.starts_with(&prefix)) {
        cmd.env(k, s.expose());
    }
    let out = tokio::select! {
        r = tokio::time::timeout(p.check_timeout, cmd.output()) => r,
        _ = cancel.cancelled() => return Err(ExecError::Cancelled),
    };
    let out = match out {
        Err(_) => return Err(ExecError::NotRunnable(format!("{} ran past {} s", argv[0], p.check_timeout.as_secs()))),
        Ok(Err(x)) => return Err(ExecError::NotRunnable(format!("cannot run {}: {x}", argv[0]))),
        Ok(Ok(o)) => o,
    };
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    for l in text.lines().take(200) {
        let _ = tx.try_send(l.to_string());
    }
    if !out.status.success() {
        return Err(ExecError::NotRunnable(format!(
            "{} failed ({}): {}",
            argv.join(" "),
            out.status,
            text.chars().rev().take(2000).collect::<String>().chars().rev().collect::<String>()
        )));
    }
    Ok(text)
}

/// Reads the health URL `health_checks` times; healthy when each answers 2xx.
async fn healthy(p: &Pipeline, cancel: &CancellationToken) -> Result<(), String> {
    let Some(url) = &p.health_url else { return Ok(()) };
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().map_err(|e| e.to_string())?;
    for i in 0..p.health_checks {
        if i > 0 {
            tokio::select! {
                _ = tokio::time::sleep(p.health_interval) => {}
                _ = cancel.cancelled() => return Err("stopped".into()),
            }
        }
        match client.get(url).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => return Err(format!("{url} answered {} on read {} of {}", r.status(), i + 1, p.health_checks)),
            Err(x) => return Err(format!("{url} did not answer on read {} of {}: {x}", i + 1, p.health_checks)),
        }
    }
    Ok(())
}

async fn deploy(
    e: &Engine,
    task: &Task,
    p: &Pipeline,
    version: &str,
    change: Option<&str>,
    tx: &ProgressTx,
    cancel: &CancellationToken,
) -> Result<String, ExecError> {
    let f = &e.factory;
    let actor = format!("agent:{}", task.assigned_to.as_deref().unwrap_or("reef"));
    let history = f.deploys(&p.product).await.map_err(|x| ExecError::Failed(x.to_string()))?;
    // The version it replaces: the last one shipped, else main before this version was merged.
    let previous = match history.iter().rev().find(|d| d.task != task.id && d.health != Health::RolledBack) {
        Some(d) => d.version.clone(),
        None => {
            let (mirror, v) = (mirror_dir(&f.config.data_dir, &p.repository.display().to_string()), version.to_string());
            git(move || Ok(Mirror::open(&mirror)?.first_parent(&v))).await.ok().flatten().unwrap_or_default()
        }
    };
    let out = run_command(e, p, &p.deploy, version, &previous, tx, cancel).await?;
    let at = time::fmt_ts(&f.now());
    let mut d = Deploy { version: version.into(), at, task: task.id.clone(), health: Health::Unchecked, note: String::new() };
    f.record_deploy(&p.product, d.clone()).await.map_err(|x| ExecError::Failed(x.to_string()))?;
    let data = serde_json::json!({"product": p.product, "version": version, "previous": previous, "change": change});
    let _ = f.event("deploy.done", &actor, Some(&task.id), data.clone()).await;
    let _ = f.audit(&actor, "delivery.deploy", &task.id, serde_json::json!({"version": previous}), data, None).await;
    let mut said = format!("deployed {} (was {})", short(version), short(&previous));
    if p.health_url.is_none() {
        return Ok(format!("{said}\n{out}"));
    }
    let stage;
    match healthy(p, cancel).await {
        Ok(()) => {
            d.health = Health::Healthy;
            stage = "deployed";
            said.push_str("; healthy");
        }
        Err(why) => {
            d.health = Health::Unhealthy;
            d.note = why.clone();
            stage = "unhealthy";
            let _ = f
                .event(
                    "deploy.unhealthy",
                    &actor,
                    Some(&task.id),
                    serde_json::json!({"product": p.product, "version": version, "why": why, "alert": true}),
                )
                .await;
            let reason = format!("the health check failed after deploying {}: {why}", short(version));
            if previous.is_empty() {
                said.push_str(&format!("; UNHEALTHY ({why}); no earlier version to roll back to"));
            } else if p.auto_rollback {
                f.record_deploy(&p.product, d.clone()).await.map_err(|x| ExecError::Failed(x.to_string()))?;
                let r = rollback(e, task, p, &previous, version, &reason, tx, cancel).await?;
                said.push_str(&format!("; UNHEALTHY ({why}); rolled back at once (auto_rollback): {r}"));
                return Ok(said);
            } else {
                let t = f
                    .propose_rollback(&p.product, (previous.clone(), version.into()), &reason, &actor, None)
                    .await
                    .map_err(|x| ExecError::Failed(x.to_string()))?;
                said.push_str(&format!("; UNHEALTHY ({why}); rollback proposed as task {}", t.id));
            }
        }
    }
    f.record_deploy(&p.product, d).await.map_err(|x| ExecError::Failed(x.to_string()))?;
    if let Some(c) = change {
        if let Ok(Some(mut rec)) = f.change(c).await {
            rec.stage = stage.into();
            rec.steps.insert("deploy".into(), task.id.clone());
            let _ = f.save_change(&rec).await;
        }
    }
    Ok(said)
}

#[allow(clippy::too_many_arguments)]
async fn rollback(
    e: &Engine,
    task: &Task,
    p: &Pipeline,
    version: &str,
    from: &str,
    reason: &str,
    tx: &ProgressTx,
    cancel: &CancellationToken,
) -> Result<String, ExecError> {
    let f = &e.factory;
    let actor = format!("agent:{}", task.assigned_to.as_deref().unwrap_or("reef"));
    let argv = if p.rollback.is_empty() { &p.deploy } else { &p.rollback };
    run_command(e, p, argv, version, from, tx, cancel).await?;
    // The version rolled back from is marked so; the restored one is the latest again.
    let history = f.deploys(&p.product).await.map_err(|x| ExecError::Failed(x.to_string()))?;
    if let Some(mut gone) = history.iter().rev().find(|d| d.version == from).cloned() {
        gone.health = Health::RolledBack;
        f.record_deploy(&p.product, gone).await.map_err(|x| ExecError::Failed(x.to_string()))?;
    }
    let health = match healthy(p, cancel).await {
        Ok(()) => Health::Healthy,
        Err(_) if p.health_url.is_none() => Health::Unchecked,
        Err(_) => Health::Unhealthy,
    };
    let d =
        Deploy { version: version.into(), at: time::fmt_ts(&f.now()), task: task.id.clone(), health, note: format!("rollback: {reason}") };
    f.record_deploy(&p.product, d).await.map_err(|x| ExecError::Failed(x.to_string()))?;
    let data = serde_json::json!({"product": p.product, "version": version, "from": from, "reason": reason, "health": health});
    let _ = f.event("deploy.rolled_back", &actor, Some(&task.id), data.clone()).await;
    let _ = f.audit(&actor, "delivery.rollback", &task.id, serde_json::json!({"version": from}), data, Some(reason)).await;
    Ok(format!(
        "rolled {} back to {} ({})",
        p.product,
        short(version),
        serde_json::to_value(health).unwrap_or_default().as_str().unwrap_or("")
    ))
}
