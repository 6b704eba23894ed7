//! Running the real `reef` binary against a store in a temp dir.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Env {
    pub dir: tempfile::TempDir,
    /// Where agents' working directories go: outside the data dir (`dir`), removed with the test.
    pub work: tempfile::TempDir,
    /// Environment every command of this test gets (e.g. a webhook secret the config names).
    extra: std::cell::RefCell<Vec<(String, String)>>,
}

impl Env {
    pub fn new() -> Self {
        let e = Self { dir: tempfile::tempdir().unwrap(), work: tempfile::tempdir().unwrap(), extra: Default::default() };
        e.write_config("");
        e
    }
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_reef"));
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("REEF_DATA_DIR", self.dir.path())
            .env("REEF_WORK_DIR", self.work.path())
            .env("REEF_CONFIG", self.dir.path().join("config.toml"))
            .env("HOSTNAME", "testhost")
            .env("USER", "tester");
        for (k, v) in self.extra.borrow().iter() {
            c.env(k, v);
        }
        c
    }
    pub fn set_env(&self, k: &str, v: &str) {
        self.extra.borrow_mut().push((k.into(), v.into()));
    }
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "reef {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }
    /// `reef args` that must fail; what it said (stderr, then stdout).
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().unwrap();
        assert!(!out.status.success(), "reef {args:?} succeeded but should have failed: {}", String::from_utf8_lossy(&out.stdout));
        format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout))
    }
    /// `reef task add TITLE extra…`; the new task's id.
    pub fn add_task(&self, title: &str, extra: &[&str]) -> String {
        let mut a = vec!["task", "add", title];
        a.extend_from_slice(extra);
        self.json(&a)["_id"].as_str().unwrap_or_else(|| panic!("task add {title:?} printed no id")).to_string()
    }
    /// A directory outside the data dir that agents may write (their side effects, for the
    /// test to read), and the executor setting that makes it writable inside their sandbox.
    pub fn fx(&self) -> std::path::PathBuf {
        let d = self.work.path().join("fx");
        std::fs::create_dir_all(&d).unwrap();
        d
    }
    pub fn fx_writable(&self) -> String {
        format!("writable = [{:?}]\n", self.fx().display().to_string())
    }
    /// `json` with another `PATH` (e.g. one without bubblewrap).
    pub fn json_with_path(&self, path: &str, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.cmd().env("PATH", path).args(&a).output().unwrap();
        assert!(out.status.success(), "reef {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
    pub fn write_config(&self, text: &str) {
        std::fs::write(self.dir.path().join("config.toml"), text).unwrap();
    }
}

impl Env {
    /// Starts `reef serve` with extra environment; its log goes to `serve-<n>.log` in the dir.
    pub fn serve(&self, role: &str, extra_env: &[(&str, &str)]) -> Child {
        let n = std::fs::read_dir(self.dir.path()).map(|d| d.count()).unwrap_or(0);
        let log = std::fs::File::create(self.dir.path().join(format!("serve-{n}.log"))).unwrap();
        let mut c = self.cmd();
        c.args(["serve", "--role", role]).env("REEF_LOG", "info").stdout(Stdio::null()).stderr(log);
        for (k, v) in extra_env {
            c.env(k, v);
        }
        c.spawn().unwrap()
    }

    /// Puts the shipped litellm-config.yaml (model prices) beside the config file.
    pub fn with_prices(&self) {
        std::fs::write(self.dir.path().join("litellm-config.yaml"), std::fs::read_to_string(root().join("litellm-config.yaml")).unwrap())
            .unwrap();
    }

    pub fn tasks(&self) -> Vec<serde_json::Value> {
        self.json(&["task", "list", "--limit", "100000"])["tasks"].as_array().cloned().unwrap_or_default()
    }

    pub fn count(&self, status: &str) -> usize {
        self.tasks().iter().filter(|t| t["status"] == status).count()
    }
}

/// A port nothing listens on now (for a server the test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Config defaults for a factory built in-process over `dir` (UTC, host `test`).
pub fn defaults_in(dir: &std::path::Path) -> reef_core::config::Defaults {
    reef_core::config::Defaults { data_dir: dir.into(), machine_timezone: Some("UTC".into()), host: "test".into(), cache_dir: dir.into() }
}

pub fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

/// Starts `python3 ARGS…`, a stand-in server that listens on `port`, stopped when this test
/// process ends; waits until it listens.
pub fn python_server(args: &[&str], port: u16, what: &str) {
    let me = std::process::id().to_string();
    let mut child = Command::new("sh")
        .args(["-c", r#"me="$1"; shift; python3 "$@" & c=$!; while kill -0 "$me" 2>/dev/null; do sleep 0.5; done; kill $c"#, "sh", &me])
        .args(args)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::spawn(move || child.wait());
    assert!(wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()), "{what} started");
}

pub fn sigterm(child: &mut Child) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();
}

pub fn sigkill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The MiniLM model's folder, or `None` (after saying SKIPPED) where it was not fetched.
/// scripts/test.sh fetches it and sets REEF_REQUIRE_MODEL, so CI never skips.
pub fn model_dir() -> Option<std::path::PathBuf> {
    let dir = std::env::var("REEF_EMBED_MODEL_DIR").map(std::path::PathBuf::from).unwrap_or_else(|_| {
        std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/reef/models/all-minilm-l6-v2")
    });
    if dir.join("model.safetensors").is_file() {
        return Some(dir);
    }
    assert!(std::env::var("REEF_REQUIRE_MODEL").is_err(), "REEF_REQUIRE_MODEL is set but the model is not in {}", dir.display());
    eprintln!("SKIPPED: the MiniLM model is not in {} (run scripts/setup-model.sh)", dir.display());
    None
}

/// A private D-Bus session with gnome-keyring unlocked in it (a real Secret Service), or `None`
/// (after saying SKIPPED) where the machine has neither. scripts/test.sh installs both and sets
/// REEF_REQUIRE_KEYRING, so CI never skips.
pub struct Keyring {
    pub bus: String,
    pid: i32,
    _dir: tempfile::TempDir,
}

impl Keyring {
    pub fn start() -> Option<Self> {
        let have = |bin: &str| Command::new("sh").args(["-c", &format!("command -v {bin}")]).output().is_ok_and(|o| o.status.success());
        if !(have("dbus-daemon") && have("gnome-keyring-daemon")) {
            assert!(
                std::env::var("REEF_REQUIRE_KEYRING").is_err(),
                "REEF_REQUIRE_KEYRING is set but dbus-daemon / gnome-keyring-daemon are missing"
            );
            eprintln!("SKIPPED: no dbus-daemon or gnome-keyring-daemon here (apt install dbus gnome-keyring)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("dbus-daemon").args(["--session", "--fork", "--print-address=1", "--print-pid=1"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut lines = text.lines();
        let bus = lines.next().unwrap_or_default().trim().to_string();
        let pid: i32 = lines.next().unwrap_or_default().trim().parse().unwrap_or(0);
        assert!(!bus.is_empty() && pid > 0, "dbus-daemon did not start: {text}");
        let mut unlock = Command::new("gnome-keyring-daemon")
            .args(["--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &bus)
            .env("XDG_DATA_HOME", dir.path())
            .env("XDG_RUNTIME_DIR", dir.path())
            .env("HOME", dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        unlock.stdin.take().unwrap().write_all(b"test-password").unwrap();
        unlock.wait().unwrap();
        Some(Self { bus, pid, _dir: dir })
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        // The keyring daemon exits with its bus.
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), nix::sys::signal::Signal::SIGTERM);
    }
}

/// Runs git in `repo` as a test author; panics with git's words when it fails.
pub fn git_in(repo: &std::path::Path, args: &[&str]) -> String {
    let o =
        Command::new("git").args(["-c", "user.email=t@t", "-c", "user.name=t", "-C", repo.to_str().unwrap()]).args(args).output().unwrap();
    assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}
