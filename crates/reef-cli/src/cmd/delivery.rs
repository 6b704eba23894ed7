//! `reef task diff`, the change section of `reef task show`, `reef rollback` and `reef deploys`:
//! parse, call the factory, print.

use super::{short, Out};
use anyhow::Context;
use reef_core::domain::change::{ChangeRecord, PullRequest};
use reef_core::factory::Factory;
use reef_core::git::ChangedFile;

/// Bytes of patch `reef task diff` prints unless told otherwise.
const PATCH_MAX: usize = 4 * 1024 * 1024;

pub async fn diff(f: &Factory, out: &Out, id: &str, file: Option<String>, stat: bool) -> anyhow::Result<()> {
    let t = super::task::resolve(f, id).await?;
    let view = f.change_view(&t.id).await?;
    if stat || out.json {
        let patch = if stat { None } else { Some(f.change_patch(&t.id, file.as_deref(), PATCH_MAX).await?) };
        out.print(&serde_json::json!({"change": view, "patch": patch.as_ref().map(|p| &p.0), "cut": patch.map(|p| p.1)}), || {
            stat_text(&view.record, &view.files)
        });
        return Ok(());
    }
    let (patch, cut) = f.change_patch(&t.id, file.as_deref(), PATCH_MAX).await.context("reading the patch")?;
    let mut s = stat_text(&view.record, &view.files);
    s.push('\n');
    s.push_str(&patch);
    if cut {
        s.push_str(&format!("\n… cut at {PATCH_MAX} bytes: give --file PATH for one file\n"));
    }
    out.print(&(), || s);
    Ok(())
}

fn stat_text(r: &ChangeRecord, files: &[ChangedFile]) -> String {
    let mut s = format!(
        "change of task {}: {} against {} — {} files, +{} -{}  [{}]\n",
        short(&r.task),
        &r.head[..r.head.len().min(12)],
        &r.base[..r.base.len().min(12)],
        r.files,
        r.added,
        r.deleted,
        r.stage
    );
    for fl in &r.flags {
        s.push_str(&format!("  FLAG  {}\n", fl.describe()));
    }
    for f in files {
        let n = match (f.added, f.deleted) {
            (Some(a), Some(d)) => format!("+{a} -{d}"),
            _ => "binary".into(),
        };
        let from = f.from.as_deref().map(|x| format!(" (from {x})")).unwrap_or_default();
        s.push_str(&format!("  {:<9} {:>12}  {}{from}\n", format!("{:?}", f.kind).to_lowercase(), n, f.path));
    }
    s
}

/// The change section of `reef task show`.
pub fn change_text(r: &ChangeRecord, pull: Option<&PullRequest>) -> String {
    let mut s = format!(
        "\nChange ({}):\n  commit    {} (attempt {})\n  base      {}\n  size      {} files, +{} -{}\n",
        r.stage, r.head, r.attempt, r.base, r.files, r.added, r.deleted
    );
    for fl in &r.flags {
        s.push_str(&format!("  FLAG      {}\n", fl.describe()));
    }
    for c in &r.checks {
        s.push_str(&format!(
            "  check     {} {} (`{}`, {:.1} s)\n",
            c.name,
            if c.passed { "passed" } else { "FAILED" },
            c.command,
            c.seconds
        ));
    }
    if let Some(v) = &r.review {
        s.push_str(&format!(
            "  review    {} by {}: {}\n",
            if v.approved { "approved" } else { "changes asked" },
            v.reviewer,
            v.summary.lines().next().unwrap_or("")
        ));
        for c in &v.comments {
            s.push_str(&format!("            {} line {}: {}\n", c.file, c.line, c.body));
        }
    }
    if let Some(p) = pull {
        s.push_str(&format!("  pull      #{} {} ({}, branch {})\n", p.number, p.url, p.state, p.branch));
        for c in &p.comments {
            s.push_str(&format!("            {} line {}: {} ({})\n", c.file, c.line, c.body, c.author));
        }
    }
    for (k, v) in &r.steps {
        s.push_str(&format!("  {k:<9} task {v}\n"));
    }
    s
}

pub async fn rollback(f: &Factory, out: &Out, product: &str, reason: Option<String>) -> anyhow::Result<()> {
    let Some(target) = f.rollback_target(product).await? else {
        anyhow::bail!("product {product} has no earlier healthy deploy to go back to (`reef deploys {product}` shows its history)");
    };
    let who = f.operator();
    let reason = reason.unwrap_or_else(|| format!("{who} asked to roll back"));
    let t = f.propose_rollback(product, target.clone(), &reason, &who, Some(&who)).await?;
    out.print(&t, || format!("rollback of {product} to {} queued as task {} (approved by you)", &target.0[..target.0.len().min(12)], t.id));
    Ok(())
}

pub async fn deploys(f: &Factory, out: &Out, product: &str) -> anyhow::Result<()> {
    let all = f.deploys(product).await?;
    out.print(&serde_json::json!({"product": product, "deploys": all}), || {
        let mut s = format!("{:<12}  {:<20}  {:<11}  {:<12}  NOTE\n", "VERSION", "AT", "HEALTH", "TASK");
        for d in all.iter().rev() {
            let health = serde_json::to_value(d.health).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            s.push_str(&format!(
                "{:<12}  {:<20}  {:<11}  {:<12}  {}\n",
                &d.version[..d.version.len().min(12)],
                d.at,
                health,
                short(&d.task),
                d.note
            ));
        }
        if all.is_empty() {
            s.push_str("(no deploys)\n");
        }
        s
    });
    Ok(())
}
