//! Wire types of the delivery loop: a task's change (files, commits, flags, checks, review,
//! line comments), one file's patch, and each product's pipeline at a glance.

use super::*;
use reef_core::domain::change::{ChangeRecord, Deploy, Health};
use reef_core::factory::delivery::ChangeView;
use reef_core::factory::pipelines::ProductPipeline;
use reef_core::git::{FileKind, Flag};

#[derive(Debug, Clone, Serialize, Type)]
pub struct ChangedFileDto {
    pub path: String,
    pub from: Option<String>,
    pub kind: FileKind,
    /// Lines added and deleted; `None` for a binary file.
    pub added: Option<u32>,
    pub deleted: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct CommitDto {
    pub sha: String,
    pub subject: String,
    pub author: String,
    pub at: String,
}

#[derive(Debug, Clone, Copy, Serialize, Type)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    TestsDeleted,
    TestsEdited,
    ChecksEdited,
    Binary,
    Large,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct FlagDto {
    pub kind: FlagKind,
    pub path: String,
    pub text: String,
}

impl From<&Flag> for FlagDto {
    fn from(f: &Flag) -> Self {
        let kind = match f {
            Flag::TestsDeleted { .. } => FlagKind::TestsDeleted,
            Flag::TestsEdited { .. } => FlagKind::TestsEdited,
            Flag::ChecksEdited { .. } => FlagKind::ChecksEdited,
            Flag::Binary { .. } => FlagKind::Binary,
            Flag::Large { .. } => FlagKind::Large,
        };
        Self { kind, path: f.path().to_string(), text: f.describe() }
    }
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct CheckRunDto {
    pub name: String,
    pub command: String,
    pub passed: bool,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub seconds: f64,
    pub output: String,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct LineCommentDto {
    pub file: String,
    pub line: u32,
    pub body: String,
    pub author: String,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct ReviewDto {
    pub reviewer: String,
    pub approved: bool,
    pub summary: String,
    pub comments: Vec<LineCommentDto>,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct StepDto {
    pub step: String,
    pub task: String,
}

/// A change's pull request on the product's forge.
#[derive(Debug, Clone, Serialize, Type)]
pub struct PullRequestDto {
    pub number: u32,
    pub url: String,
    pub branch: String,
    /// open, merged or closed.
    pub state: String,
}

/// A task's change, without its patch (files are read one at a time).
#[derive(Debug, Clone, Serialize, Type)]
pub struct ChangeDto {
    pub task: String,
    pub product: Option<String>,
    pub branch: Option<String>,
    pub base: String,
    pub head: String,
    pub attempt: u32,
    pub stage: String,
    pub added: u32,
    pub deleted: u32,
    pub flags: Vec<FlagDto>,
    pub checks: Vec<CheckRunDto>,
    pub review: Option<ReviewDto>,
    pub comments: Vec<LineCommentDto>,
    pub steps: Vec<StepDto>,
    pub pull: Option<PullRequestDto>,
    pub files: Vec<ChangedFileDto>,
    pub commits: Vec<CommitDto>,
}

fn line_comment(c: &reef_core::domain::change::LineComment) -> LineCommentDto {
    LineCommentDto { file: c.file.clone(), line: c.line.min(u32::MAX as u64) as u32, body: c.body.clone(), author: c.author.clone() }
}

fn n(v: u64) -> u32 {
    v.min(u32::MAX as u64) as u32
}

impl From<&ChangeView> for ChangeDto {
    fn from(v: &ChangeView) -> Self {
        let r: &ChangeRecord = &v.record;
        Self {
            task: r.task.clone(),
            product: r.product.clone(),
            branch: r.branch.clone(),
            base: r.base.clone(),
            head: r.head.clone(),
            attempt: r.attempt,
            stage: r.stage.clone(),
            added: n(r.added),
            deleted: n(r.deleted),
            flags: r.flags.iter().map(Into::into).collect(),
            checks: r
                .checks
                .iter()
                .map(|c| CheckRunDto {
                    name: c.name.clone(),
                    command: c.command.clone(),
                    passed: c.passed,
                    exit_code: c.exit_code,
                    timed_out: c.timed_out,
                    seconds: c.seconds,
                    output: c.output.clone(),
                })
                .collect(),
            review: r.review.as_ref().map(|v| ReviewDto {
                reviewer: v.reviewer.clone(),
                approved: v.approved,
                summary: v.summary.clone(),
                comments: v.comments.iter().map(line_comment).collect(),
            }),
            // People's line comments: REEF's own and those left on its pull request.
            comments: r.comments.iter().chain(v.pull.iter().flat_map(|p| p.comments.iter())).map(line_comment).collect(),
            steps: r.steps.iter().map(|(k, v)| StepDto { step: k.clone(), task: v.clone() }).collect(),
            pull: v.pull.as_ref().map(|p| PullRequestDto {
                number: n(p.number),
                url: p.url.clone(),
                branch: p.branch.clone(),
                state: p.state.clone(),
            }),
            files: v
                .files
                .iter()
                .map(|f| ChangedFileDto {
                    path: f.path.clone(),
                    from: f.from.clone(),
                    kind: f.kind,
                    added: f.added.map(n),
                    deleted: f.deleted.map(n),
                })
                .collect(),
            commits: v
                .commits
                .iter()
                .map(|c| CommitDto { sha: c.sha.clone(), subject: c.subject.clone(), author: c.author.clone(), at: c.at.clone() })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct PatchDto {
    pub text: String,
    /// The patch was longer than the window is sent.
    pub cut: bool,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct DeployDto {
    pub version: String,
    pub at: String,
    pub task: String,
    pub health: Health,
    pub note: String,
}

impl From<&Deploy> for DeployDto {
    fn from(d: &Deploy) -> Self {
        Self { version: d.version.clone(), at: d.at.clone(), task: d.task.clone(), health: d.health, note: d.note.clone() }
    }
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct OpenChangeDto {
    pub task: String,
    pub title: String,
    pub status: TaskStatus,
    pub stage: String,
    pub flags: u32,
    pub checks_passed: bool,
    pub files: u32,
    pub added: u32,
    pub deleted: u32,
    pub step: Option<String>,
    pub step_task: Option<String>,
    pub step_status: Option<TaskStatus>,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct ProductPipelineDto {
    pub product: String,
    pub has_pipeline: bool,
    pub repository: Option<String>,
    pub main: Option<String>,
    pub checks: Vec<String>,
    pub deploys: bool,
    pub health_url: Option<String>,
    pub auto_rollback: bool,
    /// `owner/name` on GitHub, where changes become pull requests.
    pub forge: Option<String>,
    /// The latest stored revision of its pipeline (0: the config file's).
    pub revision: u32,
    pub open: Vec<OpenChangeDto>,
    pub last_deploy: Option<DeployDto>,
    pub spend_usd: f64,
    pub revenue_usd: f64,
}

impl From<&ProductPipeline> for ProductPipelineDto {
    fn from(p: &ProductPipeline) -> Self {
        Self {
            product: p.product.clone(),
            has_pipeline: p.has_pipeline,
            repository: p.repository.clone(),
            main: p.main.clone(),
            checks: p.checks.clone(),
            deploys: p.deploys,
            health_url: p.health_url.clone(),
            auto_rollback: p.auto_rollback,
            forge: p.forge.clone(),
            revision: p.revision,
            open: p
                .open
                .iter()
                .map(|o| OpenChangeDto {
                    task: o.task.clone(),
                    title: o.title.clone(),
                    status: o.status,
                    stage: o.stage.clone(),
                    flags: o.flags as u32,
                    checks_passed: o.checks_passed,
                    files: n(o.files),
                    added: n(o.added),
                    deleted: n(o.deleted),
                    step: o.step.as_ref().map(|s| s.0.clone()),
                    step_task: o.step.as_ref().map(|s| s.1.clone()),
                    step_status: o.step.as_ref().map(|s| s.2),
                })
                .collect(),
            last_deploy: p.last_deploy.as_ref().map(Into::into),
            spend_usd: p.spend.dollars(),
            revenue_usd: p.revenue_usd_minor as f64 / 100.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct PipelineRevisionDto {
    pub revision: u32,
    pub author: String,
    pub at: String,
    pub reason: Option<String>,
    pub text: String,
}

/// A product's pipeline as the window edits it: the table in force and its revisions.
#[derive(Debug, Clone, Serialize, Type)]
pub struct PipelineEditDto {
    pub product: String,
    /// Whether the product has a pipeline yet (if not, `text` is a template).
    pub exists: bool,
    /// The latest stored revision (0: the config file's, or none); saving names it as its base.
    pub revision: u32,
    pub text: String,
    /// Newest first.
    pub revisions: Vec<PipelineRevisionDto>,
}

impl From<&reef_core::factory::pipeline_defs::PipelineRevision> for PipelineRevisionDto {
    fn from(r: &reef_core::factory::pipeline_defs::PipelineRevision) -> Self {
        Self { revision: r.revision, author: r.author.clone(), at: r.at.clone(), reason: r.reason.clone(), text: r.text.clone() }
    }
}
