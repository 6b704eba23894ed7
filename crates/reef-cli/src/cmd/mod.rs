//! One module per command area; each prints a table or, with `--json`, one JSON document.

pub mod agent;
pub mod analytics;
pub mod approval;
pub mod backup;
pub mod bench;
pub mod config;
pub mod control;
pub mod delivery;
pub mod demo;
pub mod doctor;
pub mod events;
pub mod executors;
pub mod knowledge;
pub mod mcp;
pub mod pipeline;
pub mod revenue;
pub mod schedule;
pub mod secret;
pub mod serve;
pub mod service;
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
                println!("{}", for_terminal(s.trim_end()));
            }
        }
    }
}

/// Shortens a UUID-like id for tables (its last 12 characters — characters, not bytes: an id
/// written by another program may hold any); `reef task show` takes any unique prefix.
pub fn short(id: &str) -> &str {
    match id.char_indices().rev().nth(11) {
        Some((i, _)) if i > 0 => &id[i..],
        _ => id,
    }
}

/// Text for a terminal: what agents and other programs wrote may hold escape sequences (that
/// retitle the window, rewrite the screen, or worse); every control character but newline and
/// tab is shown as a visible `^X` / `\u{..}` instead of being sent.
pub fn for_terminal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push(char::from(b'@' + c as u8));
            }
            '\u{7f}' => out.push_str("^?"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_text_cannot_drive_the_terminal_and_odd_ids_do_not_panic() {
        assert_eq!(for_terminal("ok\x1b]0;pwned\x07 done\r\n\tnext"), "ok^[]0;pwned^G done^M\n\tnext");
        assert_eq!(for_terminal("csi \u{9b}31m"), "csi \\u{9b}31m");
        assert_eq!(short("01a22b21-34a6-772b-9a99-6b21d2b14f00"), "6b21d2b14f00");
        assert_eq!(short("tâche-überprüfung-ünïcödé"), "fung-ünïcödé");
        assert_eq!(short("ü"), "ü");
    }
}
