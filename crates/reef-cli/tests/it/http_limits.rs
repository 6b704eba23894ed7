//! `reef serve`'s HTTP against clients that are slow, many, large or come by another name:
//! headers that never finish, more connections than it serves (or one peer may hold), a body past the limit on `/mcp`,
//! and the `Host` that `serve.public_url` gives.

use crate::common::{free_port, sigterm, wait_until, Env};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Sends `head` (and `body`) and reads the whole answer; returns the status code.
fn send(port: u16, head: &str, body: &[u8]) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// A connection to `port` from the loopback address `from` (127.0.0.x are all this host's, so
/// each is a peer of its own to the server).
fn connect_from(from: &str, port: u16) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let s = sock.connect(format!("127.0.0.1:{port}").parse().unwrap()).await.unwrap().into_std().unwrap();
        s.set_nonblocking(false).unwrap();
        s
    })
}

/// Whether the server closed `s` (EOF or reset) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    }
}

fn serve_http(e: &Env, port: u16) -> std::process::Child {
    e.write_config(&format!(
        "[engine]\nlease_seconds = 2\n[serve]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"https://reef.example.ts.net\"\n[memory]\nembedder = \"hashing\"\n"
    ));
    e.with_prices();
    let serve = e.serve("both", &[]);
    assert!(wait_until(Duration::from_secs(20), || TcpStream::connect(("127.0.0.1", port)).is_ok()), "reef serve did not listen");
    serve
}

#[test]
fn slow_many_and_large_clients_cost_reef_a_bounded_amount() {
    let e = Env::new();
    let port = free_port();
    let mut serve = serve_http(&e, port);

    // Headers that never finish: the connection is closed after the header deadline (10 s).
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ").unwrap();
    let t = Instant::now();
    assert!(closed_within(&mut slow, Duration::from_secs(20)), "a request whose headers never end holds its connection");
    assert!(t.elapsed() >= Duration::from_secs(5), "closed by the header deadline, not at once: {:?}", t.elapsed());

    // One peer may hold 64 connections: its 65th is closed at once while another peer is served.
    let one: Vec<TcpStream> = (0..64).map(|_| connect_from("127.0.0.2", port)).collect();
    std::thread::sleep(Duration::from_millis(300)); // let the server accept them all
    let mut extra = connect_from("127.0.0.2", port);
    assert!(closed_within(&mut extra, Duration::from_secs(3)), "the peer's 65th connection is refused at once");
    let mut other = connect_from("127.0.0.3", port);
    other.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    other.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = other.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "another peer is still served: {answer:?}");
    drop(one);

    // More connections than REEF serves (256), from four peers: the one past the limit is closed
    // at once, and REEF answers again as soon as they go.
    let held: Vec<TcpStream> = (0..256).map(|i| connect_from(&format!("127.0.0.{}", 10 + i / 64), port)).collect();
    std::thread::sleep(Duration::from_millis(300)); // let the server accept them all
    let mut extra = connect_from("127.0.0.20", port);
    assert!(closed_within(&mut extra, Duration::from_secs(3)), "the 257th connection is refused at once");
    drop(held);
    assert!(
        wait_until(Duration::from_secs(5), || send(port, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", b"")
            == 200),
        "serving again once the connections closed"
    );

    // A body past the limit on /mcp is refused before it is read (or authenticated).
    let big = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        2 * 1024 * 1024
    );
    assert_eq!(send(port, &big, b"{"), 413);
    // The Stripe webhook too (its own, smaller limit).
    let big =
        format!("POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n", 2 * 1024 * 1024);
    assert_eq!(send(port, &big, b"{"), 413);
    sigterm(&mut serve);
}

#[test]
fn mcp_answers_a_client_that_comes_by_the_public_name_and_refuses_another_host() {
    let e = Env::new();
    let port = free_port();
    let mut serve = serve_http(&e, port);
    let id = e.add_task("Reachable", &["--agent", "rex"]);
    let token = e.ok(&["mcp", "token", &id]).trim().to_string();
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let head = |host: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\r\n",
            init.len()
        )
    };
    assert_eq!(send(port, &head("reef.example.ts.net"), init.as_bytes()), 200, "the public name is accepted");
    assert_eq!(send(port, &head(&format!("127.0.0.1:{port}")), init.as_bytes()), 200, "the listen address too");
    let other = send(port, &head("evil.example"), init.as_bytes());
    assert!((400..500).contains(&other), "another Host is refused (DNS rebinding): {other}");
    sigterm(&mut serve);
}
