//! One module per command area; each prints a table or, with `--json`, one JSON document.

pub mod agent;
pub mod analytics;
pub mod approval;
pub mod backup;
pub mod bench;
pub mod config;
pub mod control;
pub mod demo;
pub mod events;
pub mod knowledge;
pub mod mcp;
pub mod revenue;
pub mod schedule;
pub mod secret;
pub mod serve;
pub mod status;
pub mod task;
pub mod watch;
pub mod webhooks;

pub struct Out {
    pub json: bool,
}

impl Out {
    /// Prints `value` as JSON, or the human text from `human`.
    pub fn print<T: serde::Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
        } else {
            let s = human();
            if !s.is_empty() {
                println!("{}", s.trim_end());
            }
        }
    }
}

/// Shortens a UUID-like id for tables; `reef task show` takes any unique prefix.
pub fn short(id: &str) -> &str {
    if id.len() > 13 {
        &id[id.len() - 12..]
    } else {
        id
    }
}
