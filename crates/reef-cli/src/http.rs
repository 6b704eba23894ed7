//! What `reef serve` answers over HTTP: the Stripe webhook. Invariant: nothing in a request is
//! read before its signature is verified, and Stripe is told to retry only when REEF failed
//! (a store error), never for a request REEF refused.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
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
        .layer(DefaultBodyLimit::max(stripe::MAX_PAYLOAD))
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
        return refused(e);
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

/// Serves `router` on the configured address until `shutdown`.
pub async fn run(factory: Factory, addr: std::net::SocketAddr, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr} (serve.listen): {e}"))?;
    tracing::info!(%addr, "HTTP: POST /webhooks/stripe");
    axum::serve(listener, router(factory)).with_graceful_shutdown(async move { shutdown.cancelled().await }).await?;
    Ok(())
}
