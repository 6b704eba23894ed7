//! The delivery loop's records and operations: a task's change (its commit, checks, review),
//! reading it back as files, commits and patches, line comments that reach the builder, the
//! step tasks that merge, deploy and roll back, and each product's deploy history.
//!
//! Invariants: a step task exists only with the step record REEF wrote before it (an agent
//! cannot make a task that merges or deploys); a change is read between the two commits its
//! record names; every operation here is audited and evented.

use super::Factory;
use crate::domain::change::{ChangeRecord, Deploy, Health, LineComment, PullRequest, ReviewRecord, Step, DEPLOY_HISTORY};
use crate::git::{mirror_dir, ChangedFile, CommitInfo, GitError, Mirror};
use crate::settings::Key;
use crate::*;
use serde::Serialize;

/// The idempotency keys of step tasks start with this (no other path makes such a key).
pub const STEP_KEY_PREFIX: &str = "delivery:";

/// Bytes of a change's file list kept in the store (larger ones are read from git each time).
const FILES_KEPT_BYTES: usize = 4 * 1024 * 1024;

/// A change's files and commits between the two commits it names (settings `change.files:<task>`).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
struct FilesDoc {
    base: String,
    head: String,
    files: Vec<ChangedFile>,
    commits: Vec<CommitInfo>,
}

/// A change read back for people: its record, files, commits and pull request.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeView {
    pub record: ChangeRecord,
    pub files: Vec<ChangedFile>,
    pub commits: Vec<CommitInfo>,
    pub pull: Option<PullRequest>,
}

fn git_err(e: GitError) -> StoreError {
    StoreError::Invalid(e.to_string())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, GitError> + Send + 'static) -> StoreResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StoreError::Unavailable(format!("git stopped: {e}")))?.map_err(git_err)
}

impl Factory {
    /// The change a task made (or, for a step task, the change it ships), if one was recorded.
    pub async fn change(&self, task_id: &str) -> StoreResult<Option<ChangeRecord>> {
        let own = self.ports.settings.get(&Key::Change(task_id).id()).await?;
        let id = match (own, self.ports.tasks.get(task_id).await.ok()) {
            (Some(v), _) => return Ok(serde_json::from_value(v).ok()),
            (None, Some(t)) => match self.step_of(&t).await? {
                Some(Step::Merge { change, .. }) | Some(Step::Deploy { change: Some(change), .. }) => change,
                _ => return Ok(None),
            },
            (None, None) => return Ok(None),
        };
        Ok(self.ports.settings.get(&Key::Change(&id).id()).await?.and_then(|v| serde_json::from_value(v).ok()))
    }

    pub async fn save_change(&self, rec: &ChangeRecord) -> StoreResult<()> {
        let v = serde_json::to_value(rec).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut v = v;
        self.redactor.redact_json(&mut v);
        self.ports.settings.put(&Key::Change(&rec.task).id(), v).await
    }

    /// A task's change as files and commits (`reef task diff`, the diff view, approval cards).
    pub async fn change_view(&self, task_id: &str) -> StoreResult<ChangeView> {
        let record = self.change(task_id).await?.ok_or_else(|| StoreError::NotFound {
            what: format!("a change of task {task_id} (it has no worktree, or no attempt has finished)"),
        })?;
        // Commits never change: the list kept for these two is the list (a large change's costs a
        // git run of hundreds of milliseconds, and the window re-reads it while the store is busy).
        let key = Key::ChangeFiles(&record.task).id();
        let kept = self.ports.settings.get(&key).await?.and_then(|v| serde_json::from_value::<FilesDoc>(v).ok());
        let pull = self.pull_of(&record.task).await?;
        if let Some(d) = kept.filter(|d| d.base == record.base && d.head == record.head) {
            return Ok(ChangeView { record, files: d.files, commits: d.commits, pull });
        }
        let (dir, base, head) = (mirror_dir(&self.config.data_dir, &record.repository), record.base.clone(), record.head.clone());
        let (files, commits) = blocking(move || {
            let m = Mirror::open(&dir)?;
            Ok((m.files(&base, &head)?, m.commits(&base, &head, 200)?))
        })
        .await?;
        // Kept for the next read where it can be; the view stands without it.
        if let Err(e) = self.keep_change_files(&record, &files, &commits).await {
            tracing::warn!(task = %record.task, error = %e, "could not keep a change's file list");
        }
        Ok(ChangeView { record, files, commits, pull })
    }

