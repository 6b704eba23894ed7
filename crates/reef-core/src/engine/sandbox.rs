//! Containment for CLI agents: the bubblewrap command line a child runs under, built up from an
//! empty root with listed binds (never down from the whole file system), and the probe that says
//! whether bubblewrap works on this machine.
//!
//! Invariant: nothing under REEF's data dir is visible inside a sandbox except what REEF binds on
//! purpose at `/run/reef` (the task's MCP socket and config); a bind that would expose the data
//! dir is refused, not silently narrowed. The only writable places are the task's working
//! directory, the executor's own home and what the operator listed as writable.

pub use crate::config::{Network, SandboxConfig, SandboxMode};
use std::path::{Path, PathBuf};

/// Where REEF's own files appear inside a sandbox.
pub const INSIDE_RUN: &str = "/run/reef";

/// One sandboxed run: what the executor's config and the job add to the fixed binds.
#[derive(Debug, Clone, Default)]
pub struct Binds {
    /// Read-write at the same path.
    pub writable: Vec<PathBuf>,
    /// Read-only at the same path.
    pub read_only: Vec<PathBuf>,
    /// Read-only, host path → path inside (REEF's socket and config under `/run/reef`).
    pub placed: Vec<(PathBuf, PathBuf)>,
}

/// Why a sandbox cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    #[error("bubblewrap cannot run here ({0}); install it (Debian: apt-get install bubblewrap), or set [sandbox] mode = \"off\" to allow unsandboxed agents")]
    Unavailable(String),
    #[error("{what} {path} would make REEF's data dir {data_dir} visible to the agent; move it out of the data dir")]
    ExposesDataDir { what: &'static str, path: String, data_dir: String },
}

/// System directories every sandbox sees read-only: programs and libraries, nothing of anyone's.
const SYSTEM_DIRS: [&str; 7] = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];
/// The parts of /etc programs need to run, resolve names and verify TLS; nothing else of /etc.
const ETC_FILES: [&str; 13] = [
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/alternatives",
    "/etc/localtime",
];

/// True when `p` is the data dir, inside it, or contains it.
fn overlaps(p: &Path, data_dir: &Path) -> bool {
    p.starts_with(data_dir) || data_dir.starts_with(p)
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
}

