//! `reef schedules` and `reef schedule pause | resume | run NAME`.

use super::Out;
use clap::Subcommand;
use reef_core::factory::schedules;
use reef_core::factory::Factory;
use reef_core::time::fmt_ts;

#[derive(Subcommand)]
pub enum ScheduleCmd {
    /// Skip this schedule's slots until resumed.
    Pause {
        name: String,
    },
    Resume {
        name: String,
    },
    /// Create a run now (the overlap policy still applies).
    Run {
        name: String,
    },
    /// Create or replace a schedule, kept in the store (it wins over the file's of that name).
    Save {
        name: String,
        /// Five-field cron in the factory's timezone, e.g. "0 7 * * *".
        #[arg(long)]
        cron: String,
        /// The title of the task each run creates.
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        agent: Option<String>,
        /// The task's type.
        #[arg(long = "type")]
        kind: Option<String>,
        #[arg(long)]
        action_class: Option<String>,
        #[arg(long)]
        product: Option<String>,
        /// skip (default) or allow a run while the last is unfinished.
        #[arg(long)]
        overlap: Option<String>,
    },
    /// Delete a schedule (one of the config file's too, until it is saved again).
    Rm {
        name: String,
    },
}

pub async fn list(f: &Factory, out: &Out) -> anyhow::Result<()> {
    let now = f.now();
    let mut rows = vec![];
    for (s, source) in f.schedules_with_source().await? {
        let st = schedules::state(f, &s.section.name).await?;
        rows.push(serde_json::json!({
            "name": s.section.name, "cron": s.section.cron, "title": s.section.title,
            "next_run": s.next_slot(f.config.timezone, now).map(|t| fmt_ts(&t)),
            "paused": st.paused, "last_slot": st.last_slot.map(|t| fmt_ts(&t)), "last_task": st.last_task,
            "overlap": s.overlap, "source": source,
        }));
    }
    out.print(&serde_json::json!({"schedules": rows, "timezone": f.config.timezone.name()}), || {
        let mut s = format!("{:<16} {:<14} {:<26} {:<7} {}\n", "NAME", "CRON", "NEXT RUN", "PAUSED", "TITLE");
        for r in &rows {
            s.push_str(&format!(
                "{:<16} {:<14} {:<26} {:<7} {}\n",
                r["name"].as_str().unwrap_or(""),
                r["cron"].as_str().unwrap_or(""),
                r["next_run"].as_str().unwrap_or("-"),
                if r["paused"].as_bool().unwrap_or(false) { "yes" } else { "no" },
                r["title"].as_str().unwrap_or("")
            ));
        }
        if rows.is_empty() {
            s.push_str("(no schedules; add [[schedules]] to the config)\n");
        }
        s
    });
    Ok(())
}

pub async fn run(f: &Factory, c: ScheduleCmd, out: &Out) -> anyhow::Result<()> {
    let who = f.operator();
    match c {
        ScheduleCmd::Save { name, cron, title, description, agent, kind, action_class, product, overlap } => {
            let section = reef_core::rules::schedule::ScheduleSection {
                description,
                agent,
                kind,
                product,
                action_class,
                overlap,
                ..reef_core::rules::schedule::ScheduleSection::new(&name, &cron, &title)
            };
            let s = f.save_schedule(section, &who).await?;
            let next = s.next_slot(f.config.timezone, f.now()).map(|t| fmt_ts(&t));
            out.print(&serde_json::json!({"saved": s.section.name, "next_run": next}), || {
                format!("schedule {} saved; next run {}", s.section.name, next.as_deref().unwrap_or("never"))
            });
        }
        ScheduleCmd::Rm { name } => {
            f.delete_schedule(&name, &who).await?;
            out.print(&serde_json::json!({"deleted": name}), || format!("schedule {name} deleted"));
        }
        ScheduleCmd::Pause { name } => {
            f.pause_schedule(&name, true, &who).await?;
            out.print(&serde_json::json!({"paused": name}), || format!("schedule {name} paused"));
        }
        ScheduleCmd::Resume { name } => {
            f.pause_schedule(&name, false, &who).await?;
            out.print(&serde_json::json!({"resumed": name}), || format!("schedule {name} resumed"));
        }
        ScheduleCmd::Run { name } => match f.run_schedule_now(&name, &who).await? {
            Some(t) => out.print(&t, || format!("schedule {name}: created task {}", t.id)),
            None => out.print(&serde_json::json!({"skipped": name}), || {
                format!("schedule {name}: skipped, its previous run is not finished (overlap = skip)")
            }),
        },
    }
    Ok(())
}
