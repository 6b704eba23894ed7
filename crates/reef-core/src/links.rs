//! Signed approve / reject links for deciding from a phone: `/decide?a=<approval>&d=<decision>
//! &exp=<unix>&n=<nonce>&sig=<hex HMAC-SHA256>` served by `reef serve`.
//!
//! Invariant: a link decides at most once (its nonce is claimed in the store before the decision),
//! never after it expires, never when any part of it was changed, and only by POST — chat apps
//! fetch links with GET to preview them, so GET only shows what the link would do.

use crate::factory::Factory;
use crate::signature::{hmac_matches, hmac_sha256};
use crate::*;
use hmac::Mac;

/// How long a link stays valid when its approval has no earlier expiry.
pub const DEFAULT_TTL_SECS: i64 = 24 * 3600;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LinkError {
    #[error("this link is incomplete or was changed")]
    Malformed,
    #[error("this link's signature does not match (changed, or made by another REEF)")]
    BadSignature,
    #[error("this link expired; decide in the app or with `reef approve`")]
    Expired,
    #[error("this link was already used")]
    Used,
    #[error("{0}")]
    Store(String),
}

/// What a verified link asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub approval: String,
    pub decision: Decision,
    pub expires: i64,
    pub nonce: String,
}

fn mac_input(approval: &str, decision: &str, exp: i64, nonce: &str) -> String {
    format!("{approval}|{decision}|{exp}|{nonce}")
}

fn decision_word(d: Decision) -> &'static str {
    match d {
        Decision::Approve => "approve",
        Decision::Reject => "reject",
        Decision::Revise => "revise",
    }
}

/// The query string of a link for `approval` and `decision`, valid until `exp` (unix seconds).
pub fn sign(secret: &str, approval: &str, decision: Decision, exp: i64, nonce: &str) -> String {
    let d = decision_word(decision);
    let sig = hex::encode(hmac_sha256(secret, &[mac_input(approval, d, exp, nonce).as_bytes()]).finalize().into_bytes());
    format!("a={approval}&d={d}&exp={exp}&n={nonce}&sig={sig}")
}

/// Checks a link's parameters (signature first, then expiry); does not use it up.
pub fn verify(secret: &str, q: &std::collections::HashMap<String, String>, now_unix: i64) -> Result<Claim, LinkError> {
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty() && v.len() <= 200).ok_or(LinkError::Malformed);
    let (a, d, exp, n, sig) = (get("a")?, get("d")?, get("exp")?, get("n")?, get("sig")?);
    let exp: i64 = exp.parse().map_err(|_| LinkError::Malformed)?;
    let sig = hex::decode(sig).map_err(|_| LinkError::Malformed)?;
    if !hmac_matches(secret, &[mac_input(a, d, exp, n).as_bytes()], &sig) {
        return Err(LinkError::BadSignature);
    }
    let decision = match d {
        "approve" => Decision::Approve,
        "reject" => Decision::Reject,
        _ => return Err(LinkError::Malformed),
    };
    if now_unix > exp {
        return Err(LinkError::Expired);
    }
    Ok(Claim { approval: a.into(), decision, expires: exp, nonce: n.into() })
}

/// Uses a verified link: claims its nonce (once only, across every REEF process), then decides,
/// audited as decided through a link.
pub async fn redeem(f: &Factory, claim: &Claim, reason: Option<&str>) -> Result<Approval, LinkError> {
    let fresh = f
        .ports
        .settings
        .put_if_absent(&crate::settings::Key::LinkUsed(&claim.nonce).id(), serde_json::json!(crate::time::fmt_ts(&f.now())))
        .await
        .map_err(|e| LinkError::Store(e.to_string()))?;
    if !fresh {
        return Err(LinkError::Used);
    }
    let who = format!("operator:{}", f.config.operator);
    let why = match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => format!("{r} (decided through a signed link)"),
        None => "decided through a signed link".to_string(),
    };
    f.decide(&claim.approval, claim.decision, &who, Some(&why)).await.map_err(|e| LinkError::Store(e.to_string()))
}

/// The approve and reject URLs for an `approval.requested` event, under `base` (e.g.
/// `https://reef.example.ts.net`), valid for `ttl_secs` from `now_unix`.
pub fn for_event(secret: &str, base: &str, e: &Event, now_unix: i64, ttl_secs: i64) -> Option<serde_json::Value> {
    let approval = e.data["approval"].as_str()?;
    let exp = now_unix + ttl_secs;
    let url = |d: Decision| format!("{}/decide?{}", base.trim_end_matches('/'), sign(secret, approval, d, exp, &new_id()));
    Some(serde_json::json!({"approve": url(Decision::Approve), "reject": url(Decision::Reject), "expires": exp}))
}

/// Makes the signed approve / reject links an approval request's delivery carries (if any).
pub type Links = dyn Fn(&crate::Event) -> Option<serde_json::Value> + Send + Sync;

/// The relay's link maker for this factory: signed links when `[serve]` and REEF_LINK_SECRET are
/// set, none otherwise.
pub fn maker(f: &Factory) -> std::sync::Arc<Links> {
    let (lc, clock) = (f.config.links.clone(), f.clock.clone());
    std::sync::Arc::new(move |e| {
        let lc = lc.as_ref()?;
        for_event(lc.secret.expose(), &lc.base, e, clock.now().timestamp(), DEFAULT_TTL_SECS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(qs: &str) -> std::collections::HashMap<String, String> {
        qs.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_link_verifies_until_it_expires_and_not_when_changed() {
        let qs = sign("s3cret-link-key", "ap1", Decision::Approve, 1000, "n1");
        let c = verify("s3cret-link-key", &parse(&qs), 999).unwrap();
        assert_eq!((c.approval.as_str(), c.decision), ("ap1", Decision::Approve));
        assert_eq!(verify("s3cret-link-key", &parse(&qs), 1001), Err(LinkError::Expired));
        assert_eq!(verify("another-key", &parse(&qs), 999), Err(LinkError::BadSignature));
        for (from, to) in [("d=approve", "d=reject"), ("a=ap1", "a=ap2"), ("exp=1000", "exp=9999")] {
            assert_eq!(verify("s3cret-link-key", &parse(&qs.replace(from, to)), 999), Err(LinkError::BadSignature), "{to}");
        }
        assert_eq!(verify("s3cret-link-key", &parse("a=ap1&d=approve"), 999), Err(LinkError::Malformed));
    }
}
