//! A run's transcript: each step of the loop — the model's words and tool calls, what each tool
//! answered, tokens, cost, latency and model — kept as a `trace.step` event on the task, so
//! `reef task trace` and the window can show it (live: events are watched) and a later attempt
//! continues from it. Invariant: what is kept is bounded (text cut to `MAX_KEPT` per part, marked
//! where it was) and redacted like every event.

use crate::factory::Factory;
use crate::*;
use serde::{Deserialize, Serialize};

/// The event kind of one step.
pub const STEP_KIND: &str = "trace.step";
/// Text kept of one message or tool answer in the transcript.
pub const MAX_KEPT: usize = 16 * 1024;
/// Records of one task read back (all attempts together; two per step): `[engine]
/// loop_max_steps` may not exceed half of it.
const MAX_STEPS_READ: usize = 4_000;

/// One call a model asked for, and what REEF answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolStep {
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them (JSON text).
    pub arguments: String,
    /// Whether the tool ran and succeeded.
    pub ok: bool,
    /// What the model was told (a result or a refusal), cut to `MAX_KEPT`.
    pub answer: String,
    /// For a call that wrote a file: the unified diff of what it changed, cut to `MAX_KEPT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub attempt: u32,
    pub step: u32,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost: Usd,
    pub latency_ms: u64,
    /// What the model said (besides its calls).
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub calls: Vec<ToolStep>,
    /// What REEF did about this step, when anything (a nudge, a cut, a stop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Whether its calls' answers are kept: a step is kept once before its calls run and once
    /// after; only the first means REEF stopped while they ran.
    #[serde(default = "yes")]
    pub answered: bool,
}

fn yes() -> bool {
    true
}

/// Cuts `s` to `MAX_KEPT` bytes on a char boundary, saying so.
pub fn kept(s: &str) -> String {
    cut(s, MAX_KEPT)
}

pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n[… cut by REEF: {} of {} bytes kept]", &s[..end], end, s.len())
}

/// `s` on one line (no line an agent wrote can pass for one of REEF's), at most `max` characters.
pub fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

/// Keeps one step on its task.
pub async fn record(f: &Factory, task: &str, agent: &str, step: &Step) -> StoreResult<()> {
    f.event(STEP_KIND, &format!("agent:{agent}"), Some(task), serde_json::to_value(step).unwrap_or_default()).await
}

/// Every step kept for `task`, oldest first (all attempts). Steps REEF cannot read are skipped.
pub async fn steps(f: &Factory, task: &str) -> StoreResult<Vec<Step>> {
    let q = EventQuery {
        kind_prefix: Some(STEP_KIND.into()),
        subject: Some(task.into()),
        oldest_first: true,
        limit: MAX_STEPS_READ,
        ..Default::default()
    };
    let kept: Vec<Step> = f.ports.events.recent(&q).await?.items.into_iter().filter_map(|e| serde_json::from_value(e.data).ok()).collect();
    // One entry per step: its answered record when there is one, else the one kept before its
    // calls ran (oldest first, so the later record replaces the earlier).
    let mut by_step: std::collections::BTreeMap<(u32, u32), Step> = std::collections::BTreeMap::new();
    for s in kept {
        let key = (s.attempt, s.step);
        if by_step.get(&key).is_none_or(|have| !have.answered || s.answered) {
            by_step.insert(key, s);
        }
    }
    Ok(by_step.into_values().collect())
}