/// The bubblewrap argv that runs `argv` contained, its working directory `workdir`.
pub fn wrap(
    bwrap: &Path,
    argv: &[String],
    workdir: &Path,
    binds: &Binds,
    network: Network,
    data_dir: &Path,
) -> Result<Vec<String>, SandboxError> {
    let data_dir = canonical(data_dir);
    let s = |p: &Path| p.display().to_string();
    let mut out: Vec<String> = vec![s(bwrap)];
    let mut push = |a: &[&str]| out.extend(a.iter().map(|x| x.to_string()));
    // Every namespace of its own (user, pid, ipc, uts, cgroup, net), no capabilities, its own
    // session (no keystrokes injected into the operator's terminal), gone when REEF goes.
    push(&["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]);
    if network == Network::Host {
        push(&["--share-net"]);
    }
    for d in SYSTEM_DIRS {
        let p = Path::new(d);
        match std::fs::symlink_metadata(p) {
            // Merged /usr: /bin → usr/bin stays a link inside.
            Ok(m) if m.file_type().is_symlink() => {
                if let Ok(target) = std::fs::read_link(p) {
                    push(&["--symlink", &s(&target), d]);
                }
            }
            Ok(_) => push(&["--ro-bind", d, d]),
            Err(_) => {}
        }
    }
    for f in ETC_FILES {
        push(&["--ro-bind-try", f, f]);
    }
    push(&["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/run"]);
    let check = |what: &'static str, p: &Path| -> Result<PathBuf, SandboxError> {
        let c = canonical(p);
        if overlaps(&c, &data_dir) {
            return Err(SandboxError::ExposesDataDir { what, path: s(p), data_dir: s(&data_dir) });
        }
        Ok(c)
    };
    for p in &binds.read_only {
        let c = check("the read-only path", p)?;
        if c.exists() && !SYSTEM_DIRS.iter().any(|d| c.starts_with(d)) {
            let c = s(&c);
            push(&["--ro-bind", &c, &c]);
        }
    }
    for p in binds.writable.iter().chain(std::iter::once(&workdir.to_path_buf())) {
        let c = s(&check("the writable path", p)?);
        push(&["--bind", &c, &c]);
    }
    for (host, inside) in &binds.placed {
        debug_assert!(inside.starts_with(INSIDE_RUN), "REEF's own files go under /run/reef");
        push(&["--ro-bind", &s(host), &s(inside)]);
    }
    let wd = s(&canonical(workdir));
    push(&["--chdir", &wd, "--"]);
    out.extend(argv.iter().cloned());
    Ok(out)
}

/// The read-only binds an executor's own command needs: each word of the configured command
/// (never of the task's text) that names a program or file — found on `PATH` or given as a
/// path — makes the directory of its real file visible, so an npm-installed CLI finds its
/// package beside it. System directories are visible anyway.
pub fn command_paths(template: &[String], path_var: Option<&str>) -> Vec<PathBuf> {
    let mut out = vec![];
    for (i, word) in template.iter().enumerate() {
        if word.contains('{') {
            continue;
        }
        let p = Path::new(word);
        let found = if word.contains('/') {
            p.exists().then(|| p.to_path_buf())
        } else if i == 0 {
            path_var.and_then(|pv| std::env::split_paths(pv).map(|d| d.join(word)).find(|c| c.is_file()))
        } else {
            None
        };
        let Some(found) = found else { continue };
        // The link on PATH (npm's bin/claude) and the file it points to (the package's cli.js);
        // a program that lives in an npm install needs that whole `node_modules` (its packages).
        let real = canonical(&found);
        let modules = real.ancestors().find(|a| a.file_name().is_some_and(|n| n == "node_modules")).map(Path::to_path_buf);
        let dirs =
            [std::path::absolute(&found).unwrap_or(found.clone()), real].into_iter().filter_map(|f| f.parent().map(Path::to_path_buf));
        for dir in dirs.chain(modules) {
            if !out.contains(&dir) {
                out.push(dir);
            }
        }
    }
    out
}

/// Whether bubblewrap runs here: an empty sandbox that runs `true`.
pub fn probe(bwrap: &Path) -> Result<(), SandboxError> {
    let dir = std::env::temp_dir().join(format!("reef-bwrap-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| SandboxError::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
    let argv = wrap(bwrap, &["/bin/true".into()], &dir, &Binds::default(), Network::None, Path::new("/nonexistent-reef-probe"))
        .map_err(|e| SandboxError::Unavailable(e.to_string()));
    let out = argv.and_then(|argv| {
        std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| SandboxError::Unavailable(format!("cannot start {}: {e}", bwrap.display())))
    });
    let _ = std::fs::remove_dir(&dir);
    let out = out?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SandboxError::Unavailable(String::from_utf8_lossy(&out.stderr).trim().to_string()))
    }
}

/// How this host contains the agents it starts: the configured mode and, for bubblewrap,
/// whether it works here (probed once when the engine is built).
#[derive(Debug, Clone)]
pub struct Containment {
    pub mode: SandboxMode,
    /// The `bwrap` that ran the probe, or why there is none.
    pub bwrap: Result<PathBuf, String>,
    pub network: Network,
    pub work_dir: PathBuf,
    pub data_dir: PathBuf,
}

impl Containment {
    /// Probes bubblewrap when the config asks for it.
    pub fn detect(cfg: &SandboxConfig, data_dir: &Path) -> Self {
        let bwrap = match cfg.mode {
            SandboxMode::Off => Err("[sandbox] mode = \"off\"".to_string()),
            SandboxMode::Bubblewrap => match find_bwrap() {
                None => Err("bwrap is not on PATH".to_string()),
                Some(b) => probe(&b).map(|_| b).map_err(|e| match e {
                    SandboxError::Unavailable(why) => why,
                    other => other.to_string(),
                }),
            },
        };
        Self { mode: cfg.mode, bwrap, network: cfg.network, work_dir: cfg.work_dir.clone(), data_dir: data_dir.to_path_buf() }
    }

    /// No sandbox: for tests of the executor's own logic.
    pub fn off(work_dir: PathBuf, data_dir: PathBuf) -> Self {
        Self { mode: SandboxMode::Off, bwrap: Err("off".into()), network: Network::Host, work_dir, data_dir }
    }

    /// The bwrap to wrap agents in; `Ok(None)` when the operator allowed unsandboxed runs; an
    /// error when the config asks for a sandbox this machine cannot build.
    pub fn bwrap(&self) -> Result<Option<&Path>, SandboxError> {
        match (self.mode, &self.bwrap) {
            (SandboxMode::Off, _) => Ok(None),
            (SandboxMode::Bubblewrap, Ok(b)) => Ok(Some(b)),
            (SandboxMode::Bubblewrap, Err(why)) => Err(SandboxError::Unavailable(why.clone())),
        }
    }

