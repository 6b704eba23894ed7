//! The CLI executor: a supervised child process (Claude Code, Codex, a test command) in the
//! task's own directory, its own process group, a scrubbed environment, a time limit and — unless
//! the operator turned it off — a bubblewrap sandbox (`sandbox`).
//!
//! Invariants: a child never outlives its attempt (killed as a group on timeout, cancel or
//! shutdown, and reaped from its pidfile if REEF itself was killed); output kept per attempt is
//! capped; the child sees only allow-listed environment variables; it reaches REEF's tools only
//! through its task token on the host's MCP socket, never through the store's address.

use super::agent_files::{inside, private_dir, product_secrets, reported, session_of, write_private};
pub use super::agent_files::{McpLaunch, MeterLaunch};
use super::budget::Budget;
use super::children::{proc_start_time, CappedOutput};
use super::cli_spend::Ended;
use super::exec::*;
use super::sandbox::{self, Binds, Containment};
use crate::config::ExecutorConfig;
use crate::*;
use async_trait::async_trait;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

/// Variables every child gets (when REEF has them); everything else must be listed in `pass_env`.
const BASE_ENV: [&str; 5] = ["PATH", "HOME", "LANG", "LC_ALL", "TERM"];
/// Progress lines forwarded per second at most; the rest are kept in the output but not streamed.
const PROGRESS_PER_SEC: u32 = 20;
/// How long the agent's output may stay open once its process group is gone.
const PIPE_GRACE: Duration = Duration::from_secs(5);
/// The longest single command-line argument Linux passes (MAX_ARG_STRLEN, 128 KiB), less a margin.
const MAX_ARG_BYTES: usize = 120 * 1024;
/// The variables agent CLIs read their LLM key from; a metered run's hold its credential.
const METERED_KEYS: [&str; 6] =
    ["REEF_LLM_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_AUTH_TOKEN", "GEMINI_API_KEY", "GOOGLE_API_KEY"];
/// What a run of an executor without `soft_cap_usd` holds against its caps while it lives.
pub const DEFAULT_CLI_RESERVE: Usd = Usd(1_000_000);

pub struct CliExecutor {
    pub cfg: ExecutorConfig,
    budget: Option<Budget>,
    children_dir: PathBuf,
    containment: Arc<Containment>,
    pub(crate) mcp: Option<McpLaunch>,
    meter: Option<MeterLaunch>,
}

fn tools_for(map: &std::collections::BTreeMap<String, Vec<String>>, class: Option<&str>) -> Vec<String> {
    class.and_then(|c| map.get(c)).or_else(|| map.get("default")).cloned().unwrap_or_default()
}

impl CliExecutor {
    pub fn new(cfg: ExecutorConfig, budget: Option<Budget>, children_dir: PathBuf, containment: Arc<Containment>) -> Self {
        Self { cfg, budget, children_dir, containment, mcp: None, meter: None }
    }

    /// Whether this executor's agents run in a sandbox (as far as config and machine allow).
    fn contained(&self) -> bool {
        matches!(self.containment.bwrap(), Ok(Some(_)))
    }

    /// The prompt and where its file goes on the host (written only when the command names it).
    fn prompt_text(&self, job: &Job) -> String {
        format!("{}\n\n{}", job.agent.prompt, job.prompt())
    }
    fn prompt_path(&self, job: &Job) -> PathBuf {
        self.children_dir.with_file_name("prompts").join(format!("{}-{}.md", sandbox::dir_name(&job.task.id), job.attempt))
    }
    fn wants_prompt_file(&self) -> bool {
        self.cfg.command.iter().any(|a| a.contains("{prompt_file}"))
    }
    /// The prompt file's path as the agent sees it.
    fn prompt_file_seen(&self, job: &Job) -> PathBuf {
        if self.contained() {
            inside("prompt.md")
        } else {
            self.prompt_path(job)
        }
    }

    /// The MCP config's path as the agent sees it.
    fn mcp_config_seen(&self, job: &Job) -> Option<PathBuf> {
        let m = self.mcp.as_ref()?;
        Some(if self.contained() { inside("mcp.json") } else { m.config_path(job) })
    }

