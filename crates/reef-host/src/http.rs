//! Serving HTTP within bounds, on every listener a host has (`reef serve`'s port, the metered
//! endpoint's Unix socket): a bounded number of connections, a bounded number from any one peer,
//! and a deadline for each request's headers.
//!
//! Invariant: a client that is slow, silent or numerous costs REEF a bounded amount — a connection
//! past either limit is closed at once, headers not complete in time close their connection — and
//! one peer can never take every slot from the others.

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What one server accepts.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_connections: usize,
    /// Connections open at once from one peer address (a Unix socket's clients are one peer).
    pub per_peer: usize,
    pub header_timeout: Duration,
}

/// A listener whose connections `serve` bounds.
pub trait Accept: Send + 'static {
    type Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;
    /// The next connection and its peer's address (`None`: a local socket).
    fn next(&self) -> impl std::future::Future<Output = std::io::Result<(Self::Io, Option<IpAddr>)>> + Send;
}

impl Accept for tokio::net::TcpListener {
    type Io = tokio::net::TcpStream;
    async fn next(&self) -> std::io::Result<(Self::Io, Option<IpAddr>)> {
        let (s, a) = self.accept().await?;
        Ok((s, Some(a.ip())))
    }
}

impl Accept for tokio::net::UnixListener {
    type Io = tokio::net::UnixStream;
    async fn next(&self) -> std::io::Result<(Self::Io, Option<IpAddr>)> {
        Ok((self.accept().await?.0, None))
    }
}

/// Open connections per peer; a peer's entry goes with its last connection.
type PerPeer = Arc<Mutex<HashMap<Option<IpAddr>, usize>>>;

struct PeerSlot(PerPeer, Option<IpAddr>);

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown`, within `bounds`.
pub async fn serve<L: Accept>(listener: L, app: Router, bounds: Bounds, shutdown: CancellationToken) -> Result<(), String> {
    let slots = Arc::new(tokio::sync::Semaphore::new(bounds.max_connections));
    let per_peer: PerPeer = Default::default();
    let conns = tokio_util::task::TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.next() => match a {
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
            tracing::warn!(?peer, "HTTP: {} connections open; closing a new one", bounds.max_connections);
            continue;
        };
        let slot = {
            let mut m = per_peer.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.entry(peer).or_default();
            if *n >= bounds.per_peer {
                tracing::warn!(?peer, "HTTP: {} connections open from this peer; closing a new one", bounds.per_peer);
                continue;
            }
            *n += 1;
            PeerSlot(per_peer.clone(), peer)
        };
        let svc = hyper_util::service::TowerToHyperService::new(app.clone());
        let stop = shutdown.clone();
        conns.spawn(async move {
            let (_permit, _slot) = (permit, slot);
            // HTTP/1 only: the header deadline is an HTTP/1 setting, and nothing here needs h2c.
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).http1_only();
            builder.http1().timer(TokioTimer::new()).header_read_timeout(bounds.header_timeout);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(?peer, error = %e, "HTTP connection ended");
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