    /// One line for `reef status` and the window.
    pub fn describe(&self) -> String {
        match (self.mode, &self.bwrap) {
            (SandboxMode::Off, _) => "off: CLI agents run unsandboxed, with REEF's own reach ([sandbox] mode = \"off\")".into(),
            (SandboxMode::Bubblewrap, Ok(b)) => {
                format!(
                    "bubblewrap ({}): CLI agents see their task's directory and nothing of REEF's; network {} by default",
                    b.display(),
                    self.network.as_str()
                )
            }
            (SandboxMode::Bubblewrap, Err(why)) => {
                format!("unavailable ({why}): CLI agents are refused until bubblewrap works or [sandbox] mode = \"off\"")
            }
        }
    }

    /// A task's working directory: under the work dir, its id made one safe path component.
    pub fn workdir(&self, task_id: &str) -> PathBuf {
        self.work_dir.join(dir_name(task_id))
    }

    /// The home an executor's agent gets for one task (its CLI's config and caches): never
    /// shared with another task, so nothing one agent plants there runs in another's sandbox.
    pub fn home(&self, executor: &str, task_id: &str) -> PathBuf {
        self.work_dir.join(".home").join(dir_name(executor)).join(dir_name(task_id))
    }
}

/// `bwrap` on `PATH`, if any.
pub fn find_bwrap() -> Option<PathBuf> {
    let pv = std::env::var_os("PATH")?;
    std::env::split_paths(&pv).map(|d| d.join("bwrap")).find(|c| c.is_file())
}

/// A task id as one safe path component: ids that are already safe keep their name; anything
/// else (a `/`, `..`, a NUL, non-ASCII, too long) becomes `id-<sha256 prefix>`, so a foreign id
/// never turns into a path outside the work dir.
pub fn dir_name(id: &str) -> String {
    let safe = !id.is_empty()
        && id.len() <= 128
        && id != "."
        && id != ".."
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if safe {
        id.to_string()
    } else {
        use sha2::Digest;
        format!("id-{}", &hex::encode(sha2::Sha256::digest(id.as_bytes()))[..24])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_ids_never_become_paths_outside_the_work_dir() {
        assert_eq!(dir_name("task-01HX.a_b"), "task-01HX.a_b");
        for hostile in ["../../etc", "/etc/passwd", "..", ".", "", "a/b", "ü-task", "a\0b", ".hidden", &"x".repeat(200)] {
            let d = dir_name(hostile);
            assert!(d.starts_with("id-") && d.len() == 27, "{hostile:?} → {d:?}");
            assert_eq!(Path::new("/w").join(&d).parent(), Some(Path::new("/w")));
        }
        assert_ne!(dir_name("../a"), dir_name("../b"), "distinct ids stay distinct");
    }

    #[test]
    fn a_bind_that_would_show_the_data_dir_is_refused() {
        let data = std::env::temp_dir().join("reef-sandbox-test-data");
        let inside = data.join("work");
        let e = wrap(Path::new("/usr/bin/bwrap"), &["true".into()], &inside, &Binds::default(), Network::None, &data).unwrap_err();
        assert!(matches!(e, SandboxError::ExposesDataDir { .. }), "{e}");
        let above = Binds { read_only: vec![std::env::temp_dir()], ..Default::default() };
        let e = wrap(Path::new("/usr/bin/bwrap"), &["true".into()], Path::new("/srv/w"), &above, Network::None, &data).unwrap_err();
        assert!(e.to_string().contains("data dir"), "{e}");
    }

    #[test]
    fn the_sandbox_is_built_up_from_listed_binds_with_no_network_by_default() {
        let argv = wrap(
            Path::new("/usr/bin/bwrap"),
            &["agent".into(), "go".into()],
            Path::new("/srv/w/t1"),
            &Binds::default(),
            Network::None,
            Path::new("/var/lib/reef"),
        )
        .unwrap();
        let line = argv.join(" ");
        assert!(line.contains("--unshare-all") && !line.contains("--share-net"), "{line}");
        assert!(!line.contains("--bind / /") && !line.contains("--ro-bind / /"), "never the whole root: {line}");
        assert!(line.contains("--bind /srv/w/t1 /srv/w/t1") && line.ends_with("--chdir /srv/w/t1 -- agent go"), "{line}");
        assert!(!line.contains("/var/lib/reef"), "{line}");
        let host = wrap(
            Path::new("/usr/bin/bwrap"),
            &["a".into()],
            Path::new("/srv/w"),
            &Binds::default(),
            Network::Host,
            Path::new("/var/lib/reef"),
        )
        .unwrap();
        assert!(host.contains(&"--share-net".to_string()));
    }
}
