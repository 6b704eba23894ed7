//! Langfuse's ingestion format for REEF's events (`[[webhooks]] template = "langfuse"`): each task
//! is a trace, each agent-loop step a generation (model, tokens, cost, latency), each tool call a
//! span under it, and a task's end updates its trace. The relay delivers them like any webhook
//! (at least once, in order, retried, dead-lettered): every id is derived from the task, attempt,
//! step and call, so a redelivery updates what Langfuse has instead of adding to it.

use crate::time::fmt_ts;
use crate::Event;
use serde_json::{json, Value};

/// The ingestion batch for `e`.
pub fn batch(e: &Event) -> Value {
    let at = fmt_ts(&e.at);
    let task = e.subject.clone().unwrap_or_else(|| "-".into());
    let agent = e.actor.strip_prefix("agent:").unwrap_or(&e.actor).to_string();
    let d = &e.data;
    let trace = |body: Value| json!({"id": format!("{}-trace", e.id), "type": "trace-create", "timestamp": at, "body": body});
    let mut out = vec![];
    if e.kind == "trace.step" {
        out.push(trace(
            json!({"id": task, "name": format!("task {task}"), "userId": agent, "tags": ["reef"], "metadata": {"task_id": task}}),
        ));
        // A step is kept twice, before its calls run and after; only the answered record is sent.
        if d["answered"].as_bool() != Some(false) {
            let (attempt, step) = (d["attempt"].as_u64().unwrap_or(0), d["step"].as_u64().unwrap_or(0));
            let gen_id = format!("{task}:{attempt}:{step}");
            let latency = chrono::Duration::milliseconds(d["latency_ms"].as_i64().unwrap_or(0).max(0));
            let start = fmt_ts(&(e.at - latency));
            let cost = d["cost"].as_i64().map(|m| m as f64 / 1_000_000.0).unwrap_or(0.0);
            let (input, output) = (d["prompt_tokens"].as_u64().unwrap_or(0), d["completion_tokens"].as_u64().unwrap_or(0));
            let calls = d["calls"].as_array().cloned().unwrap_or_default();
            out.push(json!({
                "id": format!("{}-generation", e.id),
                "type": "generation-create",
                "timestamp": at,
                "body": {
                    "id": gen_id, "traceId": task, "name": format!("step {step}"), "model": d["model"],
                    "startTime": start, "endTime": at,
                    "usageDetails": {"input": input, "output": output, "total": input + output},
                    "costDetails": {"total": cost},
                    "output": {"text": d["text"], "calls": calls.iter().map(|c| json!({"name": c["name"], "arguments": c["arguments"]})).collect::<Vec<_>>()},
                    "metadata": {"attempt": attempt, "agent": agent, "note": d["note"]},
                    "level": if d["note"].as_str().is_some_and(|n| n.contains("stop")) { "WARNING" } else { "DEFAULT" },
                },
            }));
            for (i, c) in calls.iter().enumerate() {
                let args: Value =
                    c["arguments"].as_str().and_then(|a| serde_json::from_str(a).ok()).unwrap_or_else(|| c["arguments"].clone());
                let ok = c["ok"].as_bool().unwrap_or(false);
                out.push(json!({
                    "id": format!("{}-span-{i}", e.id),
                    "type": "span-create",
                    "timestamp": at,
                    "body": {
                        "id": format!("{gen_id}:{}", c["id"].as_str().unwrap_or("call")),
                        "traceId": task, "parentObservationId": gen_id, "name": c["name"],
                        "startTime": at, "endTime": at,
                        "input": args, "output": c["answer"],
                        "metadata": {"diff": c["diff"]},
                        "level": if ok { "DEFAULT" } else { "ERROR" },
                    },
                }));
            }
        }
    } else {
        // The task's end (or any other task event): its trace, updated with how it stands.
        out.push(trace(json!({"id": task, "tags": ["reef", e.kind.as_str()], "output": d, "metadata": {"last_event": e.kind}})));
    }
    json!({"batch": out})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(answered: bool) -> Event {
        Event {
            id: "ev1".into(),
            kind: "trace.step".into(),
            at: crate::time::parse_ts("2026-11-30T10:00:02Z").unwrap(),
            actor: "agent:kev".into(),
            subject: Some("t1".into()),
            data: json!({"attempt": 1, "step": 3, "model": "mid", "prompt_tokens": 100, "completion_tokens": 20, "cost": 2500,
                "latency_ms": 1500, "text": "Splitting it.", "answered": answered,
                "calls": [{"id": "c1", "name": "create_task", "arguments": "{\"title\":\"x\"}", "ok": true, "answer": "{}"},
                          {"id": "c2", "name": "remember", "arguments": "not json", "ok": false, "answer": "{\"error\":\"invalid\"}"}]}),
        }
    }

    #[test]
    fn a_step_is_a_generation_in_its_tasks_trace_and_each_call_a_span_under_it() {
        let b = batch(&step(true));
        let events = b["batch"].as_array().unwrap();
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["trace-create", "generation-create", "span-create", "span-create"]);
        let g = &events[1]["body"];
        assert_eq!((g["id"].as_str(), g["traceId"].as_str(), g["model"].as_str()), (Some("t1:1:3"), Some("t1"), Some("mid")));
        assert_eq!(g["startTime"], "2026-11-30T10:00:00.500Z", "started its latency before it was kept");
        assert_eq!((g["usageDetails"]["total"].as_u64(), g["costDetails"]["total"].as_f64()), (Some(120), Some(0.0025)));
        let s = &events[3]["body"];
        assert_eq!(
            (s["id"].as_str(), s["parentObservationId"].as_str(), s["level"].as_str()),
            (Some("t1:1:3:c2"), Some("t1:1:3"), Some("ERROR"))
        );
        assert_eq!(events[2]["body"]["input"]["title"], "x", "arguments as JSON where they are");
        // The record kept before the calls ran adds nothing but the trace.
        assert_eq!(batch(&step(false))["batch"].as_array().unwrap().len(), 1);
    }
}