    /// A change's pull request, where its product's forge takes changes as pull requests.
    pub async fn pull_of(&self, task_id: &str) -> StoreResult<Option<PullRequest>> {
        Ok(self.ports.settings.get(&Key::ChangePull(task_id).id()).await?.and_then(|v| serde_json::from_value(v).ok()))
    }

    pub async fn save_pull(&self, task_id: &str, pull: &PullRequest) -> StoreResult<()> {
        let mut v = serde_json::to_value(pull).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.redactor.redact_json(&mut v);
        self.ports.settings.put(&Key::ChangePull(task_id).id(), v).await
    }

    /// Keeps a change's file list and commits for the diff view (where small enough).
    pub async fn keep_change_files(&self, record: &ChangeRecord, files: &[ChangedFile], commits: &[CommitInfo]) -> StoreResult<()> {
        // A cheap bound first (a path is at least a byte), then the exact one.
        if files.len() > FILES_KEPT_BYTES / 64 {
            return Ok(());
        }
        let doc = FilesDoc { base: record.base.clone(), head: record.head.clone(), files: files.to_vec(), commits: commits.to_vec() };
        let bytes = serde_json::to_vec(&doc).map_err(|e| StoreError::Invalid(e.to_string()))?;
        if bytes.len() > FILES_KEPT_BYTES {
            return Ok(());
        }
        let mut v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.redactor.redact_json(&mut v);
        self.ports.settings.put(&Key::ChangeFiles(&record.task).id(), v).await
    }

    /// The unified patch of a task's change (one file, or all), at most `max_bytes`; and whether it was cut.
    pub async fn change_patch(&self, task_id: &str, file: Option<&str>, max_bytes: usize) -> StoreResult<(String, bool)> {
        let record = self.change(task_id).await?.ok_or_else(|| StoreError::NotFound {
            what: format!("a change of task {task_id} (it has no worktree, or no attempt has finished)"),
        })?;
        let (dir, file) = (mirror_dir(&self.config.data_dir, &record.repository), file.map(str::to_string));
        blocking(move || Mirror::open(&dir)?.patch(&record.base, &record.head, file.as_deref(), max_bytes)).await
    }

    /// A person's comment on one line of a task's change: kept with the change (shown in the
    /// diff) and in the thread, where the builder's next attempt reads it with its file and line.
    pub async fn comment_line(&self, task_id: &str, file: &str, line: u64, body: &str, who: &str) -> StoreResult<Task> {
        let mut rec = self.change(task_id).await?.ok_or_else(|| StoreError::NotFound {
            what: format!("a change of task {task_id} (it has no worktree, or no attempt has finished)"),
        })?;
        if file.is_empty() || file.len() > 4096 || line == 0 {
            return Err(StoreError::Invalid("a line comment needs a file of the change and a line from 1".into()));
        }
        let t = self.comment(&rec.task, who, &format!("On {file} line {line}: {body}")).await?;
        rec.comments.push(LineComment { file: file.into(), line, body: self.redactor.redact(body), author: who.into() });
        self.save_change(&rec).await?;
        self.audit(who, "change.comment", &rec.task, serde_json::Value::Null, serde_json::json!({"file": file, "line": line}), None)
            .await?;
        Ok(t)
    }

