//! `reef`: the headless side of REEF — operator commands, demo data, backups and benchmarks.

mod cmd;
mod http;
mod limits;
mod setup;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "reef", version, about = "REEF: the control plane of an agentic factory")]
struct Cli {
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Use this config file instead of the one in the platform config dir (env: REEF_CONFIG).
    #[arg(long, global = true, env = "REEF_CONFIG")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run; the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// What needs you (holds, approvals, questions, failures), tasks per state, today's spend
    /// against caps with the day's pace, the store and the engine.
    Status,
    /// Acknowledge the alerts so far: failures before now stop counting as needing you.
    Ack,
    /// Examine the configured store and prove REEF's guarantees on a scratch store of its kind.
    Doctor {
        /// Allow writing a scratch database on a MongoDB server that already holds a factory.
        #[arg(long)]
        yes: bool,
    },
    /// Create, list, show and comment on tasks.
    #[command(subcommand)]
    Task(cmd::task::TaskCmd),
    /// Roll a product back to the version it shipped before its latest deploy (queued as a
    /// rollback task, approved by you).
    Rollback {
        product: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// The versions a product shipped, newest first, with their health.
    Deploys { product: String },
    /// A product's delivery pipeline, with its revisions and rollback.
    #[command(subcommand)]
    Pipeline(cmd::pipeline::PipelineCmd),
    /// Approve a pending approval request.
    Approve(cmd::approval::DecideArgs),
    /// Reject a pending approval request (needs --reason).
    Reject(cmd::approval::DecideArgs),
    /// Send the task back with feedback (needs --reason).
    Revise(cmd::approval::DecideArgs),
    /// List approval requests.
    Approvals(cmd::approval::ListArgs),
    /// Write a consistent archive of the whole store (portable between the two stores).
    Backup { file: std::path::PathBuf },
    /// Load an archive made by `reef backup` into the configured store.
    Restore {
        file: std::path::PathBuf,
        /// Restore even though the store already holds tasks (documents with the same id are replaced).
        #[arg(long)]
        force: bool,
    },
    /// Configuration.
    #[command(subcommand)]
    Config(cmd::config::ConfigCmd),
    /// Seed a realistic factory: agents, products with revenue, a knowledge graph, memories, tasks in every state.
    Demo,
    /// The agent CLIs (Claude Code, Pi, Codex, OpenCode, Gemini CLI, OpenClaw) this machine can run, and why not.
    Executors,
    /// Benchmarks that print figures against a baseline measured in the same run.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCmd),
    /// Run the engine: dispatcher and workers (until Ctrl-C / SIGTERM).
    Serve {
        #[arg(long, value_enum, default_value = "both")]
        role: cmd::serve::Role,
    },
    /// A systemd user unit that runs `reef serve` and restarts it after a crash.
    Service {
        #[command(subcommand)]
        cmd: ServiceCmd,
    },
    /// Take no new work (the factory, or one agent); running work finishes.
    Pause {
        agent: Option<String>,
        #[arg(long, short = 'r')]
        reason: Option<String>,
    },
    /// Stop running work cleanly (its tasks go back to pending) and take no new work.
    Stop {
        agent: Option<String>,
        #[arg(long, short = 'r')]
        reason: Option<String>,
    },
    /// Lift a pause or stop.
    Resume { agent: Option<String> },
    /// Give a task to another agent.
    Reassign { task: String, agent: String },
    /// Cancel a task.
    Cancel {
        task: String,
        #[arg(long, short = 'r')]
        reason: Option<String>,
    },
    /// Put a failed, cancelled or parked task back in the queue.
    Retry { task: String },
    /// Accept a task that waits in review: done, and its change (if any) goes on to its merge.
    Accept {
        task: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Spend caps.
    #[command(subcommand)]
    Cap(cmd::control::CapCmd),
    /// An agent's prompt, model and caps, with their revisions and rollback.
    #[command(subcommand)]
    Agent(cmd::agent::AgentCmd),
    /// Secrets (gateway key, MongoDB URI, Stripe keys, product secrets) in the OS keyring.
    #[command(subcommand)]
    Secret(cmd::secret::SecretCmd),
    /// The approval policy: which action classes wait for a person.
    #[command(subcommand)]
    Policy(cmd::agent::PolicyCmd),
    /// Success rate, cost and latency per agent × model tier × task type.
    Analytics {
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
    /// Search the factory's memory.
    #[command(subcommand)]
    Memory(cmd::knowledge::MemoryCmd),
    /// Revenue: the books, manual entries, CSV import, Stripe pull, products.
    #[command(subcommand)]
    Revenue(cmd::revenue::RevenueCmd),
    /// The knowledge graph.
    #[command(subcommand)]
    Graph(cmd::knowledge::GraphCmd),
    /// Recurring tasks from the config, with their next run.
    Schedules,
    /// Pause, resume or run a schedule now.
    #[command(subcommand)]
    Schedule(cmd::schedule::ScheduleCmd),
    /// The event feed, newest first.
    Events {
        /// Only kinds starting with this (e.g. `task.` or `budget.alert`).
        #[arg(long)]
        kind: Option<String>,
        /// Only events about this task / scope / agent.
        #[arg(long)]
        subject: Option<String>,
        /// Only events containing this text.
        #[arg(long)]
        text: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// The audit log, newest first: who did what (operators, agents, MCP calls and refusals).
    Audit {
        /// Only entries about this task / approval / agent.
        #[arg(long)]
        subject: Option<String>,
        /// Only actions starting with this (e.g. `mcp.` or `approval.`).
        #[arg(long)]
        action: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Outbound webhooks: subscriptions, what each is owed, the delivery log.
    Webhooks {
        #[arg(long, default_value_t = 30)]
        limit: usize,
        /// Send this event again (a dead letter, once its receiver is fixed); with --to.
        #[arg(long, value_name = "EVENT", requires = "to")]
        redeliver: Option<String>,
        /// The subscription to redeliver to.
        #[arg(long, value_name = "SUBSCRIPTION")]
        to: Option<String>,
    },
    /// Serve REEF's MCP tools on stdin/stdout for one agent (token in REEF_MCP_TOKEN), or issue
    /// a task token for an agent REEF did not start.
    Mcp {
        #[command(subcommand)]
        cmd: Option<McpCmd>,
        /// Carry this stdio session to the REEF host's MCP socket instead (what a contained agent
        /// runs): opens no config and no store; the token comes from REEF_MCP_TOKEN.
        #[arg(long, value_name = "SOCKET")]
        connect: Option<std::path::PathBuf>,
    },
    /// What runs first inside a contained agent's sandbox: carries the sandbox's loopback ports
    /// to REEF's metered LLM endpoint and egress proxy, then runs the agent. Opens no config.
    #[command(hide = true)]
    Bridge {
        /// `--llm PORT=SOCKET [--proxy PORT=SOCKET] -- COMMAND…`
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<String>,
    },
    /// Answer a task's question to the operator; the task goes back to its agent.
    Answer {
        task: String,
        /// The answer (the agent reads it in the task's thread).
        answer: String,
    },
    /// Watch the store and print every change as it happens (from any process).
    Watch {
        /// Only changes to this collection (e.g. tasks, approvals).
        #[arg(long)]
        collection: Option<String>,
    },
}

#[derive(Subcommand)]
enum ServiceCmd {
    /// Write ~/.config/systemd/user/reef.service (and say how to start it).
    Install {
        #[arg(long, value_enum, default_value = "both")]
        role: cmd::serve::Role,
    },
    /// Remove the unit.
    Uninstall,
}

#[derive(Subcommand)]
enum McpCmd {
    /// Print a token that speaks for one agent on one task (audited; it expires).
    Token {
        task: String,
        /// The agent the calls are attributed to (default: the task's agent).
        #[arg(long)]
        agent: Option<String>,
        /// Hours until it expires.
        #[arg(long, default_value_t = 24)]
        hours: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    setup::init_tracing();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let json = cli.json;
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let (code, message) = setup::describe(&e);
            if json {
                println!("{}", serde_json::json!({"error": {"code": code, "message": message}}));
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let out = cmd::Out { json: cli.json };
    match cli.command {
        Command::Bench(b) => return cmd::bench::run(b, &out).await,
        Command::Config(c) => {
            let cfg = setup::load_config(cli.config.as_deref())?;
            return cmd::config::run(c, &cfg, &out);
        }
        // Before the factory opens: doctor examines the store as it is, and must answer even
        // where opening it the usual way would not.
        Command::Doctor { yes } => {
            let cfg = setup::load_config(cli.config.as_deref())?;
            return cmd::doctor::run(&cfg, yes, &out).await;
        }
        Command::Secret(c) => {
            let cfg = setup::load_config(cli.config.as_deref())?;
            let f = setup::open_factory(cli.config.as_deref()).await.map_err(|e| format!("{e:#}"));
            return cmd::secret::run(f, &cfg.operator, c, &out).await;
        }
        Command::Service { cmd } => {
            return match cmd {
                ServiceCmd::Install { role } => {
                    let cfg = setup::load_config(cli.config.as_deref())?;
                    let role = format!("{role:?}").to_lowercase();
                    cmd::service::install(&role, setup::config_path(cli.config.as_deref()).as_deref(), &cfg.data_dir, &out)
                }
                ServiceCmd::Uninstall => cmd::service::uninstall(&out),
            };
        }
        Command::Bridge { args } => {
            let code = reef_host::bridge::run(&args).await;
            std::process::exit(code);
        }
        Command::Executors => {
            let cfg = setup::load_config(cli.config.as_deref())?;
            return cmd::executors::run(&cfg, &out);
        }
        Command::Mcp { connect: Some(socket), .. } => {
            let token = std::env::var("REEF_MCP_TOKEN").unwrap_or_default();
            return reef_mcp::socket::connect(&socket, &token).await;
        }
        _ => {}
    }
    let f = setup::open_factory(cli.config.as_deref()).await?;
    match cli.command {
        Command::Status => cmd::status::run(&f, &out).await,
        Command::Rollback { product, reason } => cmd::delivery::rollback(&f, &out, &product, reason).await,
        Command::Deploys { product } => cmd::delivery::deploys(&f, &out, &product).await,
        Command::Pipeline(c) => cmd::pipeline::run(&f, c, &out).await,
        Command::Ack => {
            f.acknowledge_alerts(&f.operator()).await?;
            out.print(&serde_json::json!({"acknowledged": true}), || "alerts acknowledged: failures before now no longer count".into());
            Ok(())
        }
        Command::Audit { subject, action, limit } => cmd::events::audit(&f, subject, action, limit, &out).await,
        Command::Mcp { cmd: None, .. } => reef_mcp::stdio(&f).await,
        Command::Mcp { cmd: Some(McpCmd::Token { task, agent, hours }), .. } => cmd::mcp::issue(&f, &task, agent, hours, &out).await,
        Command::Answer { task, answer } => cmd::approval::answer(&f, &task, &answer, &out).await,
        Command::Task(t) => cmd::task::run(t, &f, &out).await,
        Command::Approve(a) => cmd::approval::decide(&f, reef_core::Decision::Approve, a, &out).await,
        Command::Reject(a) => cmd::approval::decide(&f, reef_core::Decision::Reject, a, &out).await,
        Command::Revise(a) => cmd::approval::decide(&f, reef_core::Decision::Revise, a, &out).await,
        Command::Approvals(a) => cmd::approval::list(&f, a, &out).await,
        Command::Backup { file } => cmd::backup::backup(&f, &file, &out).await,
        Command::Restore { file, force } => cmd::backup::restore(&f, &file, force, &out).await,
        Command::Demo => cmd::demo::run(&f, &out).await,
        Command::Watch { collection } => cmd::watch::run(&f, collection, &out).await,
        Command::Analytics { days } => cmd::analytics::run(&f, days, &out).await,
        Command::Memory(c) => cmd::knowledge::memory(&f, c, &out).await,
        Command::Revenue(c) => cmd::revenue::run(&f, c, &out).await,
        Command::Graph(c) => cmd::knowledge::graph(&f, c, &out).await,
        Command::Schedules => cmd::schedule::list(&f, &out).await,
        Command::Schedule(c) => cmd::schedule::run(&f, c, &out).await,
        Command::Events { kind, subject, text, limit } => cmd::events::run(&f, kind, subject, text, limit, &out).await,
        Command::Serve { role } => cmd::serve::run(&f, role, setup::config_path(cli.config.as_deref()).as_deref(), &out).await,
        Command::Pause { agent, reason } => {
            cmd::control::hold(&f, agent, Some(reef_core::factory::control::Hold::Pause), reason, &out).await
        }
        Command::Stop { agent, reason } => cmd::control::hold(&f, agent, Some(reef_core::factory::control::Hold::Stop), reason, &out).await,
        Command::Resume { agent } => cmd::control::hold(&f, agent, None, None, &out).await,
        Command::Reassign { task, agent } => cmd::control::reassign(&f, &task, &agent, &out).await,
        Command::Cancel { task, reason } => cmd::control::cancel(&f, &task, reason, &out).await,
        Command::Retry { task } => cmd::control::retry(&f, &task, &out).await,
        Command::Accept { task, note } => cmd::control::accept(&f, &task, note, &out).await,
        Command::Cap(c) => cmd::control::cap(&f, c, &out).await,
        Command::Agent(c) => cmd::agent::agent(&f, c, &out).await,
        Command::Webhooks { redeliver: Some(event), to: Some(sub), .. } => cmd::webhooks::redeliver(&f, &sub, &event, &out).await,
        Command::Webhooks { limit, .. } => cmd::webhooks::run(&f, limit, &out).await,
        Command::Policy(c) => cmd::agent::policy(&f, c, &out).await,
        Command::Bench(_)
        | Command::Bridge { .. }
        | Command::Executors
        | Command::Config(_)
        | Command::Doctor { .. }
        | Command::Secret(_)
        | Command::Service { .. } => {
            unreachable!("handled above")
        }
    }
}
