//! `reef executors`: the agent CLIs this machine can run, and for each it cannot, why.

use super::Out;
use reef_core::config::Config;

pub fn run(cfg: &Config, out: &Out) -> anyhow::Result<()> {
    let rows = reef_host::executors::survey(cfg, &reef_host::setup::cache_dir());
    out.print(&serde_json::to_value(&rows)?, || {
        let mut s = format!("{:<10} {:<18} {:<10} {:<34} {:<6} {}\n", "NAME", "CLI", "VERSION", "WIRE", "USABLE", "PROGRAM / WHY NOT");
        for r in &rows {
            let version = r.version.as_deref().map(|v| v.split_whitespace().next().unwrap_or(v)).unwrap_or("-");
            let wire = match (r.wire, r.metered) {
                (Some(w), Some(true)) => format!("{w} (metered)"),
                (Some(w), _) => w.to_string(),
                _ => "-".into(),
            };
            let program = r.program.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "not installed".into());
            let shown = match &r.configured_as {
                Some(c) if c != &r.name => format!("{} (as {c})", r.name),
                _ => r.name.clone(),
            };
            s.push_str(&format!(
                "{shown:<10} {:<18} {version:<10} {wire:<34} {:<6} {program}\n",
                r.title,
                if r.usable { "yes" } else { "no" }
            ));
            for w in &r.why_not {
                s.push_str(&format!("{:>83}  ✗ {w}\n", ""));
            }
            if let Some(i) = &r.install {
                s.push_str(&format!("{:>83}  install: {i}\n", ""));
            }
        }
        s.push_str("\nConfigure one with [[executors]] preset = \"<name>\" (docs/engine.md: CLI agents).\n");
        s
    });
    Ok(())
}
