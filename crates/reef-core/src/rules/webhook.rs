//! Outbound webhooks: who receives which events, what a delivery carries and how it is signed.
//!
//! Invariant: a subscription is valid or REEF does not start — a bad URL, an unknown template,
//! no events or a secret that is not set are refused at config load, naming the key. Deliveries
//! are signed like Stripe's (`X-Reef-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`), so
//! a receiver can reuse any Stripe verification code with its own secret.

use crate::secret::Secret;
use crate::Event;
use serde::Deserialize;
use serde_json::{json, Value};

/// The header with the signature; `X-Reef-Event-Id` names the event (the receiver's dedupe key).
pub const SIGNATURE_HEADER: &str = "X-Reef-Signature";
pub const EVENT_ID_HEADER: &str = "X-Reef-Event-Id";
pub const EVENT_KIND_HEADER: &str = "X-Reef-Event";

/// `[[webhooks]]` in the config file. Secrets are named, never written here: `secret` (and
/// `url_secret`, for URLs that are themselves secret, like Slack's) are environment names whose
/// values come from the environment or the OS keyring.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    pub name: String,
    pub url: Option<String>,
    pub url_secret: Option<String>,
    /// Event kinds: exact (`approval.requested`), a prefix (`task.*`) or `*` for all.
    pub events: Vec<String>,
    pub secret: String,
    /// `reef` (default: the event as JSON), `slack` (incoming-webhook text), `openclaw`, or
    /// `langfuse` (traces for Langfuse's ingestion API; `secret` then holds `public_key:secret_key`).
    pub template: Option<String>,
    /// Approval requests carry signed approve / reject links (needs `reef serve` listening).
    #[serde(default)]
    pub approve_links: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    Reef,
    Slack,
    OpenClaw,
    Langfuse,
}

/// A validated subscription.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub name: String,
    pub url: Secret,
    pub events: Vec<String>,
    pub secret: Secret,
    pub template: Template,
    pub approve_links: bool,
}

/// What was wrong with one `[[webhooks]]` entry: the key, the problem, the fix.
pub type Problem = (String, String, String);

fn problem(key: String, what: impl Into<String>, fix: &str) -> Problem {
    (key, what.into(), fix.into())
}

/// Checks a URL a delivery may go to: https anywhere, http only to this machine (a payload in clear
/// over a network would show approvals and spend to anyone on the path).
pub fn check_url(u: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(u).map_err(|e| format!("{u:?} is not a URL ({e})"))?;
    let host = parsed.host_str().unwrap_or("");
    match parsed.scheme() {
        "https" if !host.is_empty() => Ok(()),
        "http" if matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1") => Ok(()),
        "http" => Err(format!("{u:?} is plain http to another machine; use https (http is allowed to 127.0.0.1 only)")),
        s => Err(format!("{u:?} has scheme {s:?}; use https")),
    }
}

