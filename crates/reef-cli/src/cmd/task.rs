//! `reef task add | list | show | trace | comment`.

use super::{short, Out};
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use reef_core::factory::Factory;
use reef_core::*;

// Parsed once per run; the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum TaskCmd {
    /// Create a task.
    Add(AddArgs),
    /// List tasks, highest priority first.
    List(ListArgs),
    /// Show one task with its comments, work products and history.
    Show { id: String },
    /// What an agent loop did on a task, step by step: the model's words, its tool calls and
    /// what each answered, tokens, cost, latency and model per step.
    Trace { id: String },
    /// Add a comment to a task's thread (the next attempt sees it).
    Comment {
        id: String,
        body: String,
        /// Who is commenting (default: the operator from config).
        #[arg(long)]
        author: Option<String>,
        /// A file of the task's change the comment is about (with --line).
        #[arg(long, requires = "line")]
        file: Option<String>,
        #[arg(long, requires = "file")]
        line: Option<u64>,
    },
    /// The change a task made in its worktree: files, then the unified diff against its base.
    Diff {
        id: String,
        /// Only this file's diff.
        #[arg(long)]
        file: Option<String>,
        /// Only the file list.
        #[arg(long)]
        stat: bool,
    },
}

#[derive(Args)]
pub struct AddArgs {
    pub title: String,
    #[arg(long, short = 'd', default_value = "")]
    pub description: String,
    #[arg(long, short = 'p', default_value_t = 0)]
    pub priority: i64,
    /// Assign to this agent (kev, rex, scout, blaze …).
    #[arg(long)]
    pub agent: Option<String>,
    /// The role it needs (orchestrator, builder, research, marketing).
    #[arg(long)]
    pub role: Option<String>,
    /// Task type (build, research, deploy, content …).
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Action class for the approval policy (e.g. production_deploy).
    #[arg(long)]
    pub action_class: Option<String>,
    /// Model tier to start at: local, cheap, mid, frontier.
    #[arg(long)]
    pub tier: Option<String>,
    #[arg(long)]
    pub product: Option<String>,
    #[arg(long)]
    pub parent: Option<String>,
    /// Task ids this one waits for (repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    pub depends_on: Vec<String>,
    /// Budget cap for this task in dollars.
    #[arg(long)]
    pub budget: Option<f64>,
    /// Creating twice with the same key creates one task.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Park it in the backlog instead of queueing it.
    #[arg(long)]
    pub backlog: bool,
    /// Have another agent, on another model, review the result before it counts as done.
    #[arg(long)]
    pub review: bool,
    /// A local git repository to work in (CLI agents get a worktree of it on branch reef/<task>).
    #[arg(long)]
    pub repo: Option<String>,
}

