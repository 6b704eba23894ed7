//! `reef doctor`: what the configured store can do and whether REEF's guarantees hold on it,
//! proven on a scratch store (`reef_store::doctor`); exits non-zero when one fails.

use super::Out;
use reef_core::config::Config;
use reef_core::doctor::Verdict;
use std::io::{BufRead, IsTerminal, Write};

pub async fn run(cfg: &Config, yes: bool, out: &Out) -> anyhow::Result<()> {
    let consent = |question: &str| {
        if yes {
            return true;
        }
        if !std::io::stdin().is_terminal() {
            return false;
        }
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        matches!(answer.trim(), "y" | "Y" | "yes")
    };
    let report = reef_store::doctor::run(&cfg.store, &reef_core::SystemClock, consent).await?;
    // The app shows the last report per store, and offers doctor for a store it has none of.
    if let Err(e) = reef_store::doctor::remember(&cfg.data_dir, &report) {
        eprintln!("warning: {e}");
    }
    out.print(&report, || {
        let mut s = format!("store    {}\nscratch  {} (removed)\nat       {}\n\n", report.store, report.scratch, report.at);
        s.push_str(&format!("{:<30} {:<11} {}\n", "CHECK", "VERDICT", "DETAIL"));
        for c in &report.checks {
            s.push_str(&format!("{:<30} {:<11} {}\n", c.name, c.verdict.as_str(), c.detail));
        }
        let count = |v: Verdict| report.checks.iter().filter(|c| c.verdict == v).count();
        s.push_str(&format!(
            "\n{} hold, {} fall back, {} fail, {} skipped\n",
            count(Verdict::Holds),
            count(Verdict::FallsBack),
            count(Verdict::Fails),
            count(Verdict::Skipped)
        ));
        s
    });
    if report.failed() {
        if out.json {
            // The report is the one JSON document on stdout; its FAILS lines say why.
            let _ = std::io::stdout().flush();
            std::process::exit(1);
        }
        anyhow::bail!("a guarantee REEF relies on does not hold on {}", report.store);
    }
    Ok(())
}
