//! The demo's delivery loop: QuickForm as a real git repository (with a bare remote) beside the
//! demo's data, a builder's change to it recorded through REEF's own mirror (the same snapshot,
//! file list and flags a real attempt gets), its checks and review, a merge waiting for approval,
//! and two earlier deploys. Made once: a second `reef demo` finds the repository and adds nothing.

use reef_core::domain::change::{ChangeRecord, CheckRun, Deploy, Health, LineComment, ReviewRecord, Step};
use reef_core::factory::Factory;
use reef_core::git::{flags_of, mirror_dir, Mirror};
use reef_core::*;
use std::path::Path;

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=Rex",
            "-c",
            "user.email=rex@factory.dev",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "core.hooksPath=/dev/null",
        ])
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()?;
    anyhow::ensure!(out.status.success(), "git {args:?} in {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr).trim());
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

const WEBHOOK: &str = "import { createHmac } from \"node:crypto\";\n\n// Stripe calls this for every payment event.\nexport function handle(body: string, signature: string, secret: string) {\n  const expected = createHmac(\"sha256\", secret).update(body).digest(\"hex\");\n  if (signature !== expected) throw new Error(\"bad signature\");\n  return JSON.parse(body);\n}\n";
const WEBHOOK_NEW: &str = "import { createHmac, timingSafeEqual } from \"node:crypto\";\nimport { withinTolerance } from \"./tolerance\";\n\nconst seen = new Set<string>();\n\n// Stripe calls this for every payment event: signed, recent, and once.\nexport function handle(body: string, header: string, secret: string, now = Date.now()) {\n  const [t, v1] = parse(header);\n  if (!withinTolerance(t, now)) throw new Error(\"stale event\");\n  const expected = createHmac(\"sha256\", secret).update(`${t}.${body}`).digest();\n  if (!timingSafeEqual(Buffer.from(v1, \"hex\"), expected)) throw new Error(\"bad signature\");\n  const event = JSON.parse(body);\n  if (seen.has(event.id)) return null; // replayed\n  seen.add(event.id);\n  return event;\n}\n\nfunction parse(header: string): [number, string] {\n  const parts = Object.fromEntries(header.split(\",\").map((p) => p.split(\"=\")));\n  return [Number(parts.t), parts.v1 ?? \"\"];\n}\n";
const TOLERANCE: &str = "// Stripe's default: events older than five minutes are refused.\nexport const TOLERANCE_SECONDS = 300;\n\nexport function withinTolerance(t: number, now: number): boolean {\n  return Math.abs(now / 1000 - t) <= TOLERANCE_SECONDS;\n}\n";
const TEST: &str = "import { handle } from \"../src/webhook\";\n\ntest(\"a bad signature is refused\", () => {\n  expect(() => handle(\"{}\", \"nope\", \"whsec\")).toThrow();\n});\n";
const TEST_NEW: &str = "import { handle } from \"../src/webhook\";\n\ntest(\"a bad signature is refused\", () => {\n  expect(() => handle(\"{}\", \"t=1,v1=00\", \"whsec\", 1000)).toThrow();\n});\n\ntest(\"a stale event is refused\", () => {\n  expect(() => handle(\"{}\", \"t=1,v1=00\", \"whsec\", 10_000_000)).toThrow(\"stale\");\n});\n";

/// Seeds the change, once. Returns whether it made anything.
pub(super) async fn seed(f: &Factory, actor: &str) -> anyhow::Result<bool> {
    let root = f.config.data_dir.join("demo");
    let repo = root.join("quickform");
    if repo.join(".git").exists() {
        return Ok(false);
    }
    let remote = root.join("quickform.git");
    std::fs::create_dir_all(&remote)?;
    git(&remote, &["init", "-q", "--bare"])?;
    std::fs::create_dir_all(repo.join("src"))?;
    std::fs::create_dir_all(repo.join("test"))?;
    git(&repo, &["init", "-q"])?;
    std::fs::write(repo.join("src/webhook.ts"), WEBHOOK)?;
    std::fs::write(repo.join("test/webhook.test.ts"), TEST)?;
    std::fs::write(repo.join("README.md"), "# QuickForm\n\nForms with Stripe payments.\n")?;
    std::fs::write(repo.join("CHANGELOG.md"), "## 0.3.0\n- embedded checkout\n")?;
    git(&repo, &["add", "."])?;
    git(&repo, &["commit", "-qm", "QuickForm 0.3"])?;
    git(&repo, &["remote", "add", "origin", &remote.display().to_string()])?;
    git(&repo, &["push", "-q", "origin", "HEAD:refs/heads/main"])?;

    // The builder's worktree as its attempt left it: the handler hardened, a module added, the
    // test extended (flagged: an edited test needs a person), the changelog dropped.
    let work = root.join("quickform-attempt");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("src"))?;
    std::fs::create_dir_all(work.join("test"))?;
    std::fs::write(work.join("src/webhook.ts"), WEBHOOK_NEW)?;
    std::fs::write(work.join("src/tolerance.ts"), TOLERANCE)?;
    std::fs::write(work.join("test/webhook.test.ts"), TEST_NEW)?;
    std::fs::write(
        work.join("README.md"),
        "# QuickForm\n\nForms with Stripe payments.\n\nWebhooks are verified (signature, 5-minute tolerance, replay).\n",
    )?;

    let new = NewTask {
        title: "Harden QuickForm's webhook handler".into(),
        description: "Verify Stripe's signature with a timing-safe compare, refuse stale events, ignore replays.".into(),
        priority: 20,
        assigned_to: Some("rex".into()),
        kind: Some("build".into()),
        product: Some("quickform".into()),
        idempotency_key: Some("demo:change".into()),
        repository: Some(repo.display().to_string()),
        ..Default::default()
    };
    let (t, is_new) = f.ports.tasks.create(new, f.now()).await?;
    if !is_new {
        return Ok(false);
    }
    f.announce_created(&t, actor).await?;
    super::drive::drive_to(f, &t, TaskStatus::Done, "rex").await?;

    let (dir, wk, id) = (mirror_dir(&f.config.data_dir, &repo.display().to_string()), work.clone(), t.id.clone());
    let remote_s = remote.display().to_string();
    let (base, head, files) = tokio::task::spawn_blocking(move || {
        let m = Mirror::open(&dir)?;
        let base = m.fetch_branch(&remote_s, "main")?;
        let head = m.snapshot(&wk, &base, "reef: Harden QuickForm's webhook handler (attempt 1)", &id)?;
        let files = m.files(&base, &head)?;
        Ok::<_, reef_core::git::GitError>((base, head, files))
    })
    .await??;
    let _ = std::fs::remove_dir_all(&work);
    let check = |name: &str, command: &str, output: &str, seconds: f64| CheckRun {
        name: name.into(),
        command: command.into(),
        passed: true,
        exit_code: Some(0),
        timed_out: false,
        seconds,
        output: output.into(),
    };
    let mut rec = ChangeRecord {
        task: t.id.clone(),
        product: Some("quickform".into()),
        repository: repo.display().to_string(),
        branch: Some(format!("reef/{}", &t.id[t.id.len() - 12..])),
        added: files.iter().filter_map(|x| x.added).sum(),
        deleted: files.iter().filter_map(|x| x.deleted).sum(),
        files: files.len() as u64,
        flags: flags_of(&files, &[]),
        base,
        head: head.clone(),
        attempt: 1,
        checks: vec![
            check("lint", "npx eslint src", "✔ no problems", 3.2),
            check(
                "test",
                "npx vitest run",
                " ✓ test/webhook.test.ts (2 tests) 4ms\n Test Files  1 passed (1)\n      Tests  2 passed (2)",
                6.8,
            ),
        ],
        review: Some(ReviewRecord {
            reviewer: "agent:kev".into(),
            approved: true,
            summary: "Signature, tolerance and replay are handled; the test change adds a case and weakens none.".into(),
            comments: vec![LineComment {
                file: "src/webhook.ts".into(),
                line: 13,
                body: "The replay set grows without bound; fine for now, worth a TTL later.".into(),
                author: "agent:kev".into(),
            }],
        }),
        comments: vec![],
        stage: "reviewed".into(),
        steps: Default::default(),
    };
    let step = Step::Merge { change: t.id.clone(), product: "quickform".into(), sha: head.clone(), flags: rec.flags.clone() };
    let merge = NewTask {
        title: "Merge: Harden QuickForm's webhook handler".into(),
        description: format!("Merges commit {head} of task {} into main.", t.id),
        action_class: Some("merge".into()),
        assigned_to: Some("rex".into()),
        priority: 20,
        ..Default::default()
    };
    let m = f.make_step(step, &format!("merge:{}:{head}", t.id), merge, None, actor).await?;
    // Asked for three hours ago, so the inbox (newest first) lists the demo's other requests above it.
    super::drive::drive_to(f, &m, TaskStatus::Claimed, "rex").await?;
    let asked = f.now() - chrono::Duration::hours(3);
    f.ports.tasks.transition(&m.id, &[TaskStatus::Claimed], TaskStatus::AwaitingApproval, None, asked).await?;
    let a = f
        .ports
        .approvals
        .request(
            NewApproval {
                task_id: m.id.clone(),
                action_class: "merge".into(),
                summary: reef_core::domain::change::flagged_summary(&m.title, &rec.flags),
                work_products: WorkProducts { branch: rec.branch.clone(), repository: Some(rec.repository.clone()), ..Default::default() },
                requested_by: "agent:rex".into(),
                expires_at: Some(asked + chrono::Duration::hours(24)),
                // It covers the run after the decision: the claim that follows is attempt 2.
                attempt: 2,
                in_task: false,
            },
            asked,
        )
        .await?;
    f.event(
        "approval.requested",
        "agent:rex",
        Some(&m.id),
        serde_json::json!({"approval": a.id, "action_class": "merge", "summary": a.summary}),
    )
    .await?;
    rec.steps.insert("merge".into(), m.id.clone());
    f.save_change(&rec).await?;
    // What QuickForm shipped before: two healthy versions.
    for (ago, v) in [(26, "8d1c0a4e5b2f"), (3, "c41e77a09d3b")] {
        let at = time::fmt_ts(&(f.now() - chrono::Duration::hours(ago)));
        let version = format!("{v}{}", "0".repeat(28));
        f.record_deploy("quickform", Deploy { version, at, task: t.id.clone(), health: Health::Healthy, note: String::new() }).await?;
    }
    Ok(true)
}
