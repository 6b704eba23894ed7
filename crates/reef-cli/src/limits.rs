//! What `reef serve`'s HTTP accepts before any handler runs: a bounded number of connections,
//! a deadline for each request's headers, a deadline for each answer (streams excepted) and a
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
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Connections served at once; more are closed as they arrive.
pub const MAX_CONNECTIONS: usize = 256;
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
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let conns = tokio_util::task::TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => match a {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "HTTP: {MAX_CONNECTIONS} connections open; closing a new one");
            drop(stream);
            continue;
        };
        let svc = hyper_util::service::TowerToHyperService::new(app.clone());
        let stop = shutdown.clone();
        conns.spawn(async move {
            let _permit = permit;
            // HTTP/1 only: the header deadline is an HTTP/1 setting, and nothing here needs h2c.
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).http1_only();
            builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(%peer, error = %e, "HTTP connection ended");
                    }
                }
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn.as_mut()).await;
                }
            }
        });
    }
    conns.close();
    let _ = tokio::time::timeout(Duration::from_secs(10), conns.wait()).await;
    Ok(())
}
