//! Wire types of the window's tasks area. Tasks, their threads and work products, and the events of their history.

use super::*;

#[derive(Debug, Clone, Serialize, Type)]
pub struct CommentDto {
    pub author: String,
    pub body: String,
    pub at: String,
}

#[derive(Debug, Clone, Serialize, Type, Default)]
pub struct WorkProductsDto {
    pub branch: Option<String>,
    pub pr_url: Option<String>,
    pub preview_url: Option<String>,
    pub deploy_url: Option<String>,
    pub repository: Option<String>,
}

impl From<&WorkProducts> for WorkProductsDto {
    fn from(w: &WorkProducts) -> Self {
        Self {
            branch: w.branch.clone(),
            pr_url: w.pr_url.clone(),
            preview_url: w.preview_url.clone(),
            deploy_url: w.deploy_url.clone(),
            repository: w.repository.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct TaskDto {
    pub id: String,
    pub title: String,
    pub description: String,
    pub status: TaskStatus,
    pub priority: i32,
    pub assigned_to: Option<String>,
    pub kind: Option<String>,
    pub action_class: Option<String>,
    pub tier: Option<ModelTier>,
    pub product: Option<String>,
    pub attempts: u32,
    pub created_at: String,
    pub updated_at: Option<String>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub depends_on: Vec<String>,
    pub parent_id: Option<String>,
    pub comments: Vec<CommentDto>,
    pub work_products: WorkProductsDto,
    pub lease_holder: Option<String>,
    pub review: bool,
}

impl From<&Task> for TaskDto {
    fn from(t: &Task) -> Self {
        Self {
            id: t.id.clone(),
            title: t.title.clone(),
            description: t.description.clone(),
            status: t.status,
            priority: t.priority.clamp(i32::MIN as i64, i32::MAX as i64) as i32,
            assigned_to: t.assigned_to.clone(),
            kind: t.kind.clone(),
            action_class: t.action_class.clone(),
            tier: t.model_tier,
            product: t.product.clone(),
            attempts: t.attempts,
            created_at: fmt_ts(&t.created_at),
            updated_at: t.updated_at.as_ref().map(fmt_ts),
            result: t.result.clone(),
            error: t.error.clone(),
            depends_on: t.depends_on.clone(),
            parent_id: t.parent_id.clone(),
            comments: t.comments.iter().map(|c| CommentDto { author: c.author.clone(), body: c.body.clone(), at: fmt_ts(&c.at) }).collect(),
            work_products: (&t.work_products).into(),
            lease_holder: t.lease.as_ref().map(|l| l.holder.clone()),
            review: t.wants_review(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct TaskListDto {
    pub tasks: Vec<TaskDto>,
    pub malformed: Vec<MalformedDto>,
}

#[derive(Debug, Clone, Deserialize, Type)]
pub struct NewTaskDto {
    pub title: String,
    pub description: Option<String>,
    pub priority: Option<i32>,
    pub agent: Option<String>,
    pub kind: Option<String>,
    pub tier: Option<ModelTier>,
    pub product: Option<String>,
    pub action_class: Option<String>,
    pub review: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct EventDto {
    pub id: String,
    pub kind: String,
    pub at: String,
    pub actor: String,
    pub subject: Option<String>,
    pub data: String,
}

impl From<&Event> for EventDto {
    fn from(e: &Event) -> Self {
        Self {
            id: e.id.clone(),
            kind: e.kind.clone(),
            at: fmt_ts(&e.at),
            actor: e.actor.clone(),
            subject: e.subject.clone(),
            data: e.data.to_string(),
        }
    }
}

/// One step of an agent loop: what the model said and called, what each tool answered, and what
/// the step cost.
#[derive(Debug, Clone, Serialize, Type)]
pub struct TraceStepDto {
    pub attempt: u32,
    pub step: u32,
    pub model: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub cost_usd: f64,
    pub latency_ms: u32,
    pub text: String,
    pub calls: Vec<TraceCallDto>,
    /// What REEF did about the step (a nudge, a cut, a stop), when anything.
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Type)]
pub struct TraceCallDto {
    pub id: String,
    pub name: String,
    pub arguments: String,
    pub ok: bool,
    pub answer: String,
    /// For a call that wrote a file: the unified diff of what it changed.
    pub diff: Option<String>,
}

impl From<reef_core::engine::agent_loop::trace::Step> for TraceStepDto {
    fn from(s: reef_core::engine::agent_loop::trace::Step) -> Self {
        let n = |x: u64| x.min(u32::MAX as u64) as u32;
        Self {
            attempt: s.attempt,
            step: s.step,
            model: s.model,
            prompt_tokens: n(s.prompt_tokens),
            completion_tokens: n(s.completion_tokens),
            cost_usd: s.cost.dollars(),
            latency_ms: n(s.latency_ms),
            text: s.text,
            calls: s
                .calls
                .into_iter()
                .map(|c| TraceCallDto { id: c.id, name: c.name, arguments: c.arguments, ok: c.ok, answer: c.answer, diff: c.diff })
                .collect(),
            note: s.note,
        }
    }
}
