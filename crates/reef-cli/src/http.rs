//! What `reef serve` answers over HTTP: the Stripe webhook, signed approve / reject links, and
//! the MCP endpoint (`/mcp`, see the reef-mcp crate).
//! Invariant: nothing in a request is read before its signature is verified; Stripe is told to
//! retry only when REEF failed (a store error), never for a request REEF refused; a link decides
//! only on POST (previews fetch with GET) and only once.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Html;
use axum::routing::{get, post};
use axum::Form;
use axum::{Json, Router};
use reef_core::factory::Factory;
use reef_core::stripe::{self, StripeError, StripeIntake};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct Deps {
    factory: Factory,
}

pub fn router(factory: Factory) -> Router {
    Router::new()
        .route("/webhooks/stripe", post(stripe_webhook))
        .route("/health", get(|| async { "ok" }))
        .route("/decide", get(decide_page).post(decide))
        .layer(DefaultBodyLimit::max(stripe::MAX_PAYLOAD))
        .layer(axum::middleware::from_fn(move |req, next| crate::limits::limit_body(stripe::MAX_PAYLOAD, req, next)))
        .layer(axum::middleware::from_fn(crate::limits::deadline))
        .with_state(Deps { factory })
}

async fn stripe_webhook(State(d): State<Deps>, headers: HeaderMap, body: Bytes) -> (StatusCode, Json<serde_json::Value>) {
    let f = &d.factory;
    let Some(secret) = f.config.stripe.webhook_secret.as_ref() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "this REEF has no REEF_STRIPE_WEBHOOK_SECRET; it cannot verify Stripe events"})),
        );
    };
    let header = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    let now = f.now().timestamp();
    let refused = |e: StripeError| {
        tracing::warn!(error = %e, "Stripe webhook refused");
        let status = if e.is_retryable() { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::BAD_REQUEST };
        (status, Json(json!({"error": e.to_string()})))
    };
    if let Err(e) = stripe::verify(secret.expose(), header, &body, now, f.config.stripe.tolerance_seconds) {
        return refused(e.into());
    }
    let intake = match StripeIntake::new(f.ports.clone(), "webhook").await {
        Ok(i) => i,
        Err(e) => return refused(StripeError::Store(e)),
    };
    match intake.ingest(&body).await {
        Ok(o) => {
            tracing::info!(event = %o.event, kind = %o.kind, result = %o.result, "Stripe event");
            (StatusCode::OK, Json(serde_json::to_value(&o).unwrap_or_default()))
        }
        Err(e) => refused(e),
    }
}

type Params = std::collections::HashMap<String, String>;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn page(status: StatusCode, title: &str, body: &str) -> (StatusCode, Html<String>) {
    (
        status,
        Html(format!(
            "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'><title>REEF · {t}</title>\
             <body style='font-family:sans-serif;max-width:32em;margin:2em auto;padding:0 1em'><h1>{t}</h1>{body}</body>",
            t = esc(title)
        )),
    )
}

fn link_error(e: reef_core::links::LinkError) -> (StatusCode, Html<String>) {
    use reef_core::links::LinkError as L;
    let status = match e {
        L::Malformed => StatusCode::BAD_REQUEST,
        L::BadSignature => StatusCode::FORBIDDEN,
        L::Expired | L::Used => StatusCode::GONE,
        L::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    page(status, "Link refused", &format!("<p>{}</p>", esc(&e.to_string())))
}

/// A link's claim, or the page that refuses it (links off, changed, expired).
fn checked(f: &Factory, q: &Params) -> Result<reef_core::links::Claim, (StatusCode, Html<String>)> {
    let Some(cfg) = f.config.links.as_ref() else {
        return Err(page(StatusCode::NOT_FOUND, "Links are off", "<p>This REEF signs no links.</p>"));
    };
    reef_core::links::verify(cfg.secret.expose(), q, f.now().timestamp()).map_err(link_error)
}

/// GET: what the link would do, with a button (chat apps fetch links to preview them; a GET
/// never decides).
async fn decide_page(State(d): State<Deps>, Query(q): Query<Params>) -> (StatusCode, Html<String>) {
    let f = &d.factory;
    let claim = match checked(f, &q) {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let (what, task) = match f.ports.approvals.get(&claim.approval).await {
        Ok(a) => {
            let title = f.ports.tasks.get(&a.task_id).await.map(|t| t.title).unwrap_or_default();
            (format!("{} — {:?}", a.action_class, a.status).to_lowercase(), title)
        }
        Err(e) => return page(StatusCode::NOT_FOUND, "Unknown request", &format!("<p>{}</p>", esc(&e.to_string()))),
    };
    let verb = if claim.decision == reef_core::Decision::Approve { "Approve" } else { "Reject" };
    let hidden: String = ["a", "d", "exp", "n", "sig"]
        .iter()
        .map(|k| format!("<input type=hidden name={k} value=\"{}\">", esc(q.get(*k).map(String::as_str).unwrap_or(""))))
        .collect();
    let reason = if verb == "Reject" {
        "<p><textarea name=reason required placeholder='Why (required)' rows=3 style='width:100%'></textarea></p>"
    } else {
        "<p><input name=reason placeholder='Note (optional)' style='width:100%'></p>"
    };
    page(
        StatusCode::OK,
        &format!("{verb}?"),
        &format!("<p><b>{}</b></p><p>{}</p><form method=post action=/decide>{hidden}{reason}<button style='font-size:1.2em'>{verb}</button></form>", esc(&task), esc(&what)),
    )
}

/// POST: uses the link (once) and records the decision, audited as decided through a link.
async fn decide(State(d): State<Deps>, Form(q): Form<Params>) -> (StatusCode, Html<String>) {
    let f = &d.factory;
    let claim = match checked(f, &q) {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    match reef_core::links::redeem(f, &claim, q.get("reason").map(String::as_str)).await {
        Ok(a) => page(StatusCode::OK, "Done", &format!("<p>The request is now <b>{}</b>.</p>", esc(a.status.as_str()))),
        Err(e) => link_error(e),
    }
}

/// Serves `router` on the configured address until `shutdown`.
pub async fn run(factory: Factory, addr: std::net::SocketAddr, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr} (serve.listen): {e}"))?;
    tracing::info!(%addr, "HTTP: POST /webhooks/stripe, /decide, /mcp");
    // /mcp streams events, so it gets a body limit but no answer deadline.
    let mcp = reef_mcp::http_service(&factory, shutdown.clone())
        .layer(axum::middleware::from_fn(|req, next| crate::limits::limit_body(crate::limits::MAX_MCP_BODY, req, next)));
    let app = router(factory.clone()).merge(mcp);
    crate::limits::serve(listener, app, shutdown).await
}