    /// The merge step of a reviewed change (behind the `merge` gate, waiting for its task to be
    /// done), named in the change's steps (the caller saves the record).
    pub async fn propose_merge(&self, task: &Task, rec: &mut ChangeRecord, actor: &str) -> StoreResult<Task> {
        let step = Step::Merge {
            change: task.id.clone(),
            product: task.product.clone().unwrap_or_default(),
            sha: rec.head.clone(),
            flags: rec.flags.clone(),
        };
        let new = NewTask {
            title: format!("Merge: {}", task.title.chars().take(400).collect::<String>()),
            description: format!("Merges commit {} of task {} into main.", rec.head, task.id),
            action_class: Some("merge".into()),
            assigned_to: task.assigned_to.clone(),
            ..Default::default()
        };
        let key = format!("merge:{}:{}", task.id, rec.head);
        let m = self.make_step(step, &key, new, Some(&task.id), actor).await?;
        rec.steps.insert("merge".into(), m.id.clone());
        Ok(m)
    }

    /// A person accepts a task that waits in review (no reviewer could run, or the task asked
    /// for a person's review): it is done, and a change of a product with a pipeline goes on to
    /// its merge with that person as its reviewer — still behind the merge gate.
    pub async fn accept_task(&self, task_id: &str, who: &str, note: Option<&str>) -> StoreResult<Task> {
        let t = self.ports.tasks.get(task_id).await?;
        if t.status != TaskStatus::Review {
            return Err(StoreError::Conflict(format!("task {} is {}, not waiting in review", t.id, t.status)));
        }
        let mut merge = None;
        if let Some(mut rec) = self.change(&t.id).await?.filter(|r| r.task == t.id) {
            let summary = note.map(|n| self.redactor.redact(n)).unwrap_or_else(|| "accepted by a person".into());
            rec.review = Some(ReviewRecord { reviewer: who.into(), approved: true, summary, comments: vec![] });
            rec.stage = "reviewed".into();
            if self.pipeline(t.product.as_deref()).await?.is_some() {
                merge = Some(self.propose_merge(&t, &mut rec, who).await?.id);
            }
            self.save_change(&rec).await?;
        }
        let n = self.ports.tasks.transition(&t.id, &[TaskStatus::Review], TaskStatus::Done, note, self.now()).await?;
        self.audit(who, "task.accept", &t.id, serde_json::json!(t.status), serde_json::json!(n.status), note).await?;
        self.event("task.accepted", who, Some(&t.id), serde_json::json!({"merge": merge})).await?;
        Ok(n)
    }

    /// The step a task carries out, if REEF made it as one.
    pub async fn step_of(&self, t: &Task) -> StoreResult<Option<Step>> {
        let Some(key) = t.idempotency_key.as_deref().filter(|k| k.starts_with(STEP_KEY_PREFIX)) else { return Ok(None) };
        Ok(self.ports.settings.get(&Key::DeliveryStep(key).id()).await?.and_then(|v| serde_json::from_value(v).ok()))
    }

    /// Makes a step task: its record first, then the task (the same key again is the same task).
    /// `after`: a task it waits for (it starts blocked until that one is done).
    pub async fn make_step(&self, step: Step, key: &str, new: NewTask, after: Option<&str>, actor: &str) -> StoreResult<Task> {
        let key = format!("{STEP_KEY_PREFIX}{key}");
        let v = serde_json::to_value(&step).map_err(|e| StoreError::Invalid(e.to_string()))?;
        // Written once: a key made again (a retried attempt) must name the same step, never
        // rebind a task that may already be approved to something else.
        let id = Key::DeliveryStep(&key).id();
        if !self.ports.settings.put_if_absent(&id, v.clone()).await? && self.ports.settings.get(&id).await?.as_ref() != Some(&v) {
            return Err(StoreError::Conflict(format!("delivery step {key} already exists for another change")));
        }
        let new = NewTask {
            idempotency_key: Some(key),
            depends_on: after.map(|a| vec![a.to_string()]).unwrap_or_default(),
            product: Some(step.product().to_string()),
            kind: Some(step.name().into()),
            ..new
        };
        let (task, created) = self.ports.tasks.create(new, self.now()).await?;
        if created {
            self.announce_created(&task, actor).await?;
            self.event(
                &format!("delivery.{}_proposed", step.name()),
                actor,
                Some(&task.id),
                serde_json::to_value(&step).unwrap_or_default(),
            )
            .await?;
        }
        Ok(task)
    }