#[derive(Args)]
pub struct ListArgs {
    /// Only these states (comma-separated), e.g. pending,running.
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<String>,
    #[arg(long)]
    pub agent: Option<String>,
    #[arg(long)]
    pub product: Option<String>,
    /// Only tasks whose title or id holds this text (case-insensitive).
    #[arg(long)]
    pub search: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

/// Finds a task by full id or by a unique ending of it (tables show the last 12 characters).
pub async fn resolve(f: &Factory, id: &str) -> anyhow::Result<Task> {
    match f.ports.tasks.get(id).await {
        Ok(t) => return Ok(t),
        Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let all = f.ports.tasks.list(&TaskQuery::default()).await?;
    let hits: Vec<Task> = all.items.into_iter().filter(|t| t.id.ends_with(id) || t.id.starts_with(id)).collect();
    match hits.len() {
        0 => bail!("no task with id {id:?}"),
        1 => Ok(hits.into_iter().next().unwrap_or_else(|| unreachable!())),
        n => bail!("{n} tasks match {id:?}; give more of the id"),
    }
}

pub async fn run(cmd: TaskCmd, f: &Factory, out: &Out) -> anyhow::Result<()> {
    let actor = f.operator();
    match cmd {
        TaskCmd::Add(a) => {
            let model_tier = a.tier.as_deref().map(str::parse::<ModelTier>).transpose().map_err(anyhow::Error::msg).context("--tier")?;
            if let Some(agent) = &a.agent {
                if f.config.agent(agent).is_none() {
                    bail!(
                        "--agent {agent:?} is not a configured agent (known: {})",
                        f.config.agents.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
                    );
                }
            }
            let budget_usd = match a.budget {
                Some(b) if !b.is_finite() || b < 0.0 => bail!("--budget must be a non-negative number of dollars"),
                b => b.map(Usd::from_dollars),
            };
            let new = NewTask {
                title: a.title,
                description: a.description,
                priority: a.priority,
                assigned_to: a.agent,
                role: a.role,
                kind: a.kind,
                action_class: a.action_class,
                model_tier,
                product: a.product,
                parent_id: a.parent,
                depends_on: a.depends_on,
                budget_usd,
                idempotency_key: a.idempotency_key,
                max_attempts: None,
                backlog: a.backlog,
                review: a.review,
                repository: a.repo.map(|r| std::fs::canonicalize(&r).map(|p| p.display().to_string()).unwrap_or(r)),
            };
            let t = f.create_task(new, &actor).await?;
            out.print(&t, || format!("created task {} ({}): {}", t.id, t.status, t.title));
        }
        TaskCmd::List(l) => {
            let status = if l.status.is_empty() {
                None
            } else {
                Some(
                    l.status
                        .iter()
                        .map(|s| s.parse::<TaskStatus>())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(anyhow::Error::msg)
                        .context("--status")?,
                )
            };
            let q = TaskQuery { status, assigned_to: l.agent, product: l.product, parent_id: None, text: l.search, limit: Some(l.limit) };
            let listing = f.ports.tasks.list(&q).await?;
            out.print(&serde_json::json!({"tasks": listing.items, "malformed": listing.malformed}), || {
                let mut s = format!("{:<12}  {:<17}  {:>4}  {:<6}  {}\n", "ID", "STATUS", "PRIO", "AGENT", "TITLE");
                for t in &listing.items {
                    s.push_str(&format!(
                        "{:<12}  {:<17}  {:>4}  {:<6}  {}\n",
                        short(&t.id),
                        t.status.as_str(),
                        t.priority,
                        t.assigned_to.as_deref().unwrap_or("-"),
                        t.title
                    ));
                }
                if listing.items.is_empty() {
                    s.push_str("(no tasks)\n");
                }
                for m in &listing.malformed {
                    s.push_str(&format!("! unreadable task {}: {}\n", m.id, m.reason));
                }
                s
            });
        }
        TaskCmd::Trace { id } => {
            let t = resolve(f, &id).await?;
            let steps = reef_core::engine::agent_loop::trace::steps(f, &t.id).await?;
            out.print(&serde_json::json!({"task": t.id, "steps": steps}), || trace_text(&t, &steps))
        }
        TaskCmd::Show { id } => {
            let t = resolve(f, &id).await?;
            let history = f.ports.events.recent(&EventQuery { subject: Some(t.id.clone()), limit: 50, ..Default::default() }).await?;
            let change = f.change(&t.id).await?;
            let pull = match &change {
                Some(c) => f.pull_of(&c.task).await?,
                None => None,
            };
            out.print(&serde_json::json!({"task": t, "events": history.items, "change": change, "pull": pull}), || {
                let mut s = format!("{}\n  id        {}\n  status    {}\n  priority  {}\n", t.title, t.id, t.status, t.priority);
                let opt = |k: &str, v: Option<&str>, s: &mut String| {
                    if let Some(v) = v {
                        s.push_str(&format!("  {k:<9} {v}\n"));
                    }
                };
                opt("agent", t.assigned_to.as_deref(), &mut s);
                opt("role", t.role.as_deref(), &mut s);
                opt("type", t.kind.as_deref(), &mut s);
                opt("tier", t.model_tier.map(|m| m.as_str()), &mut s);
                opt("product", t.product.as_deref(), &mut s);
                opt("parent", t.parent_id.as_deref(), &mut s);
                s.push_str(&format!("  attempts  {}\n  created   {}\n", t.attempts, reef_core::time::fmt_ts(&t.created_at)));
                if let Some(b) = t.budget_usd {
                    s.push_str(&format!("  budget    {b}\n"));
                }
                if !t.depends_on.is_empty() {
                    s.push_str(&format!("  waits on  {}\n", t.depends_on.join(", ")));
                }
                if let Some(l) = &t.lease {
                    s.push_str(&format!("  lease     {} until {}\n", l.holder, reef_core::time::fmt_ts(&l.expires_at)));
                }
                let wp = &t.work_products;
                for (k, v) in [
                    ("branch", &wp.branch),
                    ("pr", &wp.pr_url),
                    ("preview", &wp.preview_url),
                    ("deploy", &wp.deploy_url),
                    ("repo", &wp.repository),
                ] {
                    opt(k, v.as_deref(), &mut s);
                }
                opt("result", t.result.as_deref(), &mut s);
                opt("error", t.error.as_deref(), &mut s);
                if !t.description.is_empty() {
                    s.push_str(&format!("\n{}\n", t.description));
                }
                if let Some(c) = &change {
                    s.push_str(&super::delivery::change_text(c, pull.as_ref()));
                }
                if !t.comments.is_empty() {
                    s.push_str("\nComments:\n");
                    for c in &t.comments {
                        s.push_str(&format!("  [{}] {}: {}\n", reef_core::time::fmt_ts(&c.at), c.author, c.body));
                    }
                }
                if !history.items.is_empty() {
                    s.push_str("\nHistory (newest first):\n");
                    for e in &history.items {
                        s.push_str(&format!("  [{}] {} by {}\n", reef_core::time::fmt_ts(&e.at), e.kind, e.actor));
                    }
                }
                s
            });
        }
        TaskCmd::Diff { id, file, stat } => super::delivery::diff(f, out, &id, file, stat).await?,
        TaskCmd::Comment { id, body, author, file, line } => {
            let t = resolve(f, &id).await?;
            let author = author.map(|a| format!("operator:{a}")).unwrap_or(actor);
            let t = match (file, line) {
                (Some(file), Some(line)) => f.comment_line(&t.id, &file, line, &body, &author).await?,
                _ => f.comment(&t.id, &author, &body).await?,
            };
            out.print(&t, || format!("commented on {} ({} comments)", t.id, t.comments.len()));
        }
    }
    Ok(())
}

/// Lines of one diff `reef task trace` prints.
const DIFF_LINES: usize = 40;

fn trace_text(t: &Task, steps: &[reef_core::engine::agent_loop::trace::Step]) -> String {
    if steps.is_empty() {
        return format!("{} ({}): no agent-loop steps (the task ran as one answer or a CLI agent, or has not run)", t.title, short(&t.id));
    }
    let cost: Usd = steps.iter().map(|s| s.cost).sum();
    let tokens: u64 = steps.iter().map(|s| s.prompt_tokens + s.completion_tokens).sum();
    let mut s = format!("{} ({}): {} steps, {tokens} tokens, {cost}\n\n", t.title, short(&t.id), steps.len());
    s.push_str(&format!("{:>4} {:>3}  {:<12} {:>13} {:>9} {:>7}\n", "STEP", "TRY", "MODEL", "TOKENS IN/OUT", "COST", "MS"));
    // An agent wrote most of this: no control character of its reaches the operator's terminal.
    let one_line = |x: &str, n: usize| -> String {
        let flat: String =
            x.split_whitespace().collect::<Vec<_>>().join(" ").chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect();
        if flat.chars().count() > n {
            format!("{}…", flat.chars().take(n).collect::<String>())
        } else {
            flat
        }
    };
    for st in steps {
        s.push_str(&format!(
            "{:>4} {:>3}  {:<12} {:>13} {:>9} {:>7}\n",
            st.step,
            st.attempt,
            one_line(&st.model, 12),
            format!("{}/{}", st.prompt_tokens, st.completion_tokens),
            st.cost.to_string(),
            st.latency_ms
        ));
        if !st.text.is_empty() {
            s.push_str(&format!("           says  {}\n", one_line(&st.text, 100)));
        }
        for c in &st.calls {
            s.push_str(&format!("           calls {} {}\n", c.name, one_line(&c.arguments, 90)));
            s.push_str(&format!("           {} {}\n", if c.ok { "  ok " } else { "  ✗  " }, one_line(&c.answer, 100)));
            if let Some(d) = &c.diff {
                let lines: Vec<&str> = d.lines().collect();
                for l in lines.iter().take(DIFF_LINES) {
                    let clean: String = l.chars().map(|c| if c.is_control() && c != '\t' { '\u{fffd}' } else { c }).collect();
                    s.push_str(&format!("                 {clean}\n"));
                }
                if lines.len() > DIFF_LINES {
                    s.push_str(&format!("                 … {} more lines of diff (--json has them)\n", lines.len() - DIFF_LINES));
                }
            }
        }
        if let Some(n) = &st.note {
            s.push_str(&format!("           note  {n}\n"));
        }
    }
    s
}
