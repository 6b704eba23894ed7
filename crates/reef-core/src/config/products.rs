//! Each product's delivery pipeline (`[[products]]`): its repository, the checks a change must
//! pass, how it deploys and rolls back, and where its health is read — validated.
//!
//! Invariant: every command is an argv (never a shell line REEF builds), every name a safe id,
//! and a product is named once.

use super::{bad, ConfigError, FileConfig};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Serialize)]
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSection>,
    /// Run on this host in a checkout of the version to ship, with `REEF_VERSION` set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deploy: Vec<String>,
    /// Restores `REEF_VERSION` (the version before); default: the deploy command at that version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollback: Vec<String>,
    /// Folders the deploy and rollback commands may write besides their own (they run contained,
    /// with the host's network, in a fresh export of the version).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deploy_writable: Vec<PathBuf>,
    pub health_url: Option<String>,
    /// Health reads after a deploy, each of which must answer 2xx (default 3).
    pub health_checks: Option<u32>,
    pub health_interval_seconds: Option<f64>,
    /// Roll back a deploy whose health check fails without asking (default: propose it, approve-before).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_rollback: bool,
    /// More paths (globs) whose change is flagged like a test's: never merged without a person.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protected: Vec<String>,
    /// Rounds of failing checks sent back to the builder before a person is asked (default 3).
    pub max_check_rounds: Option<u32>,
    /// The longest one check may run (default 600 s).
    pub check_timeout_seconds: Option<u64>,
    /// Where an approved change becomes a pull request instead of a merge REEF makes itself.
    pub forge: Option<ForgeSection>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ForgeSection {
    /// `github`, or `none` (REEF merges itself; the default).
    pub kind: String,
    /// `owner/name` on the forge.
    pub repository: Option<String>,
    /// The forge's API (default `https://api.github.com`; GitHub Enterprise: `https://HOST/api/v3`).
    pub api_url: Option<String>,
    /// How often open pull requests are read for reviews, CI and merges (default 60 s).
    pub poll_seconds: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
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

/// A forge that takes the product's changes as pull requests (GitHub's REST API). Its token is
/// REEF's own secret `REEF_GITHUB_TOKEN`, never a product secret: product secrets reach the
/// product's agents, and an agent holding it could merge its own pull request.
#[derive(Debug, Clone, PartialEq)]
pub struct Forge {
    /// `owner/name`.
    pub repository: String,
    pub api_url: String,
    pub poll: Duration,
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
    pub forge: Option<Forge>,
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

/// One product's `[[products]]` table as TOML (without its header), as the operator edits it.
pub fn section_text(p: &Pipeline) -> String {
    let s = ProductSection {
        name: p.product.clone(),
        repository: p.repository.clone(),
        main: Some(p.main.clone()),
        remote: Some(p.remote.clone()),
        checks: p.checks.iter().map(|c| CheckSection { name: c.name.clone(), command: c.command.clone() }).collect(),
        deploy: p.deploy.clone(),
        rollback: p.rollback.clone(),
        deploy_writable: p.deploy_writable.clone(),
        health_url: p.health_url.clone(),
        // Read only with a health URL: left out without one (the text stays short).
        health_checks: p.health_url.as_ref().map(|_| p.health_checks),
        health_interval_seconds: p.health_url.as_ref().map(|_| p.health_interval.as_secs_f64()),
        auto_rollback: p.auto_rollback,
        protected: p.protected.clone(),
        max_check_rounds: Some(p.max_check_rounds),
        check_timeout_seconds: Some(p.check_timeout.as_secs()),
        forge: p.forge.as_ref().map(|f| ForgeSection {
            kind: "github".into(),
            repository: Some(f.repository.clone()),
            api_url: Some(f.api_url.clone()),
            poll_seconds: Some(f.poll.as_secs_f64()),
        }),
    };
    toml::to_string(&s).unwrap_or_default()
}

/// Reads one product's table (the text `section_text` makes, edited), validated as the config
/// file's would be; errors name the key, as `products[0].…`.
pub fn parse_section(text: &str) -> Result<Pipeline, ConfigError> {
    let fix = "write the product's table as the config file's [[products]] holds it (name, repository, checks, …)";
    let de = toml::Deserializer::parse(text).map_err(|e| bad("pipeline", e.message().to_string(), fix))?;
    let section: ProductSection = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        bad(if path == "." { "pipeline" } else { &path }, e.into_inner().message().to_string(), fix)
    })?;
    let mut file = super::file::parse(None)?;
    file.products = vec![section];
    pipelines(&file)?.pop().ok_or_else(|| bad("pipeline", "is empty", fix))
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
        let forge = forge(&key, p.forge.as_ref())?;
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
            forge,
        });
    }
    Ok(out)
}