    /// The versions `product` shipped, newest last.
    pub async fn deploys(&self, product: &str) -> StoreResult<Vec<Deploy>> {
        let v = self.ports.settings.get(&Key::Deploys(product).id()).await?;
        Ok(v.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default())
    }

    /// Adds a deploy to `product`'s history, or updates the health of the one with its task.
    pub async fn record_deploy(&self, product: &str, d: Deploy) -> StoreResult<()> {
        let mut all = self.deploys(product).await?;
        match all.iter_mut().find(|x| x.task == d.task && x.version == d.version) {
            Some(x) => *x = d,
            None => all.push(d),
        }
        let cut = all.len().saturating_sub(DEPLOY_HISTORY);
        all.drain(..cut);
        self.ports.settings.put(&Key::Deploys(product).id(), serde_json::to_value(&all).unwrap_or_default()).await
    }

    /// The version to go back to from `product`'s latest deploy: the last one before it that was
    /// not itself rolled back or unhealthy; else `fallback` (main before the change merged).
    pub async fn rollback_target(&self, product: &str) -> StoreResult<Option<(String, String)>> {
        let all = self.deploys(product).await?;
        let Some(last) = all.last() else { return Ok(None) };
        let before =
            all.iter().rev().skip(1).find(|d| d.version != last.version && matches!(d.health, Health::Healthy | Health::Unchecked));
        Ok(before.map(|d| (d.version.clone(), last.version.clone())))
    }

    /// Proposes going back to `product`'s previous version: a rollback task behind its gate.
    /// `approved_by`: a person asked for it (`reef rollback`), so it carries their approval.
    pub async fn propose_rollback(
        &self,
        product: &str,
        to: (String, String),
        reason: &str,
        actor: &str,
        approved_by: Option<&str>,
    ) -> StoreResult<Task> {
        let (version, from) = to;
        let assigned = self.step_agent(product).await;
        let step = Step::Rollback { product: product.into(), version: version.clone(), from: from.clone(), reason: reason.into() };
        let new = NewTask {
            title: format!("Roll {product} back to {}", short(&version)),
            description: format!("{reason}\n\nRestores {version} (the version before {from})."),
            action_class: Some("rollback".into()),
            assigned_to: assigned,
            priority: 10,
            ..Default::default()
        };
        let key = format!("rollback:{product}:{}:{}", short(&from), new_id());
        let t = self.make_step(step, &key, new, None, actor).await?;
        if let Some(who) = approved_by {
            let now = self.now();
            let a = self
                .ports
                .approvals
                .request(
                    NewApproval {
                        task_id: t.id.clone(),
                        action_class: "rollback".into(),
                        summary: t.title.clone(),
                        work_products: WorkProducts::default(),
                        requested_by: who.into(),
                        expires_at: None,
                        attempt: 1,
                        in_task: false,
                    },
                    now,
                )
                .await?;
            // Decided through the one decision operation (recorded, audited, evented like any other).
            self.decide(&a.id, Decision::Approve, who, Some("asked for by the operator")).await?;
        }
        self.audit(
            actor,
            "delivery.rollback_proposed",
            &t.id,
            serde_json::Value::Null,
            serde_json::json!({"product": product, "to": version, "from": from}),
            Some(reason),
        )
        .await?;
        Ok(t)
    }

    /// The agent a product's step tasks are given to (they spend no model time): the agent of its
    /// latest deploy, else the first builder, else the first agent.
    async fn step_agent(&self, product: &str) -> Option<String> {
        if let Some(last) = self.deploys(product).await.ok().and_then(|d| d.last().cloned()) {
            if let Ok(t) = self.ports.tasks.get(&last.task).await {
                if t.assigned_to.is_some() {
                    return t.assigned_to;
                }
            }
        }
        let live = self.live().await.ok()?;
        live.agents.iter().find(|a| a.role == "builder").or(live.agents.first()).map(|a| a.name.clone())
    }
}

/// A commit id as people read it.
/// Safe on any text (a forge's answer may put anything where a sha belongs).
pub fn short(sha: &str) -> &str {
    let end = sha.char_indices().nth(12).map(|(i, _)| i).unwrap_or(sha.len());
    &sha[..end]
}