    /// `argv` run inside the sandbox: the fixed system binds, the task's directory and the
    /// executor's home writable, the executor's own command files and listed paths readable,
    /// REEF's socket and this attempt's MCP config at `/run/reef`.
    fn contain(&self, job: &Job, argv: Vec<String>, metered: bool) -> Result<Vec<String>, ExecError> {
        let refuse = |e: &dyn std::fmt::Display| ExecError::NotRunnable(format!("executor {:?}: {e}", self.cfg.name));
        let Some(bwrap) = self.containment.bwrap().map_err(|e| refuse(&e))? else { return Ok(argv) };
        let home = self.containment.home(&self.cfg.name, &job.task.id);
        private_dir(&home).map_err(|e| refuse(&format!("cannot create its home {}: {e}", home.display())))?;
        let mut binds = Binds { writable: self.cfg.writable.clone(), read_only: self.cfg.read_only.clone(), placed: vec![] };
        binds.writable.push(home);
        binds.read_only.extend(sandbox::command_paths(&self.cfg.command, std::env::var("PATH").ok().as_deref()));
        super::workspace::git_binds(&job.task, &job.workdir, &mut binds);
        if let Some(m) = &self.mcp {
            // The binary alone, at /run/reef/reef: no path of the operator's appears inside.
            binds.placed.push((m.command.clone(), inside("reef")));
            if m.socket.exists() {
                binds.placed.push((m.socket.clone(), inside("mcp.sock")));
            } else {
                tracing::warn!(socket = %m.socket.display(), "REEF's MCP socket is not up: the agent starts without REEF's tools");
            }
            binds.placed.push((m.config_path(job), inside("mcp.json")));
        }
        if self.wants_prompt_file() {
            binds.placed.push((self.prompt_path(job), inside("prompt.md")));
        }
        let network = self.cfg.network.unwrap_or(self.containment.network);
        let argv = match (&self.meter, metered) {
            (Some(m), true) => {
                // `reef bridge` starts first: it listens on the sandbox's own loopback and carries
                // each connection to REEF's sockets, then runs the agent with the URLs set.
                binds.placed.push((m.llm_socket.clone(), inside("llm.sock")));
                let llm_port = if network == sandbox::Network::None { super::meter::INSIDE_LLM_PORT } else { 0 };
                let mut wrapped = vec![inside("reef").display().to_string(), "bridge".into(), "--llm".into()];
                wrapped.push(format!("{llm_port}={}", inside("llm.sock").display()));
                if network == sandbox::Network::None {
                    binds.placed.push((m.egress_socket.clone(), inside("egress.sock")));
                    wrapped.push("--proxy".into());
                    wrapped.push(format!("{}={}", super::meter::INSIDE_PROXY_PORT, inside("egress.sock").display()));
                }
                wrapped.push("--".into());
                wrapped.extend(argv);
                wrapped
            }
            _ => argv,
        };
        sandbox::wrap(bwrap, &argv, &job.workdir, &binds, network, &self.containment.data_dir).map_err(|e| refuse(&e))
    }

    /// Sends the LLM calls (and other network) of the agents this executor contains through
    /// REEF's metered endpoint and egress proxy, on a credential for each run.
    pub fn with_meter(mut self, meter: MeterLaunch) -> Self {
        self.meter = Some(meter);
        self
    }

    /// Gives the agents this executor starts REEF's MCP server, scoped to their task.
    pub fn with_mcp(mut self, mcp: McpLaunch) -> Self {
        self.mcp = Some(mcp);
        self
    }

    /// The command line for a job, placeholders filled in.
    pub fn argv(&self, job: &Job) -> Vec<String> {
        let class = job.task.action_class.as_deref();
        let allowed = tools_for(&self.cfg.allowed_tools, class).join(",");
        let disallowed = tools_for(&self.cfg.disallowed_tools, class).join(",");
        let prompt = self.prompt_text(job);
        let prompt_file = self.prompt_file_seen(job).display().to_string();
        let budget = self.cfg.soft_cap.map(|c| format!("{:.2}", c.dollars())).unwrap_or_default();
        let mcp_config = self.mcp_config_seen(job).map(|p| p.display().to_string()).unwrap_or_default();
        let model = self.model_for(job);
        self.cfg
            .command
            .iter()
            .map(|a| {
                a.replace("{model}", &model)
                    .replace("{prompt_file}", &prompt_file)
                    .replace("{prompt}", &prompt)
                    .replace("{task_id}", &job.task.id)
                    .replace("{workdir}", &job.workdir.display().to_string())
                    .replace("{budget_usd}", &budget)
                    .replace("{allowed_tools}", &allowed)
                    .replace("{disallowed_tools}", &disallowed)
                    .replace("{mcp_config}", &mcp_config)
            })
            .collect()
    }

