//! What talks to the outside: where `reef serve` listens, Stripe, signed approval links, webhook
//! subscriptions and the MCP server's operator clients. Invariant: these secrets come from the
//! environment or the OS keyring only, and a task's own `reef mcp` is given none of them.

use super::{bad, ConfigError, FileConfig};
use crate::secret::{mcp_operator_secret, Secret};
use std::net::SocketAddr;
use std::path::PathBuf;

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Stripe as a revenue source. The secrets come from the environment only, never a file.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    pub webhook_secret: Option<Secret>,
    /// A restricted key with read access to events, for pull mode.
    pub api_key: Option<Secret>,
    pub api_base: String,
    pub tolerance_seconds: u64,
    pub pull_every: Option<std::time::Duration>,
}

#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub base: String,
    pub secret: Secret,
}

/// The MCP server's limits and its operator clients.
#[derive(Debug, Clone)]
pub struct McpConfig {
    /// (name, token) of each client acting for the operator.
    pub operators: Vec<(String, Secret)>,
    pub max_subtasks: u32,
    pub max_depth: u32,
    pub park_grace: std::time::Duration,
    pub command: Option<PathBuf>,
}

impl Default for McpConfig {
    fn default() -> Self {
        Self { operators: vec![], max_subtasks: 20, max_depth: 3, park_grace: std::time::Duration::from_secs(60), command: None }
    }
}

/// Where `reef serve` answers HTTP, if anywhere.
pub fn listen(file: &FileConfig, env: Env<'_>) -> Result<Option<SocketAddr>, ConfigError> {
    Ok(match env("REEF_LISTEN").filter(|s| !s.is_empty()).or(file.serve.listen.clone()) {
        None => None,
        Some(a) => Some(
            a.parse::<SocketAddr>()
                .map_err(|_| bad("REEF_LISTEN / serve.listen", format!("{a:?} is not an address:port"), "use e.g. 127.0.0.1:8787"))?,
        ),
    })
}

/// Stripe as a revenue source (its secrets from `env`, which hides them from a task's server).
pub fn stripe(file: &FileConfig, env: Env<'_>) -> Result<StripeConfig, ConfigError> {
    let st = &file.stripe;
    let api_base = st.api_base.clone().unwrap_or_else(|| "https://api.stripe.com".into());
    if !(api_base.starts_with("https://") || api_base.starts_with("http://127.0.0.1") || api_base.starts_with("http://localhost")) {
        return Err(bad("stripe.api_base", format!("{api_base:?} is not an https URL"), "leave it out for https://api.stripe.com"));
    }
    let webhook_secret = env("REEF_STRIPE_WEBHOOK_SECRET").filter(|s| !s.is_empty()).map(Secret::new);
    if let Some(w) = &webhook_secret {
        if !w.expose().starts_with("whsec_") {
            return Err(bad(
                "REEF_STRIPE_WEBHOOK_SECRET",
                "is not a webhook signing secret (those start with whsec_)",
                "copy the endpoint's signing secret from the Stripe dashboard or `stripe listen`",
            ));
        }
    }
    Ok(StripeConfig {
        webhook_secret,
        api_key: env("REEF_STRIPE_API_KEY").filter(|s| !s.is_empty()).map(Secret::new),
        api_base,
        tolerance_seconds: st.tolerance_seconds.unwrap_or(300),
        pull_every: match st.pull_minutes.unwrap_or(15) {
            0 => None,
            m => Some(std::time::Duration::from_secs(m * 60)),
        },
    })
}

/// Webhook subscriptions (none for a task's own server).
pub fn webhooks(file: &FileConfig, env: Env<'_>, task_server: bool) -> Result<Vec<crate::rules::webhook::Subscription>, ConfigError> {
    let no_webhooks = vec![];
    crate::rules::webhook::resolve(if task_server { &no_webhooks } else { &file.webhooks }, env).map_err(|(k, w, fix)| bad(&k, w, fix))
}

