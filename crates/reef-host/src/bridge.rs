//! `reef bridge`: what runs first inside a contained agent's sandbox. It listens on the sandbox's
//! own loopback and carries each connection to one of REEF's sockets bound in at `/run/reef` (the
//! metered LLM endpoint, the egress proxy), then runs the agent with the base URLs and proxy
//! variables pointing there, and exits as the agent exits.
//!
//! Invariant: it opens no config, no store and no file but the sockets it is given; on the proxy
//! socket it speaks first with the run's credential, so the proxy applies that run's allow-list.

use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, UnixStream};

/// `PORT=SOCKET` (port 0: any free one).
fn forward(spec: &str) -> Result<(u16, PathBuf), String> {
    let (p, s) = spec.split_once('=').ok_or_else(|| format!("{spec:?}: expected PORT=SOCKET"))?;
    let port = p.parse::<u16>().map_err(|_| format!("{p:?} is not a port"))?;
    Ok((port, PathBuf::from(s)))
}

struct Args {
    llm: Option<(u16, PathBuf)>,
    proxy: Option<(u16, PathBuf)>,
    argv: Vec<String>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args { llm: None, proxy: None, argv: vec![] };
    let mut it = args.iter();
    while let Some(x) = it.next() {
        match x.as_str() {
            "--llm" => a.llm = Some(forward(it.next().ok_or("--llm needs PORT=SOCKET")?)?),
            "--proxy" => a.proxy = Some(forward(it.next().ok_or("--proxy needs PORT=SOCKET")?)?),
            "--" => {
                a.argv = it.cloned().collect();
                break;
            }
            other => {
                return Err(format!(
                    "unexpected argument {other:?} (usage: reef bridge [--llm PORT=SOCKET] [--proxy PORT=SOCKET] -- COMMAND…)"
                ))
            }
        }
    }
    if a.argv.is_empty() {
        return Err("no command after --".into());
    }
    Ok(a)
}

/// Forwards each connection to 127.0.0.1:`port` (0: any free one) to `socket`, after `first_line` when
/// given; the address it listens on.
pub async fn listen(port: u16, socket: PathBuf, first_line: Option<String>) -> std::io::Result<SocketAddr> {
    let l = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = l.accept().await {
            let (socket, first) = (socket.clone(), first_line.clone());
            // No Nagle: a request's last small write would wait for the delayed ACK (~40 ms a call).
            let _ = tcp.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut unix) = UnixStream::connect(&socket).await else { return };
                if let Some(line) = first {
                    if unix.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                        return;
                    }
                }
                let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
            });
        }
    });
    Ok(addr)
}

/// Runs the bridge and the agent; the agent's exit code (128 + signal when it was killed).
pub async fn run(args: &[String]) -> i32 {
    let a = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("reef bridge: {e}");
            return 2;
        }
    };
    let mut cmd = tokio::process::Command::new(&a.argv[0]);
    cmd.args(&a.argv[1..]);
    if let Some((port, socket)) = a.llm {
        match listen(port, socket, None).await {
            Ok(addr) => {
                let base = format!("http://{addr}");
                cmd.env("REEF_LLM_BASE_URL", &base)
                    .env("ANTHROPIC_BASE_URL", &base)
                    .env("GOOGLE_GEMINI_BASE_URL", &base)
                    .env("OPENAI_BASE_URL", format!("{base}/v1"));
            }
            Err(e) => {
                eprintln!("reef bridge: cannot listen on 127.0.0.1:{port}: {e}");
                return 1;
            }
        }
    }
    if let Some((port, socket)) = a.proxy {
        let credential = std::env::var("REEF_LLM_API_KEY").unwrap_or_default();
        match listen(port, socket, Some(credential)).await {
            Ok(addr) => {
                let url = format!("http://{addr}");
                for k in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"] {
                    cmd.env(k, &url);
                }
                // The metered endpoint is on this loopback too, and is not to be proxied.
                cmd.env("NO_PROXY", "127.0.0.1,localhost").env("no_proxy", "127.0.0.1,localhost");
            }
            Err(e) => {
                eprintln!("reef bridge: cannot listen on 127.0.0.1:{port}: {e}");
                return 1;
            }
        }
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("reef bridge: cannot start {:?}: {e}", a.argv[0]);
            return 127;
        }
    };
    // A TERM for the sandbox is a TERM for the agent.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let status = loop {
        tokio::select! {
            s = child.wait() => break s,
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {
                if let Some(pid) = child.id() {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
                }
            }
        }
    };
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
        Err(e) => {
            eprintln!("reef bridge: waiting for the agent: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_forwards_then_the_command() {
        let a = parse(&["--llm", "4100=/run/reef/llm.sock", "--proxy", "0=/p", "--", "agent", "--x"].map(String::from)).unwrap();
        assert_eq!(a.llm, Some((4100, PathBuf::from("/run/reef/llm.sock"))));
        assert_eq!(a.proxy, Some((0, PathBuf::from("/p"))));
        assert_eq!(a.argv, ["agent", "--x"]);
        assert!(parse(&["--llm".into(), "x".into()]).is_err());
        assert!(parse(&["--".into()]).is_err());
        assert!(parse(&["--what".into(), "--".into(), "a".into()]).is_err());
    }
}
