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
    matches!(k, "REEF_LLM_API_KEY" | "REEF_LINK_SECRET" | "REEF_GITHUB_TOKEN")
        || ["REEF_STRIPE_", "REEF_WEBHOOK_", "REEF_MCP_OPERATOR_", "REEF_PRODUCT_", "REEF_SECRET_"].iter().any(|p| k.starts_with(p))
}

/// The secret holding an MCP operator client's token.
pub fn mcp_operator_secret(name: &str) -> String {
    format!("REEF_MCP_OPERATOR_{}", name.to_uppercase().replace(['-', ' ', '.'], "_"))
}

/// Whether the environment variable `name` holds a secret whose value must never be stored or
/// sent in clear: REEF's outward secrets, and any `*_KEY`, `*_TOKEN`, `*_SECRET`, `*_PASSWORD`
/// (a provider key passed to an agent through `pass_env`, say).
pub fn holds_secret(name: &str) -> bool {
    is_outward_secret(name) || name == "REEF_MONGODB_URI" || ["_KEY", "_TOKEN", "_SECRET", "_PASSWORD"].iter().any(|s| name.ends_with(s))
}

/// Replaces every known secret value in text with `[redacted NAME]`: what an agent prints,
/// reports or writes into an event is passed through one before REEF stores or sends it.
#[derive(Clone, Default)]
pub struct Redactor {
    /// (value, name), longest value first so a secret that contains another is caught whole.
    known: Vec<(String, String)>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} secrets)", self.known.iter().filter(|(_, n)| !n.ends_with(ENCODED)).count())
    }
}

/// How an encoded form of a secret is named where it was redacted.
const ENCODED: &str = ", encoded";

/// The forms a secret takes when an agent encodes it to slip it past a plain match: hex, and
/// base64 (standard and URL-safe) at each of the three offsets it can sit at inside a longer
/// encoding — each cut to the characters that depend on the secret's bytes alone.
fn encodings(value: &str) -> Vec<String> {
    use base64::Engine;
    let mut out = vec![hex::encode(value), hex::encode_upper(value)];
    for engine in [&base64::engine::general_purpose::STANDARD_NO_PAD, &base64::engine::general_purpose::URL_SAFE_NO_PAD] {
        for offset in 0..3usize {
            let mut bytes = vec![0u8; offset];
            bytes.extend_from_slice(value.as_bytes());
            let enc = engine.encode(&bytes);
            let (start, end) = ((8 * offset).div_ceil(6), (8 * (offset + value.len())) / 6);
            if end > start {
                out.push(enc[start..end].to_string());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Shorter values are too likely to be ordinary text (and too weak to be secrets).
const MIN_SECRET_LEN: usize = 8;

impl Redactor {
    pub fn new(known: impl IntoIterator<Item = (String, Secret)>) -> Self {
        let mut known: Vec<(String, String)> = known
            .into_iter()
            .filter(|(_, v)| v.0.len() >= MIN_SECRET_LEN)
            .flat_map(|(name, v)| {
                let encoded = encodings(&v.0).into_iter().map(|e| (e, format!("{name}{ENCODED}"))).collect::<Vec<_>>();
                std::iter::once((v.0, name)).chain(encoded)
            })
            .collect();
        known.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        known.dedup_by(|a, b| a.0 == b.0);
        Self { known }
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// `text` with each known secret replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (value, name) in &self.known {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), &format!("[redacted {name}]"));
            }
        }
        out
    }

    /// Every string inside `v` (keys too) redacted in place.
    pub fn redact_json(&self, v: &mut serde_json::Value) {
        if self.known.is_empty() {
            return;
        }
        match v {
            serde_json::Value::String(s) if self.known.iter().any(|(value, _)| s.contains(value.as_str())) => *s = self.redact(s),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| self.redact_json(x)),
            serde_json::Value::Object(o) => {
                let keys: Vec<String> =
                    o.keys().filter(|k| self.known.iter().any(|(value, _)| k.contains(value.as_str()))).cloned().collect();
                for k in keys {
                    if let Some(x) = o.remove(&k) {
                        o.insert(self.redact(&k), x);
                    }
                }
                o.values_mut().for_each(|x| self.redact_json(x));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod redactor_tests {
    use super::*;

    #[test]
    fn known_secret_values_are_replaced_by_their_names_wherever_they_appear() {
        let r = Redactor::new([
            ("REEF_LLM_API_KEY".to_string(), Secret::new("sk-live-abcdefgh")),
            ("LONGER_TOKEN".to_string(), Secret::new("sk-live-abcdefgh-and-more")),
            ("SHORT_KEY".to_string(), Secret::new("abc")),
        ]);
        assert_eq!(r.redact("use sk-live-abcdefgh-and-more now"), "use [redacted LONGER_TOKEN] now", "the longer value is caught whole");
        assert_eq!(r.redact("key=sk-live-abcdefgh;"), "key=[redacted REEF_LLM_API_KEY];");
        assert_eq!(r.redact("abc stays: too short to be a secret"), "abc stays: too short to be a secret");
        let mut v = serde_json::json!({"line": "token sk-live-abcdefgh", "nested": [{"sk-live-abcdefgh": 1}], "n": 3});
        r.redact_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"line": "token [redacted REEF_LLM_API_KEY]", "nested": [{"[redacted REEF_LLM_API_KEY]": 1}], "n": 3})
        );
        assert!(format!("{r:?}").contains("2 secrets") && !format!("{r:?}").contains("sk-live"));
    }

    #[test]
    fn a_secret_encoded_to_slip_past_the_redactor_is_caught_in_every_form() {
        use base64::Engine;
        let secret = "sk-live-0123456789abcdef";
        let r = Redactor::new([("REEF_LLM_API_KEY".to_string(), Secret::new(secret))]);
        let b64 = base64::engine::general_purpose::STANDARD;
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        // Inside a longer encoding, at each offset the secret can start at.
        for prefix in ["", "x", "xy", "xyz", "the key: "] {
            let text = format!("{prefix}{secret} and more");
            for enc in [b64.encode(&text), url.encode(&text), hex::encode(&text), hex::encode_upper(&text)] {
                let out = r.redact(&format!("data={enc}"));
                assert!(out.contains("[redacted REEF_LLM_API_KEY, encoded]"), "{prefix:?}: {enc} -> {out}");
                let decoded = |s: &str| String::from_utf8_lossy(&b64.decode(s).unwrap_or_default()).to_string();
                assert!(!decoded(out.trim_start_matches("data=")).contains(secret), "{out}");
            }
        }
        assert_eq!(r.redact("ordinary text, no secret"), "ordinary text, no secret");
        assert!(format!("{r:?}").contains("1 secrets"), "{r:?}");
    }

    #[test]
    fn secret_names_are_recognised() {
        for n in
            ["REEF_LLM_API_KEY", "ANTHROPIC_API_KEY", "GITHUB_TOKEN", "REEF_SECRET_INVOICELY_STRIPE", "DB_PASSWORD", "REEF_MONGODB_URI"]
        {
            assert!(holds_secret(n), "{n}");
        }
        for n in ["PATH", "HOME", "REEF_DATA_DIR", "REEF_CONFIG", "LANG"] {
            assert!(!holds_secret(n), "{n}");
        }
    }
}
