//! `reef bench diff`: a large change (default 5,000 files, 200,000 lines) recorded through
//! REEF's mirror, and its file list read back as the window asks for it, against bare
//! `git diff --numstat` of the same two commits in the same run. With `--seed`, the change is
//! also kept in the configured store as a task's change, for the window's own benchmark
//! (`scripts/bench-diff.sh`) to open.

use super::super::Out;
use reef_core::domain::change::ChangeRecord;
use reef_core::git::{mirror_dir, Mirror};
use std::path::Path;
use std::time::Instant;

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=bench", "-c", "user.email=bench@reef", "-c", "init.defaultBranch=main"])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()?;
    anyhow::ensure!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

pub async fn diff(files: usize, lines: usize, runs: usize, seed: bool, out: &Out) -> anyhow::Result<()> {
    let f = if seed { Some(crate::setup::open_factory(None).await?) } else { None };
    let tmp = tempfile::tempdir()?;
    let root = match &f {
        Some(f) => f.config.data_dir.join("bench-diff"),
        None => tmp.path().to_path_buf(),
    };
    let _ = std::fs::remove_dir_all(&root);
    let (remote, repo, work) = (root.join("product.git"), root.join("product"), root.join("attempt"));
    for d in [&remote, &repo, &work] {
        std::fs::create_dir_all(d)?;
    }
    git(&remote, &["init", "-q", "--bare"])?;
    git(&repo, &["init", "-q"])?;
    // The base: each file one line; the attempt rewrites every file with `lines` lines.
    for i in 0..files {
        let rel = format!("src/m{:02}/file{i:05}.rs", i % 50);
        let p = repo.join(&rel);
        std::fs::create_dir_all(p.parent().unwrap_or(&repo))?;
        std::fs::write(&p, format!("// file {i}\n"))?;
        let w = work.join(&rel);
        std::fs::create_dir_all(w.parent().unwrap_or(&work))?;
        let body: String = (0..lines).map(|l| format!("pub fn f{i}_{l}() -> u64 {{ {l} }}\n")).collect();
        std::fs::write(&w, body)?;
    }
    git(&repo, &["add", "."])?;
    git(&repo, &["commit", "-qm", "base"])?;
    git(&repo, &["remote", "add", "origin", &remote.display().to_string()])?;
    git(&repo, &["push", "-q", "origin", "HEAD:refs/heads/main"])?;
    let data_dir = f.as_ref().map(|f| f.config.data_dir.clone()).unwrap_or_else(|| tmp.path().join("data"));
    let mirror = Mirror::open(&mirror_dir(&data_dir, &repo.display().to_string()))?;
    let base = mirror.fetch_branch(&remote.display().to_string(), "main")?;
    let t0 = Instant::now();
    let head = mirror.snapshot(&work, &base, "bench: a large change", "bench")?;
    let snapshot_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let (mut reef, mut bare) = (vec![], vec![]);
    let mut listed = vec![];
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        listed = mirror.files(&base, &head)?;
        reef.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let o = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&mirror.dir)
            .args(["diff", "--numstat", "-z", &base, &head])
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()?;
        anyhow::ensure!(o.status.success(), "bare git diff failed");
        bare.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    anyhow::ensure!(listed.len() == files, "the change lists {} files, not {files}", listed.len());
    let (r50, r95, b50) = (pct(&mut reef, 0.5), pct(&mut reef, 0.95), pct(&mut bare, 0.5));
    let mut task_id = None;
    if let Some(f) = &f {
        let t = f.create_task(reef_core::NewTask::titled(format!("Bench: a change of {files} files")), "reef:bench").await?;
        let rec = ChangeRecord {
            task: t.id.clone(),
            product: None,
            repository: repo.display().to_string(),
            branch: None,
            base: base.clone(),
            head: head.clone(),
            attempt: 1,
            files: files as u64,
            added: (files * lines) as u64,
            deleted: files as u64,
            flags: vec![],
            checks: vec![],
            review: None,
            comments: vec![],
            stage: "checked".into(),
            steps: Default::default(),
        };
        // As the worker keeps it after an attempt: the list with the record.
        f.keep_change_files(&rec, &listed, &mirror.commits(&base, &head, 200)?).await?;
        f.save_change(&rec).await?;
        task_id = Some(t.id);
    }
    let _ = std::fs::remove_dir_all(&work);
    let summary = serde_json::json!({
        "files": files, "lines": files * lines, "snapshot_ms": snapshot_ms,
        "file_list_ms": {"p50": r50, "p95": r95}, "bare_numstat_ms": {"p50": b50}, "ratio_p50": r50 / b50, "task": task_id,
    });
    out.print(&summary, || {
        format!(
            "a change of {files} files, {} lines: snapshot into REEF's mirror {snapshot_ms:.0} ms\n\
             its file list (one --raw --numstat run, parsed): p50 {r50:.1} ms, p95 {r95:.1} ms\n\
             bare `git diff --numstat` of the same commits:  p50 {b50:.1} ms  → {:.2}× (same run, {runs} runs)",
            files * lines,
            r50 / b50
        ) + &task_id.map(|t| format!("\nkept as task {t}")).unwrap_or_default()
    });
    Ok(())
}
