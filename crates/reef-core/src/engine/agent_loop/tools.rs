//! What the loop offers a model: the toolbox tools its agent is configured with (as OpenAI
//! function tools, their schemas the MCP server's own) and `finish`, the one way to end as done;
//! and the guard that stops a run repeating itself.

use crate::toolbox::{tools_for, Caller};
use async_openai::types::chat::{ChatCompletionTool, ChatCompletionTools, FunctionObject};
use serde_json::{json, Value};

/// The completion tool: its arguments become the task's result and work products.
pub const FINISH: &str = "finish";
/// Tools after whose success the run may wait (for a person, or its subtasks): the turn ends
/// when REEF then holds a wait for the task, which parks until the answer.
pub const ASKS: [&str; 3] = ["request_approval", "ask_operator", "wait_for_subtasks"];

/// The tools offered to `agent` working on a task: those of its `names` a task caller may use,
/// in the catalog's order, then its workspace tools, then `finish`. Unknown names are ignored
/// (config validation names them).
pub fn offered(names: &[String], caller: &Caller) -> Vec<ChatCompletionTools> {
    let mut out: Vec<ChatCompletionTools> = tools_for(caller)
        .into_iter()
        .filter(|t| names.iter().any(|n| n == t.name))
        .map(|t| function(t.name, t.description, t.input_schema()))
        .collect();
    out.extend(
        crate::engine::workspace::catalog()
            .into_iter()
            .filter(|(name, _, _)| names.iter().any(|n| n == name))
            .map(|(name, description, schema)| function(name, description, schema)),
    );
    out.push(function(
        FINISH,
        "End your work on this task: call it once, when the task is done, with the result the operator will read. \
         Work products (a branch, a pull request, a preview or deploy URL) go in their own fields. \
         Until you call it, the task is not done.",
        json!({
            "type": "object",
            "properties": {
                "result": {"type": "string", "description": "What you did and what came of it"},
                "branch": {"type": "string"},
                "pr_url": {"type": "string"},
                "preview_url": {"type": "string"},
                "deploy_url": {"type": "string"}
            },
            "required": ["result"],
            "additionalProperties": false
        }),
    ));
    out
}

fn function(name: &str, description: &str, mut parameters: Value) -> ChatCompletionTools {
    unbounded(&mut parameters);
    ChatCompletionTools::Function(ChatCompletionTool {
        function: FunctionObject { name: name.into(), description: Some(description.into()), parameters: Some(parameters), strict: None },
    })
}

/// Drops length bounds from a schema offered to a model. Backends that constrain generation by a
/// grammar built from the schema (llama.cpp's) blow up on bounds in the thousands — measured: the
/// server crashed on `maxLength: 64000` — and REEF checks every size itself when the call arrives
/// (the toolbox refuses oversize text naming the field; `finish`'s result is cut to what a task keeps).
fn unbounded(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in ["maxLength", "maxItems", "minLength"] {
                m.remove(k);
            }
            m.values_mut().for_each(unbounded);
        }
        Value::Array(a) => a.iter_mut().for_each(unbounded),
        _ => {}
    }
}

/// Whether `name` is one of the tools offered (a model may name any tool; only these run).
pub fn is_offered(tools: &[ChatCompletionTools], name: &str) -> bool {
    tools.iter().any(|t| matches!(t, ChatCompletionTools::Function(f) if f.function.name == name))
}

/// Calls in a row with the same tool and arguments after which a run is stopped as looping.
pub const REPEATS: usize = 3;

/// Remembers the calls of a run and says when it repeats itself.
#[derive(Default)]
pub struct LoopGuard {
    last: Option<String>,
    run: usize,
}

impl LoopGuard {
    /// Notes one call; `Some(reason)` once the same call came `REPEATS` times in a row.
    pub fn note(&mut self, name: &str, arguments: &Value) -> Option<String> {
        // Arguments compared as parsed JSON: key order and spacing do not make a call new.
        let key = format!("{name} {}", canonical(arguments));
        if self.last.as_deref() == Some(key.as_str()) {
            self.run += 1;
        } else {
            self.last = Some(key);
            self.run = 1;
        }
        (self.run >= REPEATS).then(|| {
            let shown: String = canonical(arguments).chars().take(200).collect();
            format!("stopped by REEF: it called {name} with the same arguments {REPEATS} times in a row ({shown}) without getting anywhere")
        })
    }
}

fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys.iter().map(|k| format!("{k:?}:{}", canonical(&m[*k]))).collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_call_three_times_in_a_row_is_a_loop_and_key_order_does_not_hide_it() {
        let mut g = LoopGuard::default();
        assert!(g.note("search_memory", &json!({"query": "a", "limit": 5})).is_none());
        assert!(g.note("search_memory", &json!({"limit": 5, "query": "a"})).is_none());
        let stop = g.note("search_memory", &json!({"query": "a", "limit": 5})).unwrap();
        assert!(stop.contains("search_memory") && stop.contains("3 times"), "{stop}");
        // Anything else in between starts the count again.
        let mut g = LoopGuard::default();
        for q in ["a", "a", "b", "a", "a"] {
            assert!(g.note("search_memory", &json!({"query": q})).is_none());
        }
    }

    #[test]
    fn only_configured_agent_tools_are_offered_and_finish_always_is() {
        let caller = Caller::Task { task_id: "t".into(), agent: "kev".into() };
        let tools = offered(&["search_memory".into(), "create_task".into(), "decide_approval".into(), "nope".into()], &caller);
        let names: Vec<String> = tools
            .iter()
            .filter_map(|t| match t {
                ChatCompletionTools::Function(f) => Some(f.function.name.clone()),
                _ => None,
            })
            .collect();
        assert!(names.contains(&"search_memory".to_string()) && names.contains(&"create_task".to_string()), "{names:?}");
        assert!(!names.contains(&"decide_approval".to_string()), "an operator's tool is never an agent's: {names:?}");
        assert_eq!(names.last().map(String::as_str), Some(FINISH));
        assert!(is_offered(&tools, "create_task") && !is_offered(&tools, "decide_approval"));
        let text = serde_json::to_string(&tools).unwrap();
        assert!(!text.contains("maxLength") && !text.contains("maxItems"), "no length bounds for a grammar to choke on: {text}");
    }
}
