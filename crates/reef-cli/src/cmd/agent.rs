//! `reef agent …` and `reef policy …`: an agent's settings with their revisions, and the
//! approval gates. Every change is a revision or settings change, audited (reef_core::factory::live).

use super::Out;
use clap::Subcommand;
use reef_core::factory::Factory;
use reef_core::rules::policy::Gate;
use reef_core::*;

#[derive(Subcommand)]
pub enum AgentCmd {
    /// The settings in force for one agent.
    Show { name: String },
    /// Change an agent's prompt, model, tier, daily cap or concurrency (a new revision).
    Edit {
        name: String,
        /// Read the prompt from this file (`-` for standard input).
        #[arg(long)]
        prompt_file: Option<std::path::PathBuf>,
        /// A model name (overrides the tier); `none` clears it.
        #[arg(long)]
        model: Option<String>,
        /// local, cheap, mid or frontier; `none` clears it.
        #[arg(long)]
        tier: Option<String>,
        #[arg(long)]
        daily_cap_usd: Option<f64>,
        #[arg(long)]
        max_concurrent: Option<u32>,
        #[arg(long, short = 'r')]
        reason: Option<String>,
    },
    /// Every revision of an agent's settings, newest first.
    Revisions { name: String },
    /// Put an agent back to an earlier revision's settings (as a new revision).
    Rollback { name: String, revision: u32 },
}

#[derive(Subcommand)]
pub enum PolicyCmd {
    /// The approval gates in force.
    Show,
    /// Set an action class's gate: auto, notify_after, approve_before, never_auto; `remove` drops
    /// it (it then waits for approval, as every class the policy does not name).
    Set {
        class: String,
        gate: String,
        /// Confirm lowering the gate of a class a person decides (approve_before, never_auto).
        #[arg(long)]
        yes: bool,
    },
}

fn who(f: &Factory) -> String {
    f.operator()
}

/// A gate by name, or `remove`.
fn parse_gate(s: &str) -> anyhow::Result<Option<Gate>> {
    if s == "remove" {
        return Ok(None);
    }
    Ok(Some(s.parse::<Gate>().map_err(|e| anyhow::anyhow!("{e}, or remove"))?))
}

fn describe(a: &AgentConfig) -> String {
    format!(
        "{} ({})\n  tier: {}  model: {}  daily cap: {}  max concurrent: {}\n  prompt:\n{}",
        a.name,
        a.role,
        a.model_tier.map(|t| t.as_str()).unwrap_or("—"),
        a.model.as_deref().unwrap_or("—"),
        a.daily_cap_usd,
        a.max_concurrent,
        if a.prompt.is_empty() {
            "    (none)".to_string()
        } else {
            a.prompt.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
        }
    )
}

pub async fn agent(f: &Factory, c: AgentCmd, out: &Out) -> anyhow::Result<()> {
    match c {
        AgentCmd::Show { name } => {
            let live = f.live().await?;
            let a = live.agent(&name).ok_or_else(|| anyhow::anyhow!("{name:?} is not a configured agent"))?;
            out.print(a, || describe(a));
        }
        AgentCmd::Edit { name, prompt_file, model, tier, daily_cap_usd, max_concurrent, reason } => {
            let live = f.live().await?;
            let mut a = live.agent(&name).cloned().ok_or_else(|| anyhow::anyhow!("{name:?} is not a configured agent"))?;
            if let Some(p) = prompt_file {
                a.prompt = if p.as_os_str() == "-" {
                    std::io::read_to_string(std::io::stdin())?
                } else {
                    std::fs::read_to_string(&p).map_err(|e| anyhow::anyhow!("reading the prompt from {}: {e}", p.display()))?
                };
            }
            if let Some(m) = model {
                a.model = (m != "none").then_some(m);
            }
            if let Some(t) = tier {
                a.model_tier = if t == "none" { None } else { Some(t.parse::<ModelTier>().map_err(|e| anyhow::anyhow!(e))?) };
            }
            if let Some(c) = daily_cap_usd {
                anyhow::ensure!(c.is_finite(), "--daily-cap-usd must be a number");
                a.daily_cap_usd = Usd::from_dollars(c);
            }
            if let Some(n) = max_concurrent {
                a.max_concurrent = n;
            }
            let saved = f.edit_agent(a, &who(f), reason.as_deref()).await?;
            out.print(&serde_json::json!({"agent": saved.id, "revision": saved.revision}), || {
                format!("{} is at revision {}", saved.id, saved.revision)
            });
        }
        AgentCmd::Revisions { name } => {
            anyhow::ensure!(f.config.agent(&name).is_some(), "{name:?} is not a configured agent");
            let mut revs = f.ports.agents.revisions(&name).await?;
            revs.sort_by_key(|r| std::cmp::Reverse(r.revision));
            out.print(&revs, || {
                revs.iter()
                    .map(|r| {
                        format!(
                            "r{:<3} {}  {:<28} cap {}  tier {}  model {}",
                            r.revision,
                            time::fmt_ts(&r.at),
                            r.author,
                            r.config.daily_cap_usd,
                            r.config.model_tier.map(|t| t.as_str()).unwrap_or("—"),
                            r.config.model.as_deref().unwrap_or("—")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        AgentCmd::Rollback { name, revision } => {
            let saved = f.rollback_agent(&name, revision, &who(f)).await?;
            out.print(&serde_json::json!({"agent": saved.id, "revision": saved.revision, "from": revision}), || {
                format!("{} is back at revision {revision}'s settings (now revision {})", saved.id, saved.revision)
            });
        }
    }
    Ok(())
}

pub async fn policy(f: &Factory, c: PolicyCmd, out: &Out) -> anyhow::Result<()> {
    if let PolicyCmd::Set { class, gate, yes } = &c {
        f.set_gate(class, parse_gate(gate)?, &who(f), *yes).await?;
    }
    let live = f.live().await?;
    out.print(&live.gates, || {
        let mut s: Vec<String> = live.gates.iter().map(|(c, g)| format!("{c:<24} {}", g.as_str())).collect();
        s.push(format!("(every other action class: {}; work that names no class: auto)", Gate::UNLISTED.as_str()));
        s.join("\n")
    });
    Ok(())
}
