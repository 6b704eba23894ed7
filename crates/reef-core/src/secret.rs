//! Secrets as values and as names: `Secret` never prints its value, which names may hold one,
//! and which of them are "outward" (never handed to an agent or a task's own tool server).
//! A leaf: it imports nothing of REEF.

use serde::Deserialize;
use std::fmt;

/// Every MCP task token starts with this, so a leaked one is easy to recognise (and to scan for).
pub const TASK_TOKEN_PREFIX: &str = "reef_mcp_";

/// Whether `n` can name a secret: an environment variable REEF owns (`REEF_` then capitals,
/// digits and `_`), which is also its name in the OS keyring.
pub fn is_secret_name(n: &str) -> bool {
    n.starts_with("REEF_") && n.len() > 5 && n.len() <= 96 && n.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// A value that must never be printed. `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The clear value, for the one place that sends it (an HTTP header, a driver).
    pub fn expose(&self) -> &str {
        &self.0
    }
}
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}
impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A connection string with any password replaced by `***`, safe for logs and the UI.
pub fn redact_uri(uri: &str) -> String {
    let Some(scheme_end) = uri.find("://") else { return uri.to_string() };
    let rest = &uri[scheme_end + 3..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else { return uri.to_string() };
    let userinfo = &authority[..at];
    let user = userinfo.split(':').next().unwrap_or("");
    let mut out = String::with_capacity(uri.len());
    out.push_str(&uri[..scheme_end + 3]);
    out.push_str(user);
    out.push_str(":***");
    out.push_str(&rest[at..]);
    // Query parameters can carry secrets too (e.g. a TLS key password).
    redact_query(&out)
}

fn redact_query(uri: &str) -> String {
    let Some(q) = uri.find('?') else { return uri.to_string() };
    let (head, query) = uri.split_at(q + 1);
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if k.to_ascii_lowercase().contains("password") || k.to_ascii_lowercase().contains("secret") => {
                format!("{k}=***")
            }
            _ => kv.to_string(),
        })
        .collect();
    format!("{head}{}", parts.join("&"))
}

/// Secrets for talking to the outside (gateway, Stripe, webhooks, phone links, operator clients,
/// products): a task's own `reef mcp` never reads them, and agents are never handed them.
pub fn is_outward_secret(k: &str) -> bool {
    matches!(k, "REEF_LLM_API_KEY" | "REEF_LINK_SECRET")
        || ["REEF_STRIPE_", "REEF_WEBHOOK_", "REEF_MCP_OPERATOR_", "REEF_PRODUCT_", "REEF_SECRET_"].iter().any(|p| k.starts_with(p))
}

/// The secret holding an MCP operator client's token.
pub fn mcp_operator_secret(name: &str) -> String {
    format!("REEF_MCP_OPERATOR_{}", name.to_uppercase().replace(['-', ' ', '.'], "_"))
}
