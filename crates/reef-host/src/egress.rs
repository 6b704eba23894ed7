//! The egress proxy contained agents' other network goes through: an HTTP proxy on a Unix socket
//! of the host that starts them, tunnelling `CONNECT host:port` only where the run's executor
//! allow-list says. Plain-HTTP proxying is refused: after its first request a connection would
//! carry whatever `Host` the agent names next.
//!
//! Invariants: a connection does nothing before its first line, the run's credential (sent by
//! `reef bridge`), resolves to a live run; each destination is checked by name before anything
//! resolves it, then by every address it resolved to (`rules::egress`); each refusal is answered
//! 403 and audited; a run's tunnels are capped and close when the run ends.

use crate::PrivateSocket;
use reef_core::engine::meter::{Meter, MeteredRun};
use reef_core::factory::Factory;
use reef_core::rules::egress::{check, listed};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UnixStream};
use tokio_util::sync::CancellationToken;

const MAX_LINE: u64 = 4096;
const MAX_HEAD: usize = 32 * 1024;
const HEAD_WAIT: Duration = Duration::from_secs(30);
const LOOKUP_WAIT: Duration = Duration::from_secs(5);
/// Connections open at once through the proxy.
const MAX_OPEN: usize = 512;
/// Refusals audited per run: an agent that retries in a loop cannot flood the log.
const AUDITED_PER_RUN: u64 = 20;

/// Serves the proxy on `path` (0600) until `shutdown`.
pub async fn run(f: Factory, meter: Meter, sock: PrivateSocket, shutdown: CancellationToken) -> Result<(), String> {
    tracing::info!(socket = %sock.file.0.display(), "egress proxy for contained agents");
    let listener = &sock.listener;
    let open = Arc::new(tokio::sync::Semaphore::new(MAX_OPEN));
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => match a {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "egress proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = open.clone().try_acquire_owned() else { continue };
        let (f, meter, stop) = (f.clone(), meter.clone(), shutdown.clone());
        tokio::spawn(async move {
            let _permit = permit;
            tokio::select! {
                r = connection(&f, &meter, stream) => if let Err(e) = r { tracing::debug!(error = %e, "egress connection ended") },
                _ = stop.cancelled() => {}
            }
        });
    }
    Ok(())
}

/// The destination of a `CONNECT`.
struct Ask {
    host: String,
    port: u16,
}

fn parse_head(head: &[u8]) -> Result<Ask, String> {
    let text = std::str::from_utf8(head).map_err(|_| "the request head is not UTF-8".to_string())?;
    let (line, rest) = text.split_once("\r\n").ok_or("no request line")?;
    let mut words = line.split(' ');
    let (method, target, version) = (words.next().unwrap_or(""), words.next().unwrap_or(""), words.next().unwrap_or(""));
    let host_port = |hp: &str, dflt: u16| -> Result<(String, u16), String> {
        let (h, p) = match hp.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                (h, p.parse::<u16>().map_err(|_| format!("bad port in {hp:?}"))?)
            }
            _ => (hp, dflt),
        };
        let h = h.trim_start_matches('[').trim_end_matches(']');
        if h.is_empty() {
            return Err(format!("no host in {hp:?}"));
        }
        Ok((h.to_string(), p))
    };
    let _ = (version, rest);
    if method != "CONNECT" {
        return Err(format!("{method} {target}: only CONNECT (https) leaves through REEF's proxy"));
    }
    let (host, port) = host_port(target, 443)?;
    Ok(Ask { host, port })
}