/// Signed approve / reject links: need a listen address and REEF_LINK_SECRET.
pub fn links(
    file: &FileConfig,
    env: Env<'_>,
    listen: Option<SocketAddr>,
    webhooks: &[crate::rules::webhook::Subscription],
) -> Result<Option<LinkConfig>, ConfigError> {
    let link_secret = env("REEF_LINK_SECRET").filter(|s| !s.is_empty());
    let links = match (listen, link_secret) {
        (Some(addr), Some(secret)) => {
            if secret.len() < 16 {
                return Err(bad(
                    "REEF_LINK_SECRET",
                    "is shorter than 16 characters".to_string(),
                    "use a long random value (openssl rand -hex 32)",
                ));
            }
            let base = file.serve.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
            // Plain http is allowed here (a tailnet name is already encrypted end to end).
            if !reqwest::Url::parse(&base).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some()) {
                return Err(bad("serve.public_url", format!("{base:?} is not an http(s) URL"), "e.g. https://reef.example.ts.net"));
            }
            Some(LinkConfig { base, secret: Secret::new(secret) })
        }
        _ => None,
    };
    if let Some(i) = webhooks.iter().position(|w| w.approve_links) {
        if links.is_none() {
            return Err(bad(
                &format!("webhooks[{i}].approve_links"),
                "needs reef serve listening (serve.listen / REEF_LISTEN) and REEF_LINK_SECRET".to_string(),
                "set both, or turn approve_links off",
            ));
        }
    }
    Ok(links)
}

/// The MCP server's limits and its operator clients (none for a task's own server).
pub fn mcp(file: &FileConfig, env: Env<'_>, task_server: bool) -> Result<McpConfig, ConfigError> {
    let mut mcp_operators = vec![];
    let operators = if task_server { &[][..] } else { &file.mcp.operators[..] };
    for (i, name) in operators.iter().enumerate() {
        if name.is_empty() || name.len() > 40 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(bad(&format!("mcp.operators[{i}]"), format!("{name:?} is not a client name"), "use letters, digits, - and _"));
        }
        let key = mcp_operator_secret(name);
        match env(&key).filter(|s| !s.is_empty()) {
            Some(t) if t.len() >= 24 => mcp_operators.push((name.clone(), Secret::new(t))),
            Some(_) => return Err(bad(&key, "is shorter than 24 characters", "use a long random value (openssl rand -hex 32)")),
            None => {
                return Err(bad(
                    &format!("mcp.operators[{i}]"),
                    format!("{name:?} has no token: {key} is not set"),
                    format!("set {key} in the environment or the OS keyring (`reef secret set {key}`)"),
                ))
            }
        }
    }
    Ok(McpConfig {
        operators: mcp_operators,
        max_subtasks: file.mcp.max_subtasks.unwrap_or(20).min(1000),
        max_depth: file.mcp.max_depth.unwrap_or(3).min(20),
        park_grace: std::time::Duration::from_secs(file.mcp.park_grace_secs.unwrap_or(60)),
        command: file.mcp.command.clone(),
    })
}

/// `serve.public_url`, checked: where people and clients reach `reef serve` from outside (a
/// tailnet name, a reverse proxy). Approval links are built on it and `/mcp` accepts its host.
pub fn public_url(file: &FileConfig) -> Result<Option<String>, ConfigError> {
    let Some(u) = file.serve.public_url.clone() else { return Ok(None) };
    if !reqwest::Url::parse(&u).is_ok_and(|x| matches!(x.scheme(), "http" | "https") && x.host_str().is_some()) {
        return Err(bad("serve.public_url", format!("{u:?} is not an http(s) URL"), "e.g. https://reef.example.ts.net"));
    }
    Ok(Some(u))
}

impl super::Config {
    /// The `Host` header values a client reaching `serve.public_url` sends: the host, and with
    /// an explicit port, `host:port`.
    pub fn public_hosts(&self) -> Vec<String> {
        let Some(u) = self.public_url.as_deref().and_then(|u| reqwest::Url::parse(u).ok()) else { return vec![] };
        let Some(h) = u.host_str() else { return vec![] };
        let mut v = vec![h.to_string()];
        if let Some(p) = u.port() {
            v.push(format!("{h}:{p}"));
        }
        v
    }
}
