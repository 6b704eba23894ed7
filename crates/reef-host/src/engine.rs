//! The engine as every host runs it: its shared parts built from config (prices, budget,
//! executors, how CLI agents reach `reef mcp`), for `reef serve` and the desktop app alike.

use crate::setup::{embedder, host_name, litellm_config_path, HostError};
use reef_core::config::Config;
use reef_core::factory::Factory;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The engine (dispatcher + workers' shared parts) for `f`, as `reef serve` and the app run it.
pub fn build_engine(f: &Factory, config_file: Option<&Path>) -> Result<Arc<reef_core::engine::runtime::Engine>, HostError> {
    use reef_core::engine::{budget::Budget, cli_agent::CliExecutor, llm::LlmExecutor, runtime::Engine, sandbox::Containment};
    use reef_core::rules::pricing::PriceBook;
    let path = litellm_config_path(&f.config, config_file)?;
    let text = std::fs::read_to_string(&path).map_err(|e| HostError::Config(format!("reading {}: {e}", path.display())))?;
    let prices = PriceBook::from_litellm_yaml(&text).map_err(|e| HostError::Config(format!("{}: {e}", path.display())))?;
    let budget = Budget { factory: f.clone(), prices: Arc::new(prices) };
    let embedder = embedder(&f.config)?;
    let data_dir = f.config.data_dir.clone();
    let containment = Arc::new(Containment::detect(&f.config.sandbox, &data_dir));
    let reach = reef_core::engine::workspace::Reach { containment: containment.clone(), children_dir: data_dir.join("children") };
    let llm = Arc::new(
        LlmExecutor::new(
            &f.config.llm_base_url,
            f.config.llm_api_key.clone(),
            budget.clone(),
            f.config.engine.llm_max_tokens,
            std::time::Duration::from_secs(600),
        )
        .with_memory(Some(reef_core::memory::MemoryIndex::new(f.ports.clone(), embedder.clone())))
        .with_workspace(reach),
    );
    let mcp = mcp_launch(&f.config);
    // One endpoint and one proxy per process, beside its MCP socket.
    let run_dir = f.config.data_dir.join("run");
    let meter = reef_core::engine::cli_agent::MeterLaunch {
        meter: reef_core::engine::meter::Meter::new(budget.clone(), f.config.engine.llm_max_tokens),
        llm_socket: run_dir.join(format!("llm-{}.sock", std::process::id())),
        egress_socket: run_dir.join(format!("egress-{}.sock", std::process::id())),
    };
    let cli: Vec<_> = f
        .config
        .executors
        .iter()
        .map(|x| {
            Arc::new(
                CliExecutor::new(x.clone(), Some(budget.clone()), data_dir.join("children"), containment.clone())
                    .with_mcp(mcp.clone())
                    .with_meter(meter.clone()),
            )
        })
        .collect();
    let mcp_socket = (!cli.is_empty()).then(|| mcp.socket.clone());
    let meter = (!cli.is_empty()).then_some(meter);
    let id = format!("{}:{}:{}", host_name(), std::process::id(), &reef_core::new_id()[24..]);
    let embedder = Some(embedder);
    Ok(Arc::new(Engine { factory: f.clone(), budget, llm, cli, id, data_dir, containment, mcp_socket, meter, embedder }))
}

/// How CLI agents reach REEF's MCP tools: `reef mcp --connect` — the `reef` binary (configured,
/// else the one beside this program, else this program itself: `reef-app mcp --connect` does the
/// same) — over this process's socket. The agent gets its task token and nothing else: no config
/// path, no data dir, no store address.
pub fn mcp_launch(cfg: &Config) -> reef_core::engine::cli_agent::McpLaunch {
    let exe = std::env::current_exe().ok();
    let command = cfg.mcp.command.clone().unwrap_or_else(|| {
        exe.as_ref()
            .map(|e| if e.file_name().is_some_and(|n| n == "reef") { e.clone() } else { e.with_file_name("reef") })
            .filter(|p| p.exists())
            .or(exe.clone())
            .unwrap_or_else(|| PathBuf::from("reef"))
    });
    let command = std::path::absolute(&command).unwrap_or(command);
    // One socket per process: a `reef serve` and the app on one data dir each serve their own.
    let socket = cfg.data_dir.join("run").join(format!("mcp-{}.sock", std::process::id()));
    reef_core::engine::cli_agent::McpLaunch { command, socket, dir: cfg.data_dir.join("mcp") }
}