async fn connection(f: &Factory, meter: &Meter, stream: UnixStream) -> anyhow::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    tokio::time::timeout(HEAD_WAIT, (&mut r).take(MAX_LINE).read_line(&mut line)).await??;
    let run = match meter.authorize(line.trim()) {
        Ok(run) => run,
        Err(e) => {
            w.write_all(format!("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\nX-Reef-Error: {e}\r\n\r\n").as_bytes())
                .await?;
            anyhow::bail!("refused: {e}");
        }
    };
    // The request head, up to its blank line.
    let mut head = Vec::with_capacity(1024);
    let read_head = async {
        loop {
            let n = (&mut r).take(MAX_LINE).read_until(b'\n', &mut head).await?;
            if n == 0 || head.ends_with(b"\r\n\r\n") || head.len() > MAX_HEAD {
                return anyhow::Ok(());
            }
        }
    };
    tokio::time::timeout(HEAD_WAIT, read_head).await??;
    let ask = match parse_head(&head) {
        Ok(a) => a,
        Err(why) => return deny(f, &run, &mut w, "?", 0, &why).await,
    };
    // By name first: a name no rule lists never reaches a resolver (a lookup would carry it out).
    if let Err(e) = listed(&run.egress, &ask.host, ask.port) {
        return deny(f, &run, &mut w, &ask.host, ask.port, &e.to_string()).await;
    }
    let Some(_slot) = run.tunnel() else {
        let why = format!("the run has {} connections open through REEF's proxy", reef_core::engine::meter::MAX_TUNNELS);
        return deny(f, &run, &mut w, &ask.host, ask.port, &why).await;
    };
    let lookup = tokio::time::timeout(LOOKUP_WAIT, tokio::net::lookup_host((ask.host.as_str(), ask.port))).await;
    let resolved: Vec<std::net::SocketAddr> = match lookup {
        Ok(Ok(a)) => a.collect(),
        Ok(Err(e)) => return deny(f, &run, &mut w, &ask.host, ask.port, &format!("{} does not resolve: {e}", ask.host)).await,
        Err(_) => return deny(f, &run, &mut w, &ask.host, ask.port, &format!("{} did not resolve within {LOOKUP_WAIT:?}", ask.host)).await,
    };
    let ips: Vec<_> = resolved.iter().map(|a| a.ip()).collect();
    if let Err(e) = check(&run.egress, &ask.host, ask.port, &ips) {
        return deny(f, &run, &mut w, &ask.host, ask.port, &e.to_string()).await;
    }
    // Connects to the addresses just checked, never to a second lookup's answer.
    let mut out = tokio::time::timeout(LOOKUP_WAIT, TcpStream::connect(&resolved[..])).await??;
    w.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await?;
    // Bytes the agent sent right after its head (a TLS hello) are already in the reader's buffer.
    out.write_all(r.buffer()).await?;
    let mut inner = r.into_inner().reunite(w).map_err(|e| anyhow::anyhow!("{e}"))?;
    let closed = run.closed();
    tokio::select! {
        r = tokio::io::copy_bidirectional(&mut inner, &mut out) => { r?; }
        // The run ended: its tunnels go with its credential.
        _ = closed.cancelled() => {}
    }
    Ok(())
}

async fn deny(
    f: &Factory,
    run: &MeteredRun,
    w: &mut tokio::net::unix::OwnedWriteHalf,
    host: &str,
    port: u16,
    why: &str,
) -> anyhow::Result<()> {
    let body = format!("REEF: {why}\n");
    w.write_all(format!("HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
        .await?;
    if run.count_refusal() <= AUDITED_PER_RUN {
        let data = serde_json::json!({
            "task": run.job.task.id, "executor": run.executor, "destination": format!("{host}:{port}"), "reason": why,
        });
        let actor = format!("agent:{}", run.job.agent.name);
        let _ = f.audit(&actor, "agent.egress_refused", &run.job.task.id, serde_json::Value::Null, data.clone(), Some(why)).await;
        let _ = f.event("agent.egress_refused", &actor, Some(&run.job.task.id), data).await;
    }
    anyhow::bail!("egress refused: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tunnels_are_asked_for() {
        let a = parse_head(b"CONNECT registry.npmjs.org:443 HTTP/1.1\r\nHost: registry.npmjs.org:443\r\n\r\n").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("registry.npmjs.org", 443));
        let e = parse_head(b"GET http://example.org:8080/a HTTP/1.1\r\nHost: attacker.example\r\n\r\n").err().unwrap();
        assert!(e.contains("only CONNECT"), "{e}");
        let a = parse_head(b"CONNECT [::1]:22 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("::1", 22));
        assert!(parse_head(b"GET /local HTTP/1.1\r\n\r\n").is_err(), "origin-form is not a proxy request");
        assert!(parse_head(b"GET ftp://x/ HTTP/1.1\r\n\r\n").is_err());
    }
}
