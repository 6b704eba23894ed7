//! The engine's long-running loops, started in one place for `reef serve` and the desktop app:
//! dispatcher, workers, the sockets contained agents reach REEF through (MCP, the metered LLM
//! endpoint and the egress proxy), hardware sampler,
//! webhook relay, Stripe pull and the HTTP server.
//!
//! Invariant: every host starts the same loops for the same config and role; a loop a host does
//! not run is in the plan with the reason, so `reef serve` and the window can say so.

use reef_core::engine::runtime::Engine;
use reef_core::engine::{dispatcher, relay, worker};
use reef_core::factory::Factory;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Which parts of the engine a process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Dispatcher and workers.
    Both,
    Dispatcher,
    Worker,
}

/// One of the engine's loops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Loop {
    Dispatcher,
    Workers,
    McpSocket,
    Meter,
    Sampler,
    WebhookRelay,
    StripePull,
    Http,
    Housekeeping,
    PullRequests,
}

impl Loop {
    pub fn label(self) -> &'static str {
        match self {
            Loop::Dispatcher => "dispatcher",
            Loop::Workers => "workers",
            Loop::McpSocket => "MCP socket for CLI agents",
            Loop::Meter => "metered LLM endpoint and egress proxy for CLI agents",
            Loop::Sampler => "hardware sampler",
            Loop::WebhookRelay => "webhook relay",
            Loop::StripePull => "Stripe pull",
            Loop::Http => "HTTP (Stripe webhook, approval links, /mcp)",
            Loop::Housekeeping => "housekeeping (retention)",
            Loop::PullRequests => "pull-request watcher (reviews, CI and merges on the forge)",
        }
    }
}

/// Whether a loop runs here, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Planned {
    #[serde(rename = "loop")]
    pub which: Loop,
    /// `None`: started. `Some(reason)`: not started here, and why.
    pub left_out: Option<String>,
}

/// Why a loop ended.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", which.label())]
pub struct LoopError {
    pub which: Loop,
    pub message: String,
}

/// How a host serves HTTP: `reef serve` passes its router; the app has none.
pub type HttpServer =
    Box<dyn FnOnce(Factory, SocketAddr, CancellationToken) -> futures::future::BoxFuture<'static, Result<(), String>> + Send>;

/// How a host serves MCP to the agents it starts (`reef_mcp::socket::run`; the MCP crate sits
/// above this one, so each host hands it in).
pub type McpSocketServer =
    Box<dyn FnOnce(Factory, crate::PrivateSocket, CancellationToken) -> futures::future::BoxFuture<'static, Result<(), String>> + Send>;

/// The started loops and what was left out.
pub struct Loops {
    pub plan: Vec<Planned>,
    pub tasks: JoinSet<Result<(), LoopError>>,
}

impl Loops {
    /// The loops not started here, each with its reason, for a status line.
    pub fn left_out(&self) -> impl Iterator<Item = (Loop, &str)> {
        self.plan.iter().filter_map(|p| p.left_out.as_deref().map(|r| (p.which, r)))
    }
}