    /// The model name of the job's tier (the agent's own model first), as the gateway knows it.
    fn model_for(&self, job: &Job) -> String {
        match &self.budget {
            Some(b) => job.model(&b.factory.config.llm_models),
            None => job.model(&Default::default()),
        }
    }

    /// `argv`, plus the resume arguments when a previous session of this task is known.
    pub fn argv_resuming(&self, job: &Job, session: Option<&str>) -> Vec<String> {
        let mut v = self.argv(job);
        if let Some(sid) = session {
            v.extend(self.cfg.resume_args.iter().map(|a| a.replace("{session_id}", sid)));
        }
        v
    }

    /// The task's directory (a worktree of its repository, when it has one) and its branch.
    fn prepare_workdir(&self, job: &Job) -> Result<Option<String>, ExecError> {
        super::workspace::prepare(&job.task, &job.workdir).map_err(ExecError::NotRunnable)
    }

    fn env(&self, job: &Job, products: &[String], credential: Option<&crate::secret::Secret>) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = BASE_ENV
            .iter()
            .map(|s| s.to_string())
            .chain(self.cfg.pass_env.iter().cloned())
            .filter_map(|k| std::env::var(&k).ok().map(|v| (k, v)))
            .collect();
        // Secrets of the task's own product only: REEF_SECRET_<PRODUCT>_<NAME> (environment) or
        // REEF_PRODUCT_<PRODUCT>_<NAME> (kept with `reef secret set --product`) becomes <NAME>.
        if let Some(p) = &job.task.product {
            let kept = self.budget.as_ref().map(|b| b.factory.config.product_secrets.clone()).unwrap_or_default();
            let vars = std::env::vars().chain(kept.into_iter().map(|(k, v)| (k, v.expose().to_string())));
            env.extend(product_secrets(vars, p, products));
        }
        // The executor's own variables (its preset's and the operator's), never over REEF's.
        let model = self.model_for(job);
        for (k, v) in &self.cfg.env {
            if !k.starts_with("REEF_") && !METERED_KEYS.contains(&k.as_str()) && !BASE_ENV.contains(&k.as_str()) {
                env.retain(|(n, _)| n != k);
                env.push((k.clone(), v.replace("{model}", &model)));
            }
        }
        env.push(("REEF_TASK_ID".into(), job.task.id.clone()));
        env.push(("REEF_ATTEMPT".into(), job.attempt.to_string()));
        env.push(("REEF_IDEMPOTENCY_KEY".into(), job.idempotency_key.clone()));
        env.push(("REEF_AGENT".into(), job.agent.name.clone()));
        if let Some(p) = self.mcp_config_seen(job) {
            env.push(("REEF_MCP_CONFIG".into(), p.display().to_string()));
        }
        if let Some(c) = credential {
            // No gateway or provider key reaches a metered agent: the run's credential stands in
            // for each (the bridge points the matching base URLs at REEF's endpoint).
            env.retain(|(k, _)| !METERED_KEYS.contains(&k.as_str()));
            env.extend(METERED_KEYS.iter().map(|k| (k.to_string(), c.expose().to_string())));
        }
        if self.contained() {
            // Its own home: the CLI's config and caches stay out of REEF's user's home.
            env.retain(|(k, _)| k != "HOME");
            env.push(("HOME".into(), self.containment.home(&self.cfg.name, &job.task.id).display().to_string()));
        }
        env
    }
}

