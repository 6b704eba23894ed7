//! Each product's delivery pipeline (`[[products]]`): its repository, the checks a change must
//! pass, how it deploys and rolls back, and where its health is read — validated.
//!
//! Invariant: every command is an argv (never a shell line REEF builds), every name a safe id,
//! and a product is named once.

use super::{bad, ConfigError, FileConfig};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductSection {
    pub name: String,
    /// A local checkout of the product (REEF makes builders' worktrees of it and merges in it).
    pub repository: PathBuf,
    /// The branch changes merge into (default `main`).
    pub main: Option<String>,
    /// The remote of the checkout whose `main` is the product's: REEF fetches it, merges into it
    /// and pushes to it (default `origin`). A local branch is not enough: agents working in the
    /// checkout can move its refs.
    pub remote: Option<String>,
    #[serde(default)]
    pub checks: Vec<CheckSection>,
    /// Run on this host in a checkout of the version to ship, with `REEF_VERSION` set.
    #[serde(default)]
    pub deploy: Vec<String>,
    /// Restores `REEF_VERSION` (the version before); default: the deploy command at that version.
    #[serde(default)]
    pub rollback: Vec<String>,
    /// Folders the deploy and rollback commands may write besides their own (they run contained,
    /// with the host's network, in a fresh export of the version).
    #[serde(default)]
    pub deploy_writable: Vec<PathBuf>,
    pub health_url: Option<String>,
    /// Health reads after a deploy, each of which must answer 2xx (default 3).
    pub health_checks: Option<u32>,
    pub health_interval_seconds: Option<f64>,
    /// Roll back a deploy whose health check fails without asking (default: propose it, approve-before).
    #[serde(default)]
    pub auto_rollback: bool,
    /// More paths (globs) whose change is flagged like a test's: never merged without a person.
    #[serde(default)]
    pub protected: Vec<String>,
    /// Rounds of failing checks sent back to the builder before a person is asked (default 3).
    pub max_check_rounds: Option<u32>,
    /// The longest one check may run (default 600 s).
    pub check_timeout_seconds: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSection {
    /// lint, typecheck, test, build, …
    pub name: String,
    pub command: Vec<String>,
}

/// A check a change must pass, run contained in the builder's worktree.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub command: Vec<String>,
}

/// One product's pipeline, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    pub product: String,
    pub repository: PathBuf,
    pub main: String,
    pub remote: String,
    pub checks: Vec<Check>,
    pub deploy: Vec<String>,
    pub rollback: Vec<String>,
    pub deploy_writable: Vec<PathBuf>,
    pub health_url: Option<String>,
    pub health_checks: u32,
    pub health_interval: Duration,
    pub auto_rollback: bool,
    pub protected: Vec<String>,
    pub max_check_rounds: u32,
    pub check_timeout: Duration,
}

fn safe_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 100 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) && !s.starts_with(['-', '.'])
}

fn argv(key: &str, v: &[String], required: bool) -> Result<Vec<String>, ConfigError> {
    if v.is_empty() && !required {
        return Ok(vec![]);
    }
    if v.is_empty() || v[0].trim().is_empty() {
        return Err(bad(key, "is empty", "give the program and its arguments as a list, e.g. [\"python3\", \"-m\", \"pytest\", \"-q\"]"));
    }
    Ok(v.to_vec())
}