fn forge(key: &str, f: Option<&ForgeSection>) -> Result<Option<Forge>, ConfigError> {
    let Some(f) = f else { return Ok(None) };
    match f.kind.as_str() {
        "none" => return Ok(None),
        "github" => {}
        other => {
            return Err(bad(&format!("{key}.forge.kind"), format!("{other:?} is not a forge REEF knows"), "write \"github\" or \"none\""))
        }
    }
    let repo = f.repository.clone().unwrap_or_default();
    let ok = repo.split_once('/').is_some_and(|(o, n)| safe_name(o) && safe_name(n) && !n.contains('/'));
    if !ok {
        return Err(bad(
            &format!("{key}.forge.repository"),
            format!("{repo:?} is not owner/name"),
            "write the repository as GitHub names it, e.g. \"acme/calc\"",
        ));
    }
    let api_url = f.api_url.clone().unwrap_or_else(|| "https://api.github.com".into()).trim_end_matches('/').to_string();
    // The token goes to this URL: https, or http to this machine only; nothing in it that could
    // change where a request goes (credentials, a query, a fragment).
    let ok = reqwest::Url::parse(&api_url).is_ok_and(|u| {
        let local = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        (u.scheme() == "https" || (u.scheme() == "http" && local))
            && u.username().is_empty()
            && u.password().is_none()
            && u.query().is_none()
            && u.fragment().is_none()
    });
    if !ok {
        return Err(bad(
            &format!("{key}.forge.api_url"),
            format!("{api_url:?} is not an https URL without credentials, query or fragment (REEF's GitHub token is sent to it)"),
            "leave it out for github.com; GitHub Enterprise: https://HOST/api/v3",
        ));
    }
    let poll = f.poll_seconds.unwrap_or(60.0);
    if !poll.is_finite() || !(1.0..=86_400.0).contains(&poll) {
        return Err(bad(&format!("{key}.forge.poll_seconds"), format!("{poll} is not a number of seconds"), "write 1 to 86400"));
    }
    Ok(Some(Forge { repository: repo, api_url, poll: Duration::from_secs_f64(poll) }))
}

#[cfg(test)]
mod tests {
    fn parse(t: &str) -> Result<Vec<super::Pipeline>, super::ConfigError> {
        super::pipelines(&super::super::file::parse(Some(t)).unwrap())
    }

    #[test]
    fn a_pipeline_as_text_reads_back_the_same_and_a_bad_edit_names_its_key() {
        let p = parse("[[products]]\nname = \"calc\"\nrepository = \"/srv/calc\"\nchecks = [{ name = \"test\", command = [\"pytest\", \"-q\"] }, { name = \"lint\", command = [\"ruff\", \".\"] }]\ndeploy = [\"sh\", \"deploy.sh\"]\nhealth_url = \"http://127.0.0.1:9/health\"\nprotected = [\"ci/**\"]\nforge = { kind = \"github\", repository = \"acme/calc\", poll_seconds = 5 }\n").unwrap();
        let text = super::section_text(&p[0]);
        assert_eq!(super::parse_section(&text).unwrap(), p[0], "{text}");
        let e = super::parse_section(&text.replace("pytest", "")).unwrap_err();
        assert_eq!(e.key, "products[0].checks[0].command", "{e}");
        let e = super::parse_section("name = \"calc\"\nrepository = \"/srv/calc\"\nhealth = 3\n").unwrap_err();
        assert!(e.to_string().contains("health"), "{e}");
        assert!(super::parse_section("name = ").is_err());
    }

    #[test]
    fn a_pipeline_reads_with_its_defaults_and_bad_values_name_their_key() {
        let p = parse("[[products]]\nname = \"calc\"\nrepository = \"/srv/calc\"\nchecks = [{ name = \"test\", command = [\"pytest\"] }]\ndeploy = [\"sh\", \"deploy.sh\"]\nhealth_url = \"http://127.0.0.1:9/health\"\n").unwrap();
        assert_eq!((p[0].main.as_str(), p[0].health_checks, p[0].max_check_rounds), ("main", 3, 3));
        assert_eq!(p[0].forge, None);
        let g =
            parse("[[products]]\nname = \"calc\"\nrepository = \"/srv/calc\"\nforge = { kind = \"github\", repository = \"acme/calc\" }\n")
                .unwrap();
        let f = g[0].forge.as_ref().unwrap();
        assert_eq!((f.repository.as_str(), f.api_url.as_str(), f.poll.as_secs()), ("acme/calc", "https://api.github.com", 60));
        for (bad, key) in [
            ("name = \"a b\"\nrepository = \"/r\"", "products[0].name"),
            ("name = \"a\"\nrepository = \"rel\"", "products[0].repository"),
            ("name = \"a\"\nrepository = \"/r\"\nchecks = [{ name = \"t\", command = [] }]", "products[0].checks[0].command"),
            ("name = \"a\"\nrepository = \"/r\"\nhealth_url = \"file:///x\"\ndeploy = [\"x\"]", "products[0].health_url"),
            ("name = \"a\"\nrepository = \"/r\"\nrollback = [\"x\"]", "products[0].deploy"),
            ("name = \"a\"\nrepository = \"/r\"\nmain = \"--upload-pack=x\"", "products[0].main"),
            ("name = \"a\"\nrepository = \"/r\"\nforge = { kind = \"gitlab\" }", "products[0].forge.kind"),
            ("name = \"a\"\nrepository = \"/r\"\nforge = { kind = \"github\", repository = \"acme\" }", "products[0].forge.repository"),
            (
                "name = \"a\"\nrepository = \"/r\"\nforge = { kind = \"github\", repository = \"a/b\", api_url = \"ftp://x\" }",
                "products[0].forge.api_url",
            ),
            ("name = \"a\"\nrepository = \"/r\"\nforge = { kind = \"github\", repository = \"a/b\", api_url = \"http://gh.example\" }", "products[0].forge.api_url"),
            ("name = \"a\"\nrepository = \"/r\"\nforge = { kind = \"github\", repository = \"a/b\", api_url = \"https://u:p@gh.example\" }", "products[0].forge.api_url"),
            ("name = \"a\"\nrepository = \"/r\"\nforge = { kind = \"github\", repository = \"a/b\", poll_seconds = 0.1 }", "products[0].forge.poll_seconds"),
        ] {
            let e = parse(&format!("[[products]]\n{bad}\n")).unwrap_err();
            assert_eq!(e.key, key, "{bad}: {e}");
        }
    }
}