/// What each loop needs to be started, from config and role: `None` to start it, or why not.
pub fn plan(f: &Factory, role: Role, http: bool) -> Vec<Planned> {
    let working = matches!(role, Role::Both | Role::Worker);
    let c = &f.config;
    let remote = c.remote.then(|| "remote mode: the server runs it".to_string());
    let dispatching = matches!(role, Role::Both | Role::Dispatcher);
    let p = |which, left_out: Option<String>| Planned { which, left_out };
    vec![
        p(Loop::Dispatcher, (!dispatching).then(|| "role worker: another process dispatches".into())),
        p(Loop::Workers, (!working).then(|| "role dispatcher: workers run elsewhere".into())),
        p(
            Loop::McpSocket,
            if !working {
                Some("role dispatcher: agents run elsewhere".into())
            } else if c.executors.is_empty() {
                Some("no [[executors]]: no CLI agents to serve".into())
            } else {
                None
            },
        ),
        p(
            Loop::Meter,
            if !working {
                Some("role dispatcher: agents run elsewhere".into())
            } else if c.executors.is_empty() {
                Some("no [[executors]]: no CLI agents to meter".into())
            } else if c.sandbox.mode == reef_core::config::SandboxMode::Off {
                Some("[sandbox] mode = \"off\": unsandboxed agents reach the network themselves".into())
            } else {
                None
            },
        ),
        p(Loop::Sampler, remote.clone()),
        p(
            Loop::WebhookRelay,
            if c.webhooks.is_empty() {
                Some("no [[webhooks]] in the config".into())
            } else if !dispatching {
                Some("role worker: the dispatching process delivers webhooks".into())
            } else {
                remote.clone()
            },
        ),
        p(
            Loop::StripePull,
            match (&c.stripe.api_key, c.stripe.pull_every) {
                (None, _) => Some("no REEF_STRIPE_API_KEY".into()),
                (_, None) => Some("stripe.pull_every is not set".into()),
                _ => remote.clone(),
            },
        ),
        p(
            Loop::Http,
            match (c.listen, http) {
                (None, _) => Some("serve.listen is not set".into()),
                (Some(a), false) => Some(format!(
                    "this host serves no HTTP; run `reef serve` (listening on {a}) for Stripe webhooks, approval links and /mcp over HTTP"
                )),
                _ => None,
            },
        ),
        p(
            Loop::PullRequests,
            // Pipelines are edited in the window too: with a token, it runs (and idles while no
            // product has a forge).
            if c.forge_token.is_none() {
                Some("no REEF_GITHUB_TOKEN".into())
            } else if !dispatching {
                Some("role worker: the dispatching process watches pull requests".into())
            } else {
                remote.clone()
            },
        ),
        p(Loop::Housekeeping, remote),
    ]
}

