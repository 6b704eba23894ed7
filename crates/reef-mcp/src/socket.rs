//! The channel a contained agent reaches REEF's tools through: a Unix socket served by the host
//! that runs the agent, bound into the sandbox on its own, and `reef mcp --connect`, a bridge
//! that carries the agent's stdio MCP session over it. The agent holds its task token and the
//! socket — never the store's address, the config or the data dir.
//!
//! Invariant: a connection does nothing before its first line, the task token, resolves to a
//! caller; every later request is authenticated by the toolbox with that token.

use crate::{toolbox, ReefMcp};
use reef_core::factory::Factory;
use rmcp::ServiceExt;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio_util::sync::CancellationToken;

/// Longest first line (the token) a connection may send, and how long it has to send it.
const MAX_TOKEN_LINE: u64 = 4096;
const TOKEN_WAIT: Duration = Duration::from_secs(10);
/// Sessions served at once (more are closed as they arrive), and at once per task token: one
/// agent cannot take every session from the others.
const MAX_SESSIONS: usize = 256;
const MAX_SESSIONS_PER_TOKEN: usize = 8;

/// Serves MCP sessions on `path` until `shutdown`; the socket file is this user's only (0600) and
/// removed when the loop ends.
pub async fn run(f: Factory, sock: reef_host::PrivateSocket, shutdown: CancellationToken) -> anyhow::Result<()> {
    tracing::info!(socket = %sock.file.0.display(), "MCP socket for contained agents");
    let listener = &sock.listener;
    let tb = toolbox(&f);
    let sessions = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_SESSIONS));
    let per_token: PerToken = Default::default();
    let result = loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "MCP socket accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = sessions.clone().try_acquire_owned() else {
            tracing::warn!("MCP socket: {MAX_SESSIONS} sessions open; closing a new one");
            drop(stream);
            continue;
        };
        let tb = tb.clone();
        let stop = shutdown.clone();
        let per_token = per_token.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = session(tb, stream, stop, per_token).await {
                tracing::debug!(error = %e, "MCP socket session ended");
            }
        });
    };
    result
}

/// Open sessions per token.
type PerToken = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>;

async fn session(
    tb: reef_core::toolbox::Toolbox,
    stream: UnixStream,
    shutdown: CancellationToken,
    per_token: PerToken,
) -> anyhow::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    let read = tokio::time::timeout(TOKEN_WAIT, (&mut r).take(MAX_TOKEN_LINE).read_line(&mut line)).await;
    if !matches!(read, Ok(Ok(n)) if n > 0 && line.ends_with('\n')) {
        w.write_all(b"error: send the task token on the first line\n").await?;
        anyhow::bail!("no token line");
    }
    let token = line.trim().to_string();
    if let Err(e) = reef_core::toolbox::resolve(&tb.factory, &token).await {
        w.write_all(format!("error: {e}\n").as_bytes()).await?;
        anyhow::bail!("refused: {e}");
    }
    let full = {
        let mut m = per_token.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(token.clone()).or_default();
        let full = *n >= MAX_SESSIONS_PER_TOKEN;
        if !full {
            *n += 1;
        }
        full
    };
    if full {
        w.write_all(format!("error: this token already has {MAX_SESSIONS_PER_TOKEN} sessions open\n").as_bytes()).await?;
        anyhow::bail!("too many sessions for one token");
    }
    let served = async {
        w.write_all(b"ok\n").await?;
        // The buffered reader goes on: whatever the client sent after its token is not lost.
        let server = ReefMcp::new(tb, Some(token.clone())).serve((r, w)).await?;
        tokio::select! {
            r = server.waiting() => { r?; }
            _ = shutdown.cancelled() => {}
        }
        anyhow::Ok(())
    }
    .await;
    let mut m = per_token.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(n) = m.get_mut(&token) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            m.remove(&token);
        }
    }
    served
}

/// `reef mcp --connect SOCKET`: the agent's MCP server as it sees one — stdio — carried over the
/// socket with the token from `REEF_MCP_TOKEN`. Opens no config and no store.
pub async fn connect(path: &Path, token: &str) -> anyhow::Result<()> {
    let stream = UnixStream::connect(path).await.map_err(|e| anyhow::anyhow!("cannot reach REEF's MCP socket {}: {e}", path.display()))?;
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    w.write_all(format!("{}\n", token.trim()).as_bytes()).await?;
    let mut answer = String::new();
    tokio::time::timeout(TOKEN_WAIT, (&mut r).take(MAX_TOKEN_LINE).read_line(&mut answer))
        .await
        .map_err(|_| anyhow::anyhow!("reef mcp: REEF's MCP socket did not answer within {TOKEN_WAIT:?}"))??;
    if answer.trim() != "ok" {
        anyhow::bail!("reef mcp: {}", answer.trim().trim_start_matches("error: "));
    }
    let up = async {
        let mut stdin = tokio::io::stdin();
        tokio::io::copy(&mut stdin, &mut w).await?;
        w.shutdown().await
    };
    let down = async {
        let mut stdout = tokio::io::stdout();
        tokio::io::copy(&mut r, &mut stdout).await?;
        stdout.flush().await
    };
    // The session ends when REEF closes it; the agent closing stdin only ends the way up.
    let (_, d) = tokio::join!(up, down);
    d?;
    Ok(())
}

/// The loop a host hands `reef_host::loops::spawn`: this module's `run`.
pub fn server() -> reef_host::loops::McpSocketServer {
    Box::new(|f, sock, s| Box::pin(async move { run(f, sock, s).await.map_err(|e| format!("{e:#}")) }))
}
