//! Housekeeping: what grows without bound is cut back to `[retention]` — the events feed, agents'
//! output lines, telemetry, finished tasks' working directories. Invariant: never the audit log,
//! never an event a webhook has not been sent yet (until `owed_days`), never the directory of a
//! task that is not finished.

use crate::engine::relay;
use crate::engine::sandbox::dir_name;
use crate::factory::Factory;
use crate::*;
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The kind of an agent's output line: most of the feed, kept the shortest.
const OUTPUT: &str = "task.output";

/// How often a host sweeps (and once shortly after it starts).
pub const EVERY: Duration = Duration::from_secs(3600);

/// What one sweep removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Swept {
    pub events: u64,
    pub output_lines: u64,
    pub telemetry: u64,
    pub work_dirs: usize,
}

impl Swept {
    fn is_empty(&self) -> bool {
        *self == Swept::default()
    }
}

fn ago(f: &Factory, d: Duration) -> Timestamp {
    f.now() - chrono::Duration::from_std(d).unwrap_or_else(|_| chrono::Duration::days(36_500))
}

/// One sweep over the store and, where this host starts agents, its work dir (`work`).
pub async fn sweep(f: &Factory, work: Option<&Path>) -> StoreResult<Swept> {
    let r = f.config.retention;
    // What each configured subscription has not been sent yet: everything after its position.
    // Output lines are held only for subscriptions that want them (most do not).
    let (mut owed_after, mut output_owed) = (vec![], vec![]);
    for s in &f.config.webhooks {
        if let Some(p) = relay::progress(f, &s.name).await?.position.filter(|p| !p.is_empty()) {
            if s.wants(OUTPUT) {
                output_owed.push(p.clone());
            }
            owed_after.push(p);
        }
    }
    let owed_before = ago(f, r.owed);
    let output = EventPrune { before: ago(f, r.output), kind: Some(OUTPUT.into()), owed_after: output_owed, owed_before };
    let output_lines = f.ports.events.prune(&output).await?;
    let events = f.ports.events.prune(&EventPrune { before: ago(f, r.events), kind: None, owed_after, owed_before }).await?;
    let telemetry = f.ports.metrics.prune(ago(f, r.telemetry)).await?;
    let work_dirs = match work {
        Some(w) => sweep_work(f, w, ago(f, r.work)).await?,
        None => 0,
    };
    let swept = Swept { events, output_lines, telemetry, work_dirs };
    if !swept.is_empty() {
        tracing::info!(?swept, "housekeeping: removed what is past retention");
        f.event("housekeeping.swept", "reef", None, serde_json::to_value(&swept).unwrap_or_default()).await?;
    }
    Ok(swept)
}

/// Removes the working directories (and per-task HOMEs) of tasks finished before `cutoff`; a
/// directory no task owns any more goes once it has not changed since `cutoff`.
async fn sweep_work(f: &Factory, work: &Path, cutoff: Timestamp) -> StoreResult<usize> {
    // Every unfinished task's directory name, so that a name REEF hashed (an id with `:`, `@`,
    // `+`) is never mistaken for an orphan.
    let open: Vec<TaskStatus> = TaskStatus::ALL.into_iter().filter(|s| !s.is_terminal()).collect();
    let live = f.ports.tasks.list(&TaskQuery { status: Some(open), limit: Some(1_000_000), ..Default::default() }).await?;
    let live: HashSet<String> = live.items.iter().map(|t| dir_name(&t.id)).collect();
    let mut removed = 0;
    for dir in candidates(work) {
        let Some(name) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else { continue };
        if live.contains(&name) {
            continue;
        }
        let gone = match f.ports.tasks.get(&name).await {
            Ok(t) => t.status.is_terminal() && t.updated_at.unwrap_or(t.created_at) < cutoff,
            Err(StoreError::NotFound { .. }) => modified_before(&dir, cutoff),
            // Unreadable, or the store is unwell: keep it, and look again next time.
            Err(_) => false,
        };
        if gone {
            match remove_tree(&dir) {
                Ok(()) => removed += 1,
                Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "housekeeping: cannot remove a finished task's directory"),
            }
        }
    }
    Ok(removed)
}

/// The per-task directories under `work`: `<work>/<task>` and `<work>/.home/<executor>/<task>`.
fn candidates(work: &Path) -> Vec<PathBuf> {
    let dirs = |p: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(p)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path())
                    .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = dirs(work);
    for executor in dirs(&work.join(".home")) {
        out.extend(dirs(&executor));
    }
    out
}

fn modified_before(p: &Path, cutoff: Timestamp) -> bool {
    std::fs::symlink_metadata(p).and_then(|m| m.modified()).map(|t| chrono::DateTime::<chrono::Utc>::from(t) < cutoff).unwrap_or(false)
}

/// Removes a tree an agent wrote, whatever modes it left: symlinks are removed, never followed;
/// directories it made read-only are opened for REEF's user first.
pub fn remove_tree(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            open_up(dir);
            std::fs::remove_dir_all(dir)
        }
        other => other,
    }
}

fn open_up(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(m) = std::fs::symlink_metadata(dir) else { return };
    if !m.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        open_up(&e.path());
    }
}

/// Sweeps every `EVERY` until `shutdown`; a sweep that fails is logged and tried again next time
/// (a store outage must not end the loop).
pub async fn run(f: Factory, work: Option<PathBuf>, shutdown: CancellationToken) -> Result<(), StoreError> {
    let mut first = true;
    loop {
        let wait = if first { Duration::from_secs(60) } else { EVERY };
        first = false;
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
        if let Err(e) = sweep(&f, work.as_deref()).await {
            tracing::warn!(error = %e, "housekeeping: sweep failed; trying again in an hour");
        }
    }
}