fn check_pattern(p: &str) -> bool {
    let body = p.strip_suffix(".*").unwrap_or(p);
    p == "*" || (!body.is_empty() && body.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.'))
}

/// Validates the `[[webhooks]]` entries, reading their secrets through `env`.
pub fn resolve(sections: &[WebhookSection], env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Subscription>, Problem> {
    let mut out: Vec<Subscription> = vec![];
    for (i, w) in sections.iter().enumerate() {
        let key = |k: &str| format!("webhooks[{i}].{k}");
        if w.name.is_empty() || !w.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(problem(key("name"), format!("{:?} is not a name", w.name), "letters, digits, - and _"));
        }
        if out.iter().any(|s| s.name == w.name) {
            return Err(problem(key("name"), format!("{:?} is used twice", w.name), "give each webhook its own name"));
        }
        let url = match (&w.url, &w.url_secret) {
            (Some(u), None) => u.clone(),
            (None, Some(n)) if crate::secret::is_secret_name(n) => env(n).filter(|v| !v.is_empty()).ok_or_else(|| {
                problem(key("url_secret"), format!("{n} is not set"), "set it in the environment or `reef secret set` it")
            })?,
            (None, Some(n)) => {
                return Err(problem(
                    key("url_secret"),
                    format!("{n:?} is not a secret name"),
                    "REEF_ then capitals, e.g. REEF_WEBHOOK_SLACK_URL",
                ))
            }
            _ => {
                return Err(problem(
                    key("url"),
                    "give exactly one of url and url_secret",
                    "url for a plain address, url_secret when the URL is itself a secret (Slack)",
                ))
            }
        };
        check_url(&url).map_err(|e| {
            problem(
                key(if w.url.is_some() { "url" } else { "url_secret" }),
                crate::secret::redact_uri(&e),
                "e.g. https://hooks.example.com/reef",
            )
        })?;
        if w.events.is_empty() {
            return Err(problem(key("events"), "no events", "e.g. [\"approval.requested\", \"budget.*\", \"task.failed\"]"));
        }
        if let Some(p) = w.events.iter().find(|p| !check_pattern(p)) {
            return Err(problem(
                key("events"),
                format!("{p:?} is not an event kind or prefix"),
                "an exact kind, a prefix like task.*, or *",
            ));
        }
        if !crate::secret::is_secret_name(&w.secret) {
            return Err(problem(
                key("secret"),
                format!("{:?} is not a secret name", w.secret),
                "name an environment variable, e.g. REEF_WEBHOOK_OPS_SECRET",
            ));
        }
        let secret = env(&w.secret).filter(|v| !v.is_empty()).ok_or_else(|| {
            problem(
                key("secret"),
                format!("{} is not set", w.secret),
                "set it in the environment or `reef secret set` it (receivers verify with it)",
            )
        })?;
        if secret.len() < 16 {
            return Err(problem(
                key("secret"),
                format!("{} is shorter than 16 characters", w.secret),
                "use a long random value (openssl rand -hex 32)",
            ));
        }
        let template = match w.template.as_deref() {
            None | Some("reef") => Template::Reef,
            Some("slack") => Template::Slack,
            Some("openclaw") => Template::OpenClaw,
            Some("langfuse") => Template::Langfuse,
            Some(o) => return Err(problem(key("template"), format!("{o:?} is not a template"), "reef, slack, openclaw or langfuse")),
        };
        if template == Template::Langfuse && !secret.split_once(':').is_some_and(|(p, s)| !p.is_empty() && !s.is_empty()) {
            return Err(problem(
                key("secret"),
                format!("{} is not public_key:secret_key", w.secret),
                "set it to Langfuse's project keys joined by a colon, e.g. pk-lf-…:sk-lf-…",
            ));
        }
        out.push(Subscription {
            name: w.name.clone(),
            url: Secret::new(url),
            events: w.events.clone(),
            secret: Secret::new(secret),
            template,
            approve_links: w.approve_links,
        });
    }
    Ok(out)
}

impl Subscription {
    /// Whether this subscription wants events of `kind`.
    pub fn wants(&self, kind: &str) -> bool {
        self.events.iter().any(|p| {
            p == "*"
                || p == kind
                || p.strip_suffix(".*").is_some_and(|pre| kind.strip_prefix(pre).is_some_and(|rest| rest.starts_with('.')))
        })
    }

    /// The headers and body of one delivery of `event` at `now_unix`.
    pub fn delivery(&self, event: &Event, links: Option<&Value>, now_unix: i64) -> (Vec<(&'static str, String)>, Vec<u8>) {
        let body = serde_json::to_vec(&self.payload(event, links)).unwrap_or_default();
        if self.template == Template::Langfuse {
            // Langfuse authenticates with the project's keys (HTTP Basic), not a signature.
            let basic = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, self.secret.expose());
            return (vec![("Authorization", format!("Basic {basic}")), (EVENT_ID_HEADER, event.id.clone())], body);
        }
        let mut headers = vec![
            (SIGNATURE_HEADER, crate::signature::sign(self.secret.expose(), now_unix, &body)),
            (EVENT_ID_HEADER, event.id.clone()),
            (EVENT_KIND_HEADER, event.kind.clone()),
        ];
        if self.template == Template::OpenClaw {
            // OpenClaw's hooks endpoint takes its hooks token as a bearer token (it verifies no
            // signature): the subscription's secret is that token.
            headers.push(("Authorization", format!("Bearer {}", self.secret.expose())));
        }
        (headers, body)
    }

    /// The JSON body for `event` in this subscription's template.
    pub fn payload(&self, event: &Event, links: Option<&Value>) -> Value {
        let text = summary(event);
        match self.template {
            Template::Reef => json!({
                "id": event.id, "kind": event.kind, "at": crate::time::fmt_ts(&event.at),
                "actor": event.actor, "subject": event.subject, "data": event.data, "summary": text, "links": links,
            }),
            Template::Slack => {
                let mut t = format!("*REEF* · {text}");
                if let Some(l) = links {
                    if let (Some(a), Some(r)) = (l["approve"].as_str(), l["reject"].as_str()) {
                        t.push_str(&format!("\n<{a}|Approve> · <{r}|Reject>"));
                    }
                }
                json!({ "text": t })
            }
            // OpenClaw's webhook hook takes a message for the operator's channel (WhatsApp) plus
            // the structured event for its own tools.
            Template::OpenClaw => json!({
                "message": match links {
                    Some(l) => format!("{text}\nApprove: {}\nReject: {}", l["approve"].as_str().unwrap_or(""), l["reject"].as_str().unwrap_or("")),
                    None => text,
                },
                "event": { "id": event.id, "kind": event.kind, "subject": event.subject, "data": event.data },
                "links": links,
            }),
            Template::Langfuse => super::langfuse::batch(event),
        }
    }
}

/// One line a person can read, for chat templates.
pub fn summary(e: &Event) -> String {
    let d = &e.data;
    let subject = e.subject.as_deref().unwrap_or("");
    let s = |k: &str| d[k].as_str().unwrap_or("").to_string();
    match e.kind.as_str() {
        "approval.requested" => format!("Approval needed: {} ({}, task {subject})", s("summary"), s("action_class")),
        "approval.expired" => format!("Approval expired for task {subject}"),
        "budget.alert" => format!("Budget alert: {subject} at {}%", d["percent"].as_u64().unwrap_or(0)),
        "budget.cap_reached" => format!("Cap reached: {subject}"),
        "task.failed" => format!("Task failed: {subject} — {}", s("error")),
        "task.stuck" => format!("Agent stuck on task {subject}"),
        "task.question" => format!("{} asks (task {subject}): {} — answer with `reef answer {subject} \"…\"`", e.actor, s("question")),
        "task.progress" => format!("{} on task {subject}: {}", e.actor, s("message")),
        k => format!("{k}: {subject}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(name: &str, url: &str, events: &[&str], secret: &str) -> WebhookSection {
        WebhookSection {
            name: name.into(),
            url: Some(url.into()),
            url_secret: None,
            events: events.iter().map(|s| s.to_string()).collect(),
            secret: secret.into(),
            template: None,
            approve_links: false,
        }
    }
    fn env(k: &str) -> Option<String> {
        match k {
            "REEF_WEBHOOK_OPS_SECRET" => Some("0123456789abcdef0123".into()),
            "REEF_WEBHOOK_SHORT" => Some("short".into()),
            "REEF_WEBHOOK_SLACK_URL" => Some("https://hooks.slack.com/services/T0/B0/XYZSECRET".into()),
            _ => None,
        }
    }

    #[test]
    fn bad_subscriptions_are_refused_naming_the_key() {
        let cases: Vec<(WebhookSection, &str, &str)> = vec![
            (sec("ops", "not a url", &["*"], "REEF_WEBHOOK_OPS_SECRET"), "webhooks[0].url", "not a URL"),
            (sec("ops", "http://example.com/x", &["*"], "REEF_WEBHOOK_OPS_SECRET"), "webhooks[0].url", "plain http"),
            (sec("ops", "ftp://example.com/x", &["*"], "REEF_WEBHOOK_OPS_SECRET"), "webhooks[0].url", "scheme"),
            (sec("ops", "https://example.com/x", &["*"], "REEF_WEBHOOK_MISSING"), "webhooks[0].secret", "is not set"),
            (sec("ops", "https://example.com/x", &["*"], "whsec_literal"), "webhooks[0].secret", "not a secret name"),
            (sec("ops", "https://example.com/x", &["*"], "REEF_WEBHOOK_SHORT"), "webhooks[0].secret", "shorter"),
            (sec("ops", "https://example.com/x", &[], "REEF_WEBHOOK_OPS_SECRET"), "webhooks[0].events", "no events"),
            (sec("ops", "https://example.com/x", &["Task Failed"], "REEF_WEBHOOK_OPS_SECRET"), "webhooks[0].events", "not an event kind"),
            (sec("o p", "https://example.com/x", &["*"], "REEF_WEBHOOK_OPS_SECRET"), "webhooks[0].name", "not a name"),
        ];
        for (s, key, what) in cases {
            let (k, w, _) = resolve(&[s], &env).unwrap_err();
            assert_eq!(k, key);
            assert!(w.contains(what), "{w}");
        }
        let twice =
            [sec("a", "https://x.io/1", &["*"], "REEF_WEBHOOK_OPS_SECRET"), sec("a", "https://x.io/2", &["*"], "REEF_WEBHOOK_OPS_SECRET")];
        assert!(resolve(&twice, &env).unwrap_err().1.contains("twice"));
        // Langfuse's keys are a pair: one value without the colon is refused.
        let mut lf = sec("lf", "https://cloud.langfuse.com/api/public/ingestion", &["trace.step"], "REEF_WEBHOOK_OPS_SECRET");
        lf.template = Some("langfuse".into());
        let (k, w, _) = resolve(&[lf], &env).unwrap_err();
        assert_eq!(k, "webhooks[0].secret");
        assert!(w.contains("public_key:secret_key"), "{w}");
    }

    #[test]
    fn a_secret_url_comes_from_the_environment_and_never_shows() {
        let mut s = sec("slack", "", &["approval.*"], "REEF_WEBHOOK_OPS_SECRET");
        s.url = None;
        s.url_secret = Some("REEF_WEBHOOK_SLACK_URL".into());
        s.template = Some("slack".into());
        let subs = resolve(&[s], &env).unwrap();
        assert_eq!(subs[0].url.expose(), "https://hooks.slack.com/services/T0/B0/XYZSECRET");
        assert!(!format!("{:?}", subs[0]).contains("XYZSECRET"));
        assert!(!format!("{:?}", subs[0]).contains("0123456789abcdef"));
    }

    #[test]
    fn patterns_match_exact_kinds_prefixes_and_all() {
        let s =
            resolve(&[sec("ops", "http://127.0.0.1:9/x", &["approval.requested", "budget.*"], "REEF_WEBHOOK_OPS_SECRET")], &env).unwrap();
        assert!(s[0].wants("approval.requested"));
        assert!(!s[0].wants("approval.decided"));
        assert!(s[0].wants("budget.alert") && s[0].wants("budget.cap_reached"));
        assert!(!s[0].wants("budgetary.x"));
    }

    #[test]
    fn deliveries_are_signed_like_stripe_and_carry_the_event_id() {
        let s = resolve(&[sec("ops", "http://127.0.0.1:9/x", &["*"], "REEF_WEBHOOK_OPS_SECRET")], &env).unwrap().remove(0);
        let e = Event {
            id: "ev1".into(),
            kind: "task.failed".into(),
            at: crate::time::parse_ts("2026-11-21T10:00:00Z").unwrap(),
            actor: "reef".into(),
            subject: Some("t1".into()),
            data: json!({"error": "boom"}),
        };
        let (h, body) = s.delivery(&e, None, 1_795_000_000);
        let sig = &h.iter().find(|(k, _)| *k == SIGNATURE_HEADER).unwrap().1;
        assert_eq!(crate::signature::verify("0123456789abcdef0123", Some(sig), &body, 1_795_000_010, 300).unwrap(), 1_795_000_000);
        assert!(crate::signature::verify("another-secret-000000", Some(sig), &body, 1_795_000_010, 300).is_err());
        assert_eq!(h.iter().find(|(k, _)| *k == EVENT_ID_HEADER).unwrap().1, "ev1");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["kind"], "task.failed");
        assert_eq!(v["summary"], "Task failed: t1 — boom");
        let q = Event { kind: "task.question".into(), actor: "agent:kev".into(), data: json!({"question": "Monday or Thursday?"}), ..e };
        assert_eq!(summary(&q), "agent:kev asks (task t1): Monday or Thursday? — answer with `reef answer t1 \"…\"`");
    }
}