/// Starts every loop `plan` allows, each cancelled by `shutdown`.
pub fn spawn(
    f: &Factory,
    engine: Arc<Engine>,
    role: Role,
    http: Option<HttpServer>,
    mcp: McpSocketServer,
    host: String,
    shutdown: CancellationToken,
) -> Loops {
    let plan = plan(f, role, http.is_some());
    let mut tasks = JoinSet::new();
    // The sockets agents reach REEF through are listening before any worker starts an agent.
    let planned = |which| plan.iter().any(|p| p.which == which && p.left_out.is_none());
    let mut mcp_socket = engine.mcp_socket.as_deref().filter(|_| planned(Loop::McpSocket)).map(crate::bind_private);
    let mut meter_sockets = engine
        .meter
        .as_ref()
        .filter(|_| planned(Loop::Meter))
        .map(|m| crate::bind_private(&m.llm_socket).and_then(|l| Ok((l, crate::bind_private(&m.egress_socket)?))));
    let mut http = http;
    let mut mcp = Some(mcp);
    for p in plan.iter().filter(|p| p.left_out.is_none()) {
        let (f, s) = (f.clone(), shutdown.clone());
        let which = p.which;
        let fail = move |e: &dyn std::fmt::Display| LoopError { which, message: e.to_string() };
        match which {
            Loop::Dispatcher => {
                let e = engine.clone();
                tasks.spawn(async move { dispatcher::run(e, s).await.map_err(|e| fail(&e)) });
            }
            Loop::Workers => {
                let e = engine.clone();
                tasks.spawn(async move { worker::run(e, s).await.map_err(|e| fail(&e)) });
            }
            Loop::McpSocket => {
                let (Some(serve), Some(sock)) = (mcp.take(), mcp_socket.take()) else { continue };
                tasks.spawn(async move { serve(f, sock.map_err(|e| fail(&e))?, s).await.map_err(|e| fail(&e)) });
            }
            Loop::Meter => {
                let (Some(m), Some(socks)) = (engine.meter.clone(), meter_sockets.take()) else { continue };
                let (gateway, key) = (f.config.llm_base_url.clone(), f.config.llm_api_key.clone());
                tasks.spawn(async move {
                    let (llm, egress) = socks.map_err(|e| fail(&e))?;
                    let endpoint = crate::meter::run(m.meter.clone(), gateway, key, llm, s.clone());
                    let proxy = crate::egress::run(f, m.meter, egress, s);
                    tokio::try_join!(endpoint, proxy).map(|_| ()).map_err(|e| fail(&e))
                });
            }
            Loop::Sampler => {
                let (host, every) = (host.clone(), f.config.engine.telemetry_every);
                tasks.spawn(async move { reef_core::sampler::run(f, host, every, s).await.map_err(|e| fail(&e)) });
            }
            Loop::WebhookRelay => {
                let subs = Arc::new(f.config.webhooks.clone());
                let me = format!("{}:webhooks", engine.id);
                let links = reef_core::links::maker(&f);
                tasks.spawn(async move { relay::run(f, subs, me, links, s).await.map_err(|e| fail(&e)) });
            }
            Loop::StripePull => {
                let (Some(key), Some(every)) = (f.config.stripe.api_key.clone(), f.config.stripe.pull_every) else { continue };
                let pull = reef_core::stripe::StripePull {
                    ports: f.ports.clone(),
                    api_base: f.config.stripe.api_base.clone(),
                    api_key: key,
                    http: reqwest::Client::new(),
                };
                tasks.spawn(async move { pull.run(every, s).await.map_err(|e| fail(&e)) });
            }
            Loop::Http => {
                let (Some(serve), Some(addr)) = (http.take(), f.config.listen) else { continue };
                tasks.spawn(async move { serve(f, addr, s).await.map_err(|e| fail(&e)) });
            }
            Loop::PullRequests => {
                let me = format!("{}:forge", engine.id);
                tasks.spawn(async move { reef_core::engine::delivery::pulls::run(f, me, s).await.map_err(|e| fail(&e)) });
            }
            Loop::Housekeeping => {
                // The work dir is swept only where this host starts agents (its own files).
                let work = matches!(role, Role::Both | Role::Worker).then(|| f.config.sandbox.work_dir.clone());
                tasks.spawn(async move { reef_core::engine::housekeeping::run(f, work, s).await.map_err(|e| fail(&e)) });
            }
        }
    }
    Loops { plan, tasks }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn left_out(plan: &[Planned], which: Loop) -> Option<String> {
        plan.iter().find(|p| p.which == which).unwrap().left_out.clone()
    }

    #[tokio::test]
    async fn the_plan_says_which_loop_is_left_out_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let toml = "[serve]\nlisten = \"127.0.0.1:0\"\n";
        let d = reef_core::config::Defaults {
            data_dir: dir.path().into(),
            machine_timezone: Some("UTC".into()),
            host: "test".into(),
            cache_dir: dir.path().into(),
        };
        let cfg = reef_core::config::Config::resolve(Some(toml), &|_| None, &d).unwrap();
        let ports = reef_store::sqlite::SqliteStore::open(&dir.path().join("reef.db")).unwrap().ports();
        let f = Factory::new(ports, Arc::new(reef_core::SystemClock), Arc::new(cfg));

        let serve = plan(&f, Role::Both, true);
        assert_eq!(left_out(&serve, Loop::Dispatcher), None);
        assert_eq!(left_out(&serve, Loop::Workers), None);
        assert!(left_out(&serve, Loop::McpSocket).unwrap().contains("no [[executors]]"), "no CLI agents, no socket");
        assert!(left_out(&serve, Loop::Meter).unwrap().contains("no [[executors]]"), "no CLI agents, nothing to meter");
        assert_eq!(left_out(&serve, Loop::Sampler), None);
        assert_eq!(left_out(&serve, Loop::Http), None, "reef serve with a listen address serves HTTP");
        assert_eq!(left_out(&serve, Loop::StripePull).as_deref(), Some("no REEF_STRIPE_API_KEY"));
        assert!(left_out(&serve, Loop::WebhookRelay).unwrap().contains("no [[webhooks]]"));

        let app = plan(&f, Role::Both, false);
        assert!(left_out(&app, Loop::Http).unwrap().contains("run `reef serve`"), "the app says why it serves no HTTP");

        let worker = plan(&f, Role::Worker, true);
        assert!(left_out(&worker, Loop::Dispatcher).unwrap().contains("role worker"));
        assert_eq!(left_out(&worker, Loop::Workers), None);
    }
}