pub fn pipelines(file: &FileConfig) -> Result<Vec<Pipeline>, ConfigError> {
    let mut out: Vec<Pipeline> = vec![];
    for (i, p) in file.products.iter().enumerate() {
        let key = format!("products[{i}]");
        if !safe_name(&p.name) {
            return Err(bad(
                &format!("{key}.name"),
                format!("{:?} is not a product id", p.name),
                "use letters, digits, - _ . (as `reef task add --product` names it)",
            ));
        }
        if out.iter().any(|o| o.product == p.name) {
            return Err(bad(
                &format!("{key}.name"),
                format!("product {:?} has two pipelines", p.name),
                "keep one [[products]] table per product",
            ));
        }
        if !p.repository.is_absolute() {
            return Err(bad(
                &format!("{key}.repository"),
                format!("{} is not an absolute path", p.repository.display()),
                "name the product's checkout by its full path",
            ));
        }
        let main = p.main.clone().unwrap_or_else(|| "main".into());
        let remote = p.remote.clone().unwrap_or_else(|| "origin".into());
        for (what, v) in [("main", main.as_str()), ("remote", remote.as_str())] {
            if !safe_name(v) || v.contains("..") {
                return Err(bad(
                    &format!("{key}.{what}"),
                    format!("{v:?} is not a branch or remote name REEF accepts"),
                    "use letters, digits, - _ .",
                ));
            }
        }
        if let Some(w) = p.deploy_writable.iter().find(|w| !w.is_absolute()) {
            return Err(bad(
                &format!("{key}.deploy_writable"),
                format!("{} is not an absolute path", w.display()),
                "name each folder by its full path",
            ));
        }
        let mut checks: Vec<Check> = vec![];
        for (j, c) in p.checks.iter().enumerate() {
            let ck = format!("{key}.checks[{j}]");
            if !safe_name(&c.name) || checks.iter().any(|x| x.name == c.name) {
                return Err(bad(
                    &format!("{ck}.name"),
                    format!("{:?} is empty, unsafe or named twice", c.name),
                    "name each check once: lint, typecheck, test, build",
                ));
            }
            checks.push(Check { name: c.name.clone(), command: argv(&format!("{ck}.command"), &c.command, true)? });
        }
        if let Some(u) = &p.health_url {
            let ok = reqwest::Url::parse(u).is_ok_and(|x| matches!(x.scheme(), "http" | "https"));
            if !ok {
                return Err(bad(
                    &format!("{key}.health_url"),
                    format!("{u:?} is not an http(s) URL"),
                    "write the URL that answers 2xx when the product is healthy",
                ));
            }
        }
        let rollback = argv(&format!("{key}.rollback"), &p.rollback, false)?;
        let deploy = argv(&format!("{key}.deploy"), &p.deploy, false)?;
        if deploy.is_empty() && (!rollback.is_empty() || p.health_url.is_some()) {
            return Err(bad(
                &format!("{key}.deploy"),
                "is missing, but a rollback or health URL is set",
                "give the deploy command, or drop the rollback and health_url",
            ));
        }
        let interval = p.health_interval_seconds.unwrap_or(2.0);
        if !interval.is_finite() || !(0.0..=3600.0).contains(&interval) {
            return Err(bad(
                &format!("{key}.health_interval_seconds"),
                format!("{interval} is not a number of seconds"),
                "write 0 to 3600",
            ));
        }
        for g in &p.protected {
            glob::Pattern::new(g).map_err(|e| bad(&format!("{key}.protected"), format!("{g:?}: {e}"), "write a glob like \"ci/**\""))?;
        }
        out.push(Pipeline {
            product: p.name.clone(),
            repository: p.repository.clone(),
            main,
            remote,
            checks,
            deploy,
            rollback,
            deploy_writable: p.deploy_writable.clone(),
            health_url: p.health_url.clone(),
            health_checks: p.health_checks.unwrap_or(3).clamp(1, 100),
            health_interval: Duration::from_secs_f64(interval),
            auto_rollback: p.auto_rollback,
            protected: p.protected.clone(),
            max_check_rounds: p.max_check_rounds.unwrap_or(3).max(1),
            check_timeout: Duration::from_secs(p.check_timeout_seconds.unwrap_or(600).clamp(1, 24 * 3600)),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    fn parse(t: &str) -> Result<Vec<super::Pipeline>, super::ConfigError> {
        super::pipelines(&super::super::file::parse(Some(t)).unwrap())
    }

    #[test]
    fn a_pipeline_reads_with_its_defaults_and_bad_values_name_their_key() {
        let p = parse("[[products]]\nname = \"calc\"\nrepository = \"/srv/calc\"\nchecks = [{ name = \"test\", command = [\"pytest\"] }]\ndeploy = [\"sh\", \"deploy.sh\"]\nhealth_url = \"http://127.0.0.1:9/health\"\n").unwrap();
        assert_eq!((p[0].main.as_str(), p[0].health_checks, p[0].max_check_rounds), ("main", 3, 3));
        for (bad, key) in [
            ("name = \"a b\"\nrepository = \"/r\"", "products[0].name"),
            ("name = \"a\"\nrepository = \"rel\"", "products[0].repository"),
            ("name = \"a\"\nrepository = \"/r\"\nchecks = [{ name = \"t\", command = [] }]", "products[0].checks[0].command"),
            ("name = \"a\"\nrepository = \"/r\"\nhealth_url = \"file:///x\"\ndeploy = [\"x\"]", "products[0].health_url"),
            ("name = \"a\"\nrepository = \"/r\"\nrollback = [\"x\"]", "products[0].deploy"),
            ("name = \"a\"\nrepository = \"/r\"\nmain = \"--upload-pack=x\"", "products[0].main"),
        ] {
            let e = parse(&format!("[[products]]\n{bad}\n")).unwrap_err();
            assert_eq!(e.key, key, "{bad}: {e}");
        }
    }
}
