//! `run_command`: one program (argv, never a shell line) from the task's action-class list, in
//! the task's directory, under bubblewrap like a CLI agent; killed as a group at its time limit,
//! on cancel, and — through its pidfile — by the next REEF when this one died mid-command.

use super::{Workspace, WorkspaceError};
use crate::engine::children::{children_of, proc_start_time, CappedOutput};
use crate::engine::sandbox::{self, Binds};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

/// Output (stdout and stderr together) one command answers: head and tail.
const OUTPUT_CAP: usize = 32 * 1024;
/// Where a contained command finds its programs (with the `bin` of each `[engine] loop_read_only`).
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Bytes of one command line.
const COMMAND_MAX: usize = 8 * 1024;

pub(super) async fn run(ws: &Workspace<'_>, args: &Value, cancel: &CancellationToken) -> Result<Value, WorkspaceError> {
    let line = args
        .get("command")
        .and_then(Value::as_str)
        .ok_or_else(|| WorkspaceError::Invalid("command is required and must be a string".into()))?;
    if line.len() > COMMAND_MAX {
        return Err(WorkspaceError::TooLarge { what: "the command".into(), size: line.len() as u64, limit: COMMAND_MAX as u64 });
    }
    let argv = shlex::split(line)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| WorkspaceError::Invalid("the command cannot be split into words (an unclosed quote?) or is empty".into()))?;
    let program = &argv[0];
    // A bare name from the list, found on PATH: a path would run whatever the agent wrote there.
    if program.contains('/') || !ws.programs.iter().any(|p| p == program) {
        return Err(WorkspaceError::NotAllowed {
            program: program.chars().take(100).collect(),
            class: ws.task.action_class.clone().unwrap_or_else(|| "default".into()),
            allowed: if ws.programs.is_empty() { "nothing".into() } else { ws.programs.join(", ") },
        });
    }
    let limit = match args.get("timeout_seconds").and_then(Value::as_u64) {
        Some(s) => Duration::from_secs(s.max(1)).min(ws.command_time),
        None => ws.command_time,
    };
    let c = &ws.reach.containment;
    let home = c.home("reef-loop", &ws.task.id);
    crate::engine::agent_files::private_dir(&home)
        .map_err(|e| WorkspaceError::Io(format!("cannot create its home {}: {e}", home.display())))?;
    // Only ever contained: with the sandbox off, an allow-listed python3 or make would run with
    // REEF's own reach (its data dir, keyring, store).
    let bwrap = match c.bwrap() {
        Ok(Some(b)) => b,
        Ok(None) => return Err(WorkspaceError::NotRunnable(
            "run_command runs only in the sandbox, and [sandbox] mode = \"off\" here: give the task to a CLI agent, or turn the sandbox on"
                .into(),
        )),
        Err(e) => return Err(WorkspaceError::NotRunnable(e.to_string())),
    };
    // A program is found among the system's folders and the operator's listed ones (a PATH
    // entry outside them — a pyenv shim, say — would name what the sandbox cannot see).
    let extra = ws.read_only.iter().map(|p| p.join("bin")).filter(|b| b.is_dir()).map(|b| b.display().to_string());
    let path_var = std::iter::once(SYSTEM_PATH.to_string()).chain(extra).collect::<Vec<_>>().join(":");
    let mut binds = Binds { writable: vec![home.clone()], read_only: ws.read_only.clone(), placed: vec![] };
    super::git_binds(ws.task, &ws.root, &mut binds);
    // No network, whatever CLI agents get: the loop's commands build and test; fetching is
    // for a CLI agent with an egress allow-list, or the operator.
    let wrapped = sandbox::wrap(bwrap, &argv, &ws.root, &binds, sandbox::Network::None, &c.data_dir)
        .map_err(|e| WorkspaceError::NotRunnable(e.to_string()))?;
    // Nothing of REEF's environment: no key, no secret, no address of the store.
    let home_var = home.display().to_string();
    let env = [
        ("PATH", path_var.as_str()),
        ("HOME", home_var.as_str()),
        ("LANG", "C.UTF-8"),
        ("TERM", "dumb"),
        ("REEF_TASK_ID", ws.task.id.as_str()),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let mut cmd = tokio::process::Command::new(&wrapped[0]);
    cmd.args(&wrapped[1..])
        .current_dir(&ws.root)
        .env_clear()
        .envs(env)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => WorkspaceError::NotRunnable(format!("{} is not installed here", wrapped[0])),
        _ => WorkspaceError::Io(format!("cannot start {program}: {e}")),
    })?;
    let Some(pid) = child.id().map(|p| p as i32).filter(|p| *p > 1) else {
        return Err(WorkspaceError::Io(format!("{program} started without a process id")));
    };
    let pidfile = ws.reach.children_dir.join(format!("{pid}.json"));
    let _ = std::fs::create_dir_all(&ws.reach.children_dir);
    let _ = std::fs::write(&pidfile, json!({"pid": pid, "start_time": proc_start_time(pid), "task": ws.task.id}).to_string());
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let started = Instant::now();
    let mut kept = CappedOutput::new(OUTPUT_CAP);
    let (mut buf_o, mut buf_e) = ([0u8; 8192], [0u8; 8192]);
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    // Read both pipes until they close, the time is up or the attempt is stopped.
    let mut ended = loop {
        if out.is_none() && err.is_none() {
            break None;
        }
        tokio::select! {
            n = async { out.as_mut().unwrap().read(&mut buf_o).await }, if out.is_some() => match n {
                Ok(0) | Err(_) => out = None,
                Ok(n) => kept.push(&buf_o[..n]),
            },
            n = async { err.as_mut().unwrap().read(&mut buf_e).await }, if err.is_some() => match n {
                Ok(0) | Err(_) => err = None,
                Ok(n) => kept.push(&buf_e[..n]),
            },
            _ = &mut deadline => break Some("timed_out"),
            _ = cancel.cancelled() => break Some("cancelled"),
        }
    };
    let mut status = None;
    if ended.is_none() {
        // Its output is closed; it may still run (it closed its pipes): wait within the limit.
        tokio::select! {
            s = child.wait() => status = s.ok(),
            _ = &mut deadline => ended = Some("timed_out"),
            _ = cancel.cancelled() => ended = Some("cancelled"),
        }
    }
    // The sandbox's own init can outlive bwrap: found while bwrap is its parent, killed by pid.
    let inits = children_of(pid);
    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    for i in inits {
        let _ = nix::sys::signal::kill(Pid::from_raw(i), Signal::SIGKILL);
    }
    if status.is_none() {
        let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    }
    let _ = std::fs::remove_file(&pidfile);
    let output = kept.text();
    Ok(json!({
        "command": line,
        "exit_code": if ended.is_some() { None } else { status.and_then(|s| s.code()) },
        "timed_out": ended == Some("timed_out"),
        "stopped": ended == Some("cancelled"),
        "seconds": (started.elapsed().as_millis() as f64 / 1000.0),
        "output": output,
    }))
}
