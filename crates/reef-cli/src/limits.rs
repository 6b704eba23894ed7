//! What `reef serve`'s HTTP accepts before any handler runs: a bounded number of connections (and
//! per peer, `reef_host::http`), a deadline for each request's headers, a deadline for each answer (streams excepted) and a
//! size limit on every body, `/mcp` included.
//!
//! Invariant: a client that is slow, silent, numerous or large costs REEF a bounded amount —
//! a connection past the limit is closed at once, headers not complete in time close their
//! connection, a body past its limit is refused with 413 before it is read.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Connections served at once; more are closed as they arrive.
pub const MAX_CONNECTIONS: usize = 256;
/// Connections served at once from one address: a quarter of the slots, so one peer (a phone on a
/// flaky network, a script) cannot take them all.
pub const MAX_PER_PEER: usize = 64;
/// A request's headers must arrive within this.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// An answer (other than an MCP event stream) must be ready within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest body `/mcp` reads (a tool call's arguments are far smaller).
pub const MAX_MCP_BODY: usize = 1024 * 1024;

/// Refuses a body over `max` bytes: at once when it says its length, else when it passes it.
pub async fn limit_body(max: usize, req: Request, next: Next) -> Response {
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return (StatusCode::PAYLOAD_TOO_LARGE, format!("the body is over {max} bytes")).into_response();
    }
    let (parts, body) = req.into_parts();
    let limited = Request::from_parts(parts, Body::new(http_body_util::Limited::new(body, max)));
    next.run(limited).await
}

/// Fails an answer that takes longer than `REQUEST_TIMEOUT` with 503.
pub async fn deadline(req: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the answer took too long").into_response(),
    }
}

/// Serves `app` on `listener` until `shutdown`, within the limits above.
pub async fn serve(listener: TcpListener, app: Router, shutdown: CancellationToken) -> anyhow::Result<()> {
    let bounds = reef_host::http::Bounds { max_connections: MAX_CONNECTIONS, per_peer: MAX_PER_PEER, header_timeout: HEADER_TIMEOUT };
    reef_host::http::serve(listener, app, bounds, shutdown).await.map_err(|e| anyhow::anyhow!(e))
}