#[async_trait]
impl Executor for CliExecutor {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    async fn run(&self, job: &Job, progress: ProgressTx, cancel: CancellationToken) -> Result<ExecSuccess, ExecError> {
        let session_key = crate::settings::Key::AgentSession(&job.task.id).id();
        let session = match &self.budget {
            Some(b) => b.factory.ports.settings.get(&session_key).await.ok().flatten().and_then(|v| v.as_str().map(String::from)),
            None => None,
        };
        let argv = self.argv_resuming(job, session.as_deref());
        // Every run holds budget in the task's, the agent's and the factory's scopes while it
        // lives (its soft cap, else the default — no more than a smaller task budget), so what
        // it spends lands in the daily caps.
        let amount = self.cfg.soft_cap.unwrap_or_else(|| job.task.budget_usd.map_or(DEFAULT_CLI_RESERVE, |b| b.min(DEFAULT_CLI_RESERVE)));
        let hold = match &self.budget {
            Some(b) => Some(b.reserve(&job.agent.name, Some(&job.task), None, amount).await.map_err(ExecError::from_reserve)?),
            None => None,
        };
        let release = |h: Option<super::budget::Hold>| async {
            if let (Some(b), Some(h)) = (&self.budget, h) {
                let _ = b.release(&h).await;
            }
        };
        let branch = match self.prepare_workdir(job) {
            Ok(b) => b,
            Err(e) => {
                release(hold).await;
                return Err(e);
            }
        };
        // A token for this attempt only: the agent's MCP calls act on its task and nothing else.
        let mcp_token = match (&self.budget, &self.mcp) {
            (Some(b), Some(m)) => {
                let ttl = self.cfg.timeout + Duration::from_secs(600);
                let issued = match crate::toolbox::issue_token(&b.factory, &job.task.id, &job.agent.name, ttl).await {
                    Ok(t) => m
                        .write(job, &t, self.contained())
                        .map(|_| t)
                        .map_err(|e| format!("cannot write the agent's MCP config in {}: {e}", m.dir.display())),
                    Err(e) => Err(format!("cannot issue the agent's MCP token: {e}")),
                };
                match issued {
                    Ok(t) => Some(t),
                    Err(msg) => {
                        release(hold).await;
                        return Err(ExecError::NotRunnable(msg));
                    }
                }
            }
            _ => None,
        };
        let forget_token = || async {
            if let (Some(b), Some(m), Some(t)) = (&self.budget, &self.mcp, &mcp_token) {
                let _ = crate::toolbox::revoke_token(&b.factory, t).await;
                let _ = std::fs::remove_file(m.config_path(job));
            }
        };
        // A contained run's LLM calls are metered against its hold, on a credential for this run.
        let pass = match (&self.meter, &hold) {
            (Some(m), Some(h)) if self.contained() && self.mcp.is_some() => {
                Some(m.meter.open(job, &self.cfg.name, h.reservation.amount, self.cfg.egress.clone()))
            }
            _ => None,
        };
        // Every product's name: a secret of product "a-b" must not reach an agent of product "a".
        let products: Vec<String> = match &self.budget {
            Some(b) => b.factory.ports.revenue.products().await.map(|l| l.items.into_iter().map(|p| p.id).collect()).unwrap_or_default(),
            None => vec![],
        };
        // The agent's own program, for messages (argv[0] becomes bwrap when contained).
        let program = argv[0].clone();
        if let Some(long) = argv.iter().map(String::len).max().filter(|n| *n > MAX_ARG_BYTES) {
            release(hold).await;
            forget_token().await;
            return Err(ExecError::NotRunnable(format!(
                "executor {:?}: an argument of {long} bytes (the prompt) is too long for a command line; set prompt_on_stdin = true or pass {{prompt_file}} instead of {{prompt}}",
                self.cfg.name
            )));
        }
        let prompt_file = self.wants_prompt_file().then(|| self.prompt_path(job));
        if let Some(p) = &prompt_file {
            if let Err(e) = write_private(p, self.prompt_text(job).as_bytes()) {
                release(hold).await;
                forget_token().await;
                return Err(ExecError::NotRunnable(format!("cannot write the prompt file {}: {e}", p.display())));
            }
        }
        let missing = || {
            ExecError::NotRunnable(format!(
                "executor {:?}: command {:?} not found (install it or fix executors.command in the config)",
                self.cfg.name, program
            ))
        };
        let on_path = |p: &str| std::env::var_os("PATH").is_some_and(|pv| std::env::split_paths(&pv).any(|d| d.join(p).is_file()));
        if self.contained() && !(if program.contains('/') { Path::new(&program).exists() } else { on_path(&program) }) {
            release(hold).await;
            forget_token().await;
            return Err(missing());
        }
        let argv = match self.contain(job, argv, pass.is_some()) {
            Ok(a) => a,
            Err(e) => {
                release(hold).await;
                forget_token().await;
                return Err(e);
            }
        };
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .current_dir(&job.workdir)
            .env_clear()
            .envs(self.env(job, &products, pass.as_ref().map(|p| &p.credential)))
            .process_group(0)
            .stdin(if self.cfg.prompt_on_stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                release(hold).await;
                forget_token().await;
                return Err(if e.kind() == std::io::ErrorKind::NotFound {
                    missing()
                } else {
                    ExecError::NotRunnable(format!("executor {:?}: cannot start {:?}: {e}", self.cfg.name, argv[0]))
                });
            }
        };
        if let Some(mut stdin) = child.stdin.take() {
            // Written beside the run, so an agent that reads slowly never blocks REEF.
            let text = self.prompt_text(job);
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let _ = stdin.write_all(text.as_bytes()).await;
            });
        }
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        let pidfile = self.children_dir.join(format!("{pid}.json"));
        let _ = std::fs::create_dir_all(&self.children_dir);
        let _ =
            std::fs::write(&pidfile, serde_json::json!({"pid": pid, "start_time": proc_start_time(pid), "task": job.task.id}).to_string());

        let cap = self.cfg.output_cap_bytes;
        let redactor = self.budget.as_ref().map(|b| b.factory.redactor.clone());
        // Reading stops when this is cancelled: a process that escaped the kill (a sandbox's init
        // outliving its parent) must not hold the pipe, and REEF with it, open for ever.
        let drained = CancellationToken::new();
        let pump = |stream: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>,
                    progress: Option<ProgressTx>,
                    redactor: Option<Arc<crate::secret::Redactor>>,
                    drained: CancellationToken| async move {
            let mut kept = CappedOutput::new(cap);
            let Some(s) = stream else { return kept };
            let mut r = BufReader::new(s);
            let mut line = Vec::with_capacity(256);
            let (mut window, mut sent) = (Instant::now(), 0u32);
            loop {
                line.clear();
                let read = tokio::select! {
                    r = r.read_until(b'\n', &mut line) => r,
                    _ = drained.cancelled() => break,
                };
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        kept.push(&line);
                        if let Some(p) = &progress {
                            if window.elapsed() >= Duration::from_secs(1) {
                                window = Instant::now();
                                sent = 0;
                            }
                            if sent < PROGRESS_PER_SEC {
                                sent += 1;
                                // Redacted before it is cut, so a secret across the cut cannot leak its head.
                                let whole = String::from_utf8_lossy(&line);
                                let whole = match &redactor {
                                    Some(r) => r.redact(&whole),
                                    None => whole.into_owned(),
                                };
                                let text: String = whole.chars().take(500).collect();
                                let _ = p.try_send(text.trim_end().to_string());
                            }
                        }
                    }
                }
            }
            kept
        };
        let out_task = tokio::spawn(pump(child.stdout.take().map(|s| Box::new(s) as _), Some(progress), redactor.clone(), drained.clone()));
        let err_task = tokio::spawn(pump(child.stderr.take().map(|s| Box::new(s) as _), None, None, drained.clone()));

        let started = Instant::now();
        enum End {
            Exited(std::io::Result<std::process::ExitStatus>),
            Timeout,
            Cancelled,
            /// Its reservation lapsed and could not be renewed: it would spend unheld.
            HoldLost(String),
            /// Its metered spend reached its reservation.
            Spent,
        }
        let spent_all = pass.as_ref().map(|p| p.run.stopped()).unwrap_or_default();
        let deadline = tokio::time::sleep(self.cfg.timeout);
        tokio::pin!(deadline);
        // The hold is renewed well within its lifetime for as long as the run lives.
        let renew_every = self.budget.as_ref().map(|b| b.factory.config.engine.reservation_ttl / 3).unwrap_or(Duration::from_secs(3600));
        let end = loop {
            tokio::select! {
                s = child.wait() => break End::Exited(s),
                _ = &mut deadline => break End::Timeout,
                _ = cancel.cancelled() => break End::Cancelled,
                _ = spent_all.cancelled(), if pass.is_some() => break End::Spent,
                _ = tokio::time::sleep(renew_every), if hold.is_some() => {
                    if let (Some(b), Some(h)) = (&self.budget, &hold) {
                        match b.extend(h).await {
                            Ok(()) => {}
                            Err(e @ StoreError::Conflict(_)) => break End::HoldLost(e.to_string()),
                            Err(e) => tracing::warn!(task = %job.task.id, error = %e, "could not renew the run's budget hold"),
                        }
                    }
                }
            }
        };
        if !matches!(end, End::Exited(_)) {
            // A sandbox's own init (bwrap's child, pid 1 of its namespace, in a session of its
            // own) can outlive bwrap; found now, while bwrap is its parent, and killed by its host
            // pid below, which takes the whole namespace with it.
            let inits = if self.contained() { super::children::children_of(pid) } else { vec![] };
            // The whole group: an agent's own children (a dev server, a test runner) go too.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
            if tokio::time::timeout(Duration::from_secs(3), child.wait()).await.is_err() {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                let _ = child.wait().await;
            }
            for i in inits {
                let _ = nix::sys::signal::kill(Pid::from_raw(i), Signal::SIGKILL);
            }
        } else {
            // The leader exited; anything it left running in its group goes with it.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = std::fs::remove_file(&pidfile);
        forget_token().await;
        if let Some(p) = &prompt_file {
            let _ = std::fs::remove_file(p);
        }
        let pumps = async { (out_task.await, err_task.await) };
        tokio::pin!(pumps);
        let (out, err) = match tokio::time::timeout(PIPE_GRACE, &mut pumps).await {
            Ok(x) => x,
            Err(_) => {
                tracing::warn!(task = %job.task.id, "a process of the agent's still holds its output open after the kill; reading stopped");
                drained.cancel();
                pumps.await
            }
        };
        let stdout = out.map(|k| k.text()).unwrap_or_default();
        let stderr = err.map(|k| k.text()).unwrap_or_default();

        let (reported_cost, result, mut work_products) = reported(&stdout);
        if work_products.branch.is_none() {
            work_products.branch = branch;
        }
        // Remember the agent's session so a retry can resume it (Claude Code reports `session_id`).
        if let (Some(b), Some(sid)) = (&self.budget, session_of(&stdout)) {
            let _ = b.factory.ports.settings.put(&session_key, serde_json::json!(sid)).await;
        }
        let sealed = self.cfg.network.unwrap_or(self.containment.network) == sandbox::Network::None;
        let ended =
            Ended { executor: &self.cfg.name, soft_cap: self.cfg.soft_cap, sealed, reported: reported_cost, elapsed: started.elapsed() };
        let (spent, cost) = match &self.budget {
            Some(b) => ended.settle(b, job, hold.as_ref(), pass).await,
            None => (Usd::ZERO, reported_cost.unwrap_or_default()),
        };
        match end {
            End::Timeout => Err(ExecError::Timeout(started.elapsed().as_secs())),
            End::Cancelled => Err(ExecError::Cancelled),
            End::HoldLost(why) => Err(ExecError::Failed(format!("stopped: its budget hold lapsed ({why})"))),
            End::Spent => {
                let limit = hold.as_ref().map(|h| h.reservation.amount).unwrap_or_default();
                Err(ExecError::BudgetRefused {
                    scope: format!("task:{}", job.task.id),
                    requested: limit,
                    message: format!(
                        "stopped: its LLM calls, metered by REEF, reached the run's reservation of {limit} (spent {spent}; executor {:?}'s soft_cap_usd or the task's budget sets it)",
                        self.cfg.name
                    ),
                })
            }
            End::Exited(Err(e)) => Err(ExecError::Failed(format!("waiting for the agent: {e}"))),
            End::Exited(Ok(status)) if !status.success() => {
                let last: String = stderr.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
                Err(ExecError::Failed(format!("{program} exited with {status}: {last}")))
            }
            End::Exited(Ok(_)) => {
                let output = result.unwrap_or(stdout);
                if output.trim().is_empty() && work_products.is_empty() {
                    return Err(ExecError::Empty);
                }
                Ok(ExecSuccess { output, work_products, cost })
            }
        }
    }
}

#[cfg(test)]
#[path = "cli_agent_tests.rs"]
mod argv_tests;
