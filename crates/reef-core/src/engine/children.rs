//! Supervising an agent's process from outside: its output kept within a cap (head and tail),
//! and the process groups a killed REEF left behind, reaped at the next start.
//!
//! Invariant: a recycled pid is never killed — each pidfile records its child's start time.

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::path::Path;

/// Output kept from a stream: the first half of the cap and the last half, with a marker for
/// what was dropped in between.
#[derive(Debug, Default)]
pub struct CappedOutput {
    cap: usize,
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    dropped: u64,
}

impl CappedOutput {
    pub fn new(cap: usize) -> Self {
        Self { cap, ..Default::default() }
    }
    pub fn push(&mut self, bytes: &[u8]) {
        let half = self.cap / 2;
        let take = bytes.len().min(half.saturating_sub(self.head.len()));
        self.head.extend_from_slice(&bytes[..take]);
        for b in &bytes[take..] {
            if self.tail.len() == self.cap - half {
                self.tail.pop_front();
                self.dropped += 1;
            }
            self.tail.push_back(*b);
        }
    }
    pub fn total_kept(&self) -> usize {
        self.head.len() + self.tail.len()
    }
    pub fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.head).to_string();
        if self.dropped > 0 {
            s.push_str(&format!("\n[… {} bytes of output dropped by REEF …]\n", self.dropped));
        }
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        s.push_str(&String::from_utf8_lossy(&tail));
        s
    }
}

/// The processes whose parent is `pid` (from `/proc/<pid>/task/*/children`).
pub(crate) fn children_of(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return vec![] };
    let mut out: Vec<i32> = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| c.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<i32>>())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

pub(crate) fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime) counted after the parenthesised command name, which may hold spaces.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Kills the process groups of children whose REEF process died without cleaning up. Each
/// pidfile records the child's start time, so a recycled pid is never killed by mistake.
pub fn reap_orphans(children_dir: &Path) -> Vec<i32> {
    let mut reaped = vec![];
    let Ok(rd) = std::fs::read_dir(children_dir) else { return reaped };
    for e in rd.flatten() {
        let path = e.path();
        let Some(v) = std::fs::read_to_string(&path).ok().and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok()) else {
            let _ = std::fs::remove_file(&path);
            continue;
        };
        let pid = v["pid"].as_i64().unwrap_or(0) as i32;
        let started = v["start_time"].as_u64();
        if pid > 1 && started.is_some() && proc_start_time(pid) == started {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            tracing::warn!(pid, task = v["task"].as_str().unwrap_or(""), "killed an orphaned agent process group left by a REEF that died");
            reaped.push(pid);
        }
        let _ = std::fs::remove_file(&path);
    }
    reaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_output_keeps_head_and_tail_and_counts_the_rest() {
        let mut c = CappedOutput::new(10);
        for i in 0..100u8 {
            c.push(&[b'a' + (i % 26)]);
        }
        assert_eq!(c.total_kept(), 10);
        let t = c.text();
        assert!(t.starts_with("abcde"), "{t}");
        assert!(t.contains("90 bytes of output dropped"), "{t}");
    }
}
