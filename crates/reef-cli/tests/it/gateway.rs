//! A real LiteLLM proxy on 127.0.0.1, started once per test run from tests/fixtures/litellm-test.yaml
//! (mocked providers: no paid key can exist here). Tests that need it are skipped, saying so,
//! when LiteLLM is not installed (`bash scripts/test.sh` installs it).

use crate::common::free_port;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

pub struct Gateway {
    pub url: String,
    pub key: String,
    pub config: PathBuf,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn binary() -> Option<PathBuf> {
    if let Ok(b) = std::env::var("REEF_LITELLM_BIN") {
        return Some(PathBuf::from(b)).filter(|p| p.exists());
    }
    let home = std::env::var("HOME").ok()?;
    Some(PathBuf::from(home).join(".cache/reef/litellm-venv/bin/litellm")).filter(|p| p.exists())
}

fn healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health/liveliness HTTP/1.0\r\nHost: localhost\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200")
}

/// Starts a proxy on `config`, stopped when this test process ends; `None` when LiteLLM is not
/// installed.
fn start(config: PathBuf) -> Option<Gateway> {
    let bin = binary()?;
    // A free port can be taken by a parallel test before LiteLLM binds it: then another port.
    for _ in 0..3 {
        let port = free_port();
        let log_path = std::env::temp_dir().join(format!("reef-litellm-{port}.log"));
        let log = std::fs::File::create(&log_path).ok()?;
        // A watchdog shell stops the proxy when this test process ends, however it ends.
        let me = std::process::id();
        Command::new("sh")
            .args(["-c", r#""$0" --config "$1" --port "$2" & c=$!; while kill -0 "$3" 2>/dev/null; do sleep 0.5; done; kill $c"#])
            .args([bin.to_str()?, config.to_str()?, &port.to_string(), &me.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .ok()?;
        let taken = || std::fs::read_to_string(&log_path).is_ok_and(|l| l.contains("address already in use"));
        crate::common::wait_until(Duration::from_secs(120), || healthy(port) || taken());
        if healthy(port) {
            return Some(Gateway { url: format!("http://127.0.0.1:{port}"), key: "sk-reef-test-master".into(), config });
        }
        assert!(taken(), "LiteLLM did not become healthy on port {port}; see {}", log_path.display());
        eprintln!("port {port} was taken before LiteLLM bound it; trying another");
    }
    panic!("LiteLLM found no free port in three tries");
}

fn skipped(test: &str) {
    eprintln!("SKIPPED {test}: LiteLLM is not installed (bash scripts/test.sh installs it into ~/.cache/reef/litellm-venv)");
}

/// The shared proxy, or `None` (after printing why) when LiteLLM is not installed.
pub fn gateway(test: &str) -> Option<&'static Gateway> {
    static G: OnceLock<Option<Gateway>> = OnceLock::new();
    let g = G.get_or_init(|| start(root().join("tests/fixtures/litellm-test.yaml")));
    if g.is_none() {
        skipped(test);
    }
    g.as_ref()
}

/// A proxy of the test's own on `config` (its master key must be `sk-reef-test-master`).
pub fn gateway_with(test: &str, config: PathBuf) -> Option<Gateway> {
    let g = start(config);
    if g.is_none() {
        skipped(test);
    }
    g
}
