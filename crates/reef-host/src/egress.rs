//! The egress proxy contained agents' other network goes through: an HTTP proxy on a Unix socket
//! of the host that starts them (`CONNECT host:port` for TLS, absolute-form requests for plain
//! HTTP), letting a connection out only where the run's executor allow-list says.
//!
//! Invariants: a connection does nothing before its first line, the run's credential (sent by
//! `reef bridge`), resolves to a live run; each destination is checked by name and by every
//! address it resolves to (`rules::egress::check`); each refusal is answered 403 and audited.

use crate::PrivateSocket;
use reef_core::engine::meter::{Meter, MeteredRun};
use reef_core::factory::Factory;
use reef_core::rules::egress::check;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UnixStream};
use tokio_util::sync::CancellationToken;

const MAX_LINE: u64 = 4096;
const MAX_HEAD: usize = 32 * 1024;
const HEAD_WAIT: Duration = Duration::from_secs(30);
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

/// What the agent asked for: a tunnel, or one plain-HTTP request (its head rewritten to origin form).
struct Ask {
    host: String,
    port: u16,
    tunnel: bool,
    head: Vec<u8>,
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
    if method == "CONNECT" {
        let (host, port) = host_port(target, 443)?;
        return Ok(Ask { host, port, tunnel: true, head: vec![] });
    }
    let rest_of_url = target
        .strip_prefix("http://")
        .ok_or_else(|| format!("{method} {target}: only CONNECT and http:// URLs go through REEF's proxy"))?;
    let (authority, path) = rest_of_url.split_once('/').map(|(a, p)| (a, format!("/{p}"))).unwrap_or((rest_of_url, "/".into()));
    let (host, port) = host_port(authority, 80)?;
    let head = format!("{method} {path} {version}\r\n{rest}").into_bytes();
    Ok(Ask { host, port, tunnel: false, head })
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
    let resolved: Vec<std::net::SocketAddr> = match tokio::net::lookup_host((ask.host.as_str(), ask.port)).await {
        Ok(a) => a.collect(),
        Err(e) => return deny(f, &run, &mut w, &ask.host, ask.port, &format!("{} does not resolve: {e}", ask.host)).await,
    };
    let ips: Vec<_> = resolved.iter().map(|a| a.ip()).collect();
    if let Err(e) = check(&run.egress, &ask.host, ask.port, &ips) {
        return deny(f, &run, &mut w, &ask.host, ask.port, &e.to_string()).await;
    }
    // Connects to the addresses just checked, never to a second lookup's answer.
    let mut out = TcpStream::connect(&resolved[..]).await?;
    if ask.tunnel {
        w.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await?;
    } else {
        out.write_all(&ask.head).await?;
    }
    let mut inner = r.into_inner().reunite(w).map_err(|e| anyhow::anyhow!("{e}"))?;
    tokio::io::copy_bidirectional(&mut inner, &mut out).await?;
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
    fn heads_are_read_as_tunnels_or_rewritten_to_origin_form() {
        let a = parse_head(b"CONNECT registry.npmjs.org:443 HTTP/1.1\r\nHost: registry.npmjs.org:443\r\n\r\n").unwrap();
        assert_eq!((a.host.as_str(), a.port, a.tunnel), ("registry.npmjs.org", 443, true));
        let a = parse_head(b"GET http://example.org:8080/a/b?c HTTP/1.1\r\nHost: example.org\r\n\r\n").unwrap();
        assert_eq!((a.host.as_str(), a.port, a.tunnel), ("example.org", 8080, false));
        assert!(a.head.starts_with(b"GET /a/b?c HTTP/1.1\r\nHost: example.org\r\n"), "{}", String::from_utf8_lossy(&a.head));
        let a = parse_head(b"CONNECT [::1]:22 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("::1", 22));
        assert!(parse_head(b"GET /local HTTP/1.1\r\n\r\n").is_err(), "origin-form is not a proxy request");
        assert!(parse_head(b"GET ftp://x/ HTTP/1.1\r\n\r\n").is_err());
    }
}
