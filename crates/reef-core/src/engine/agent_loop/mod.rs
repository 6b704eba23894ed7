//! REEF's own agent loop: multi-turn tool calling through the gateway, so an agent on any tier
//! can act — split work, search and keep memories, ask for approval — not only answer.
//!
//! Invariants: every step is reserved at its worst case (prompt with the tool schemas at three
//! bytes a token, the whole limit) before its call and settled after it (`LlmExecutor::call`), so
//! a run stops at its budget like any call; every tool call goes through the toolbox as the task's
//! own caller, so scope, approval policy, budget carving and audit are the MCP server's; only a
//! `finish` with a result ends a run as done; a run stops — saying why, in its thread — at its
//! step, time and token limits and when it repeats a call; each step's calls are kept (`trace`)
//! before any of them runs and their answers after, so a later attempt continues from the
//! transcript and never runs a call again, even one whose outcome a crash left unknown.

pub mod tools;
pub mod trace;

use super::exec::*;
use super::llm::LlmExecutor;
use super::workspace::{self, Workspace};
use crate::toolbox::Caller;
use crate::*;
use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls, ChatCompletionNamedToolChoice, ChatCompletionRequestAssistantMessage,
    ChatCompletionRequestAssistantMessageContent, ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestToolMessage, ChatCompletionRequestToolMessageContent, ChatCompletionRequestUserMessage,
    ChatCompletionToolChoiceOption, ChatCompletionTools, CreateChatCompletionRequest, FunctionCall, FunctionName, ToolChoiceOptions,
};
use serde_json::{json, Value};
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tools::{is_offered, LoopGuard, ASKS, FINISH};
use trace::{cut, kept, one_line, Step, ToolStep};

/// What the model is told after a step without a tool call.
const NUDGE: &str =
    "You answered without calling a tool. If the task is done, call finish with your result; otherwise call the tool you need next.";
/// What the model is told on the last step its limits allow.
const LAST_STEP: &str = "This is the last step REEF allows for this task: call finish now with what you have.";
const LAST_STEP_NOTE: &str = "last step: finish required";
/// What a call whose outcome a crash left unknown is answered on replay (it is never run again).
const UNKNOWN: &str = "{\"error\":\"unknown_outcome\",\"message\":\"REEF stopped while this call ran; it was not run again. Check its effect (task_status, search_memory) before repeating it.\"}";
/// Tool calls one step may make; more are answered "not run".
pub const MAX_CALLS_PER_STEP: usize = 8;
/// A tool answer longer than this is the first to be cut when the transcript outgrows the window.
const CUTTABLE: usize = 400;

fn system(job: &Job) -> String {
    let who = if job.agent.prompt.is_empty() {
        format!("You are {}, an agent of the factory.", job.agent.name)
    } else {
        job.agent.prompt.clone()
    };
    let place = if job.agent.uses_workspace() {
        " Your task has a directory of its own: the file tools and run_command act in it (paths relative to it); nothing outside it is yours."
    } else {
        ""
    };
    format!(
        "{who}\n\nYou work on one task through the tools you are given. Call a tool, read its answer, decide the next step. \
         When the task is done, call finish with your result: until you do, the task is not done. \
         A tool that waits — for a person (request_approval, ask_operator) or for your subtasks (wait_for_subtasks) — ends your turn; \
         you continue once they answer or are done.{place}"
    )
}

fn assistant(text: &str, calls: &[ToolStep]) -> ChatCompletionRequestMessage {
    let tool_calls: Vec<ChatCompletionMessageToolCalls> = calls
        .iter()
        .map(|c| {
            ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                id: c.id.clone(),
                function: FunctionCall { name: c.name.clone(), arguments: c.arguments.clone() },
            })
        })
        .collect();
    // A message with neither words nor calls is one no provider takes back.
    let text = if text.is_empty() && calls.is_empty() { "(no answer)" } else { text };
    ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
        content: (!text.is_empty()).then(|| ChatCompletionRequestAssistantMessageContent::Text(text.to_string())),
        tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
        ..Default::default()
    })
}

fn tool_answer(id: &str, answer: String) -> ChatCompletionRequestMessage {
    ChatCompletionRequestMessage::Tool(ChatCompletionRequestToolMessage {
        content: ChatCompletionRequestToolMessageContent::Text(answer),
        tool_call_id: id.to_string(),
    })
}

fn user(text: String) -> ChatCompletionRequestMessage {
    ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage::from(text))
}

/// Puts a kept step back into the conversation, as the model saw it then; a call kept before it
/// ran and never answered (REEF stopped) is answered "outcome unknown", never run again.
fn replay(messages: &mut Vec<ChatCompletionRequestMessage>, s: &Step) {
    if s.note.as_deref().is_some_and(|n| n.contains(LAST_STEP_NOTE)) {
        messages.push(user(LAST_STEP.into()));
    }
    messages.push(assistant(&s.text, &s.calls));
    for c in &s.calls {
        messages.push(tool_answer(&c.id, if s.answered { c.answer.clone() } else { UNKNOWN.into() }));
    }
    if s.calls.is_empty() {
        messages.push(user(NUDGE.into()));
    }
}

/// Tokens a prompt may hold, estimated high: three bytes a token (the meter's rule), tools included.
fn estimate(messages: &[ChatCompletionRequestMessage], tools: &[ChatCompletionTools]) -> u64 {
    let bytes = serde_json::to_vec(messages).map(|v| v.len()).unwrap_or(0) + serde_json::to_vec(tools).map(|v| v.len()).unwrap_or(0);
    (bytes as u64).div_ceil(3) + 16
}

/// Keeps the transcript within `window` tokens: the oldest long tool answers are replaced by a
/// line saying they were cut (the trace keeps them). Each message is measured once.
fn fit(messages: &mut [ChatCompletionRequestMessage], window: u64) -> Option<String> {
    let size = |m: &ChatCompletionRequestMessage| serde_json::to_vec(m).map(|v| v.len()).unwrap_or(0) as u64;
    let mut total: u64 = messages.iter().map(size).sum::<u64>().div_ceil(3);
    let mut cut_count = 0;
    for m in messages.iter_mut().skip(2) {
        if total <= window {
            break;
        }
        if let ChatCompletionRequestMessage::Tool(t) = m {
            if let ChatCompletionRequestToolMessageContent::Text(s) = &t.content {
                if s.len() > CUTTABLE {
                    let n = s.len() as u64;
                    t.content = ChatCompletionRequestToolMessageContent::Text(format!(
                        "[cut by REEF to keep the conversation within the model's window: {n} bytes; the task's trace keeps them]"
                    ));
                    total = total.saturating_sub(n / 3);
                    cut_count += 1;
                }
            }
        }
    }
    (cut_count > 0).then(|| format!("cut {cut_count} earlier tool answers to stay within {window} tokens"))
}

fn store(e: StoreError) -> ExecError {
    ExecError::Failed(format!("the store: {e}"))
}

/// The model's calls as REEF keeps them: ids it can answer (a missing or repeated id is given one
/// of REEF's), names and arguments cut to size, arguments redacted; at most `MAX_CALLS_PER_STEP`.
fn calls_of(x: &LlmExecutor, message_calls: Vec<ChatCompletionMessageToolCalls>, step: u32) -> (Vec<ToolStep>, usize) {
    let all: Vec<(String, String, String)> = message_calls
        .into_iter()
        .filter_map(|c| match c {
            ChatCompletionMessageToolCalls::Function(c) => Some((c.id, c.function.name, c.function.arguments)),
            ChatCompletionMessageToolCalls::Custom(_) => None,
        })
        .collect();
    let dropped = all.len().saturating_sub(MAX_CALLS_PER_STEP);
    let mut seen = std::collections::HashSet::new();
    let calls = all
        .into_iter()
        .take(MAX_CALLS_PER_STEP)
        .enumerate()
        .map(|(j, (id, name, arguments))| {
            let id = if id.is_empty() || id.len() > 64 || !seen.insert(id.clone()) { format!("reef_{step}_{j}") } else { id };
            let arguments = match serde_json::from_str::<Value>(&arguments) {
                // Kept as REEF will use them: no known secret in clear, whatever escapes hid it.
                Ok(mut v) => {
                    x.budget.factory.redactor.redact_json(&mut v);
                    kept(&v.to_string())
                }
                Err(_) => kept(&arguments),
            };
            ToolStep { id, name: one_line(&name, 64), arguments, ok: false, answer: String::new(), diff: None }
        })
        .collect();
    (calls, dropped)
}

/// Whether this attempt still holds its task: leased, and not claimed again since (each claim
/// counts an attempt). Checked before every tool call.
async fn still_holds(f: &crate::factory::Factory, job: &Job) -> bool {
    f.ports.tasks.get(&job.task.id).await.is_ok_and(|t| t.status.is_leased() && t.attempts == job.attempt)
}

/// Audits one workspace call (`loop.<tool>`, `.refused` when it was), as the toolbox audits its own.
async fn audit_workspace(f: &crate::factory::Factory, job: &Job, c: &ToolStep, err: Option<&workspace::WorkspaceError>) {
    let action = if err.is_some() { format!("loop.{}.refused", c.name) } else { format!("loop.{}", c.name) };
    let new = json!({"args": cut(&c.arguments, 2048), "code": err.map(|e| e.code())});
    let reason = err.map(|e| e.to_string());
    if let Err(e) = f.audit(&format!("agent:{}", job.agent.name), &action, &job.task.id, Value::Null, new, reason.as_deref()).await {
        tracing::warn!(error = %e, tool = %c.name, "could not audit a workspace call");
    }
}

/// Runs `job` as a loop until `finish`, a wait for a person, a limit or a stop.
pub(crate) async fn run(x: &LlmExecutor, job: &Job, progress: ProgressTx, cancel: CancellationToken) -> Result<ExecSuccess, ExecError> {
    let f = &x.budget.factory;
    let limits = &f.config.engine.agent_loop;
    let model = x.model_for(job);
    let caller = Caller::Task { task_id: job.task.id.clone(), agent: job.agent.name.clone() };
    let toolbox = x.toolbox();
    let offered = tools::offered(&job.agent.tools, &caller);
    // An agent with workspace tools works in its task's directory (a worktree of the task's
    // repository when it has one), contained like a CLI agent.
    let reach = match (job.agent.uses_workspace(), &x.workspace) {
        (false, _) => None,
        (true, None) => return Err(ExecError::NotRunnable("this REEF gives agents no workspace (no containment was wired in)".into())),
        (true, Some(r)) => {
            workspace::prepare(&job.task, &job.workdir).map_err(ExecError::NotRunnable)?;
            Some(r)
        }
    };
    let class = job.task.action_class.as_deref();
    let programs = class.and_then(|c| limits.commands.get(c)).or_else(|| limits.commands.get("default")).cloned().unwrap_or_default();
    let mut messages =
        vec![ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage::from(system(job))), user(job.prompt())];
    // Earlier attempts: their steps replayed as they were, none of their tool calls run again.
    let earlier = trace::steps(f, &job.task.id).await.map_err(store)?;
    for s in &earlier {
        replay(&mut messages, s);
    }
    let mut step_no = earlier.last().map(|s| s.step + 1).unwrap_or(0);
    let mut tokens: u64 = earlier.iter().map(|s| s.prompt_tokens + s.completion_tokens).sum();
    if !earlier.is_empty() {
        let _ = progress.try_send(format!("continuing from step {step_no} of earlier attempts; their tool calls are not repeated"));
    }
    // The transcript's budget: the configured one, within what the model (and everything it
    // falls back to) takes, less the answer's room, with a fifth spare for the estimate.
    let window = match x.budget.prices.window(&model) {
        Some(w) => limits.window_tokens.min((w.saturating_sub(x.max_tokens)) * 4 / 5),
        None => limits.window_tokens,
    };
    let started = Instant::now();
    let mut guard = LoopGuard::default();
    let mut nudged = false;
    let mut cost = Usd::ZERO;
    let stop = |reason: String| async move {
        let _ = f.comment(&job.task.id, "reef:loop", &reason).await;
        ExecError::Stopped(reason)
    };
    loop {
        if cancel.is_cancelled() {
            return Err(ExecError::Cancelled);
        }
        if step_no >= limits.max_steps {
            return Err(stop(format!("stopped by REEF: {step_no} steps without calling finish (the limit, [engine] loop_max_steps)")).await);
        }
        if started.elapsed() >= limits.max_time {
            return Err(stop(format!(
                "stopped by REEF: {} s without calling finish (the limit, [engine] loop_max_seconds)",
                limits.max_time.as_secs()
            ))
            .await);
        }
        if tokens >= limits.max_tokens {
            return Err(stop(format!(
                "stopped by REEF: {tokens} tokens used without calling finish (the limit, [engine] loop_max_tokens)"
            ))
            .await);
        }
        let mut note = fit(&mut messages, window);
        // The last step the limit allows is a wrap-up: `finish` is the one call the model may
        // make (a named tool choice, which even a small local model follows).
        let choice = if step_no + 1 >= limits.max_steps {
            messages.push(user(LAST_STEP.into()));
            note = Some(note.map(|n| format!("{n}; ")).unwrap_or_default() + LAST_STEP_NOTE);
            ChatCompletionToolChoiceOption::Function(ChatCompletionNamedToolChoice { function: FunctionName { name: FINISH.into() } })
        } else {
            ChatCompletionToolChoiceOption::Mode(ToolChoiceOptions::Auto)
        };
        let prompt_tokens = estimate(&messages, &offered);
        #[allow(deprecated)] // `max_tokens`: what every backend behind the gateway honours (llm.rs)
        let req = CreateChatCompletionRequest {
            model: model.clone(),
            messages: messages.clone(),
            tools: Some(offered.clone()),
            tool_choice: Some(choice),
            max_tokens: Some(x.max_tokens.min(u32::MAX as u64) as u32),
            ..Default::default()
        };
        let call = x.call(job, &model, req, prompt_tokens, &cancel).await?;
        cost = cost + call.cost;
        tokens += call.prompt_tokens + call.completion_tokens;
        let Some(choice) = call.resp.choices.into_iter().next() else {
            return Err(ExecError::Garbage("a completion without a choice".into()));
        };
        let text = kept(&choice.message.content.unwrap_or_default());
        let (mut calls, dropped) = calls_of(x, choice.message.tool_calls.unwrap_or_default(), step_no);
        let mut step = Step {
            attempt: job.attempt,
            step: step_no,
            model: model.clone(),
            prompt_tokens: call.prompt_tokens,
            completion_tokens: call.completion_tokens,
            cost: call.cost,
            latency_ms: call.latency.as_millis() as u64,
            text: text.clone(),
            calls: calls.clone(),
            note,
            answered: false,
        };
        if dropped > 0 {
            step.note = Some(format!(
                "{}{dropped} calls past {MAX_CALLS_PER_STEP} not run",
                step.note.as_deref().map(|n| format!("{n}; ")).unwrap_or_default()
            ));
        }
        messages.push(assistant(&text, &calls));
        if calls.is_empty() {
            step.answered = true;
            if nudged {
                step.note = Some("ended without calling finish".into());
                trace::record(f, &job.task.id, &job.agent.name, &step).await.map_err(store)?;
                let words = one_line(&text, 200);
                return Err(stop(format!("stopped by REEF: the agent ended twice without calling finish (its last words: {words})")).await);
            }
            nudged = true;
            step.note = Some("no tool call: asked to call finish or a tool".into());
            trace::record(f, &job.task.id, &job.agent.name, &step).await.map_err(store)?;
            messages.push(user(NUDGE.into()));
            step_no += 1;
            continue;
        }
        nudged = false;
        // The calls are kept before any of them runs: a crash mid-step leaves them on record, and
        // the next attempt answers them "outcome unknown" instead of running them again.
        trace::record(f, &job.task.id, &job.agent.name, &step).await.map_err(store)?;
        let (mut finished, mut ended_by, mut stopped, mut lost) = (None::<Value>, None::<String>, None::<String>, false);
        for c in calls.iter_mut() {
            let (ok, answer) = if let Some(by) = &ended_by {
                (false, json!({"error": "not_run", "message": format!("not run: your turn ended with {by}")}).to_string())
            } else if cancel.is_cancelled() {
                (false, json!({"error": "not_run", "message": "not run: the attempt was stopped"}).to_string())
            } else if lost || !still_holds(f, job).await {
                // Fenced: a worker frozen past its lease while the model answered wakes up to find
                // the task taken over; what it was told to do is not done.
                lost = true;
                (false, json!({"error": "not_run", "message": "not run: this attempt no longer holds the task"}).to_string())
            } else {
                match serde_json::from_str::<Value>(&c.arguments) {
                    Err(e) => (false, json!({"error": "invalid", "message": format!("the arguments are not JSON: {e}")}).to_string()),
                    Ok(args) => {
                        if let Some(reason) = guard.note(&c.name, &args) {
                            stopped = Some(reason.clone());
                            ended_by = Some("a stop".into());
                            (false, json!({"error": "stopped", "message": reason}).to_string())
                        } else if c.name == FINISH {
                            match args.get("result").and_then(Value::as_str).map(str::trim).filter(|r| !r.is_empty()) {
                                Some(_) => {
                                    finished = Some(args);
                                    ended_by = Some(FINISH.into());
                                    (true, json!({"ok": true}).to_string())
                                }
                                None => (
                                    false,
                                    json!({"error": "invalid", "message": "finish needs a result: what you did and what came of it"})
                                        .to_string(),
                                ),
                            }
                        } else if !is_offered(&offered, &c.name) {
                            (
                                false,
                                json!({"error": "unknown_tool", "message": format!("{} is not one of your tools", one_line(&c.name, 64))})
                                    .to_string(),
                            )
                        } else if let (true, Some(reach)) = (workspace::is_workspace_tool(&c.name), reach) {
                            let _ = progress.try_send(format!("step {step_no}: {} {}", c.name, one_line(&c.arguments, 200)));
                            // A command never outlives the attempt's own time.
                            let ws = Workspace {
                                reach,
                                task: &job.task,
                                root: job.workdir.clone(),
                                programs: programs.clone(),
                                command_time: limits.command_time.min(limits.max_time.saturating_sub(started.elapsed())),
                                read_only: limits.read_only.clone(),
                            };
                            let r = ws.call(&c.name, &args, &cancel).await;
                            audit_workspace(f, job, c, r.as_ref().err()).await;
                            match r {
                                Ok(done) => {
                                    c.diff = done.diff.map(|d| kept(&d));
                                    (true, done.answer.to_string())
                                }
                                Err(e) => (false, json!({"error": e.code(), "message": e.to_string()}).to_string()),
                            }
                        } else {
                            let _ = progress.try_send(format!("step {step_no}: {} {}", c.name, one_line(&c.arguments, 200)));
                            match toolbox.call_as(&caller, &c.name, args).await {
                                Ok(v) => {
                                    if ASKS.contains(&c.name.as_str()) {
                                        ended_by = Some(c.name.clone());
                                    }
                                    (true, v.to_string())
                                }
                                Err(e) => (false, json!({"error": e.code(), "message": e.to_string()}).to_string()),
                            }
                        }
                    }
                }
            };
            c.ok = ok;
            c.answer = kept(&answer);
            messages.push(tool_answer(&c.id, answer));
        }
        step.calls = calls;
        step.answered = true;
        trace::record(f, &job.task.id, &job.agent.name, &step).await.map_err(store)?;
        if cancel.is_cancelled() || lost {
            return Err(ExecError::Cancelled);
        }
        if let Some(reason) = stopped {
            return Err(stop(reason).await);
        }
        if let Some(a) = finished {
            let s = |k: &str| a.get(k).and_then(|v| v.as_str()).map(|v| cut(v, 2_000));
            let work_products = WorkProducts {
                branch: s("branch"),
                pr_url: s("pr_url"),
                preview_url: s("preview_url"),
                deploy_url: s("deploy_url"),
                repository: None,
            };
            // A task keeps at most what a one-answer run keeps.
            let output = cut(a.get("result").and_then(Value::as_str).unwrap_or_default(), 1024 * 1024);
            return Ok(ExecSuccess { output, work_products, cost });
        }
        if ended_by.is_some() {
            // Asked a person: the task parks until the answer, and the next attempt goes on from
            // here. Only when REEF holds the question does the turn end; a repeated ask that
            // created nothing to wait for goes back to the model.
            if f.waiting(&job.task.id, job.attempt).await.map_err(store)?.is_some() {
                return Err(ExecError::Waiting);
            }
            messages.push(user(
                "Nothing to wait for now (that request already exists or was decided, or no subtask is open): go on with the task.".into(),
            ));
        }
        step_no += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(answered: bool) -> Step {
        Step {
            attempt: 1,
            step: 0,
            model: "m".into(),
            prompt_tokens: 1,
            completion_tokens: 1,
            cost: Usd::ZERO,
            latency_ms: 1,
            text: String::new(),
            calls: vec![ToolStep {
                id: "c1".into(),
                name: "remember".into(),
                arguments: "{}".into(),
                ok: true,
                answer: "{\"written\":1}".into(),
                diff: None,
            }],
            note: None,
            answered,
        }
    }

    fn tool_texts(m: &[ChatCompletionRequestMessage]) -> Vec<String> {
        m.iter()
            .filter_map(|m| match m {
                ChatCompletionRequestMessage::Tool(t) => match &t.content {
                    ChatCompletionRequestToolMessageContent::Text(s) => Some(s.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_call_whose_outcome_a_crash_left_unknown_is_answered_so_and_never_run_again() {
        let mut m = vec![];
        replay(&mut m, &step(true));
        assert_eq!(tool_texts(&m), ["{\"written\":1}"]);
        let mut m = vec![];
        replay(&mut m, &step(false));
        assert!(tool_texts(&m)[0].contains("unknown_outcome"), "{:?}", tool_texts(&m));
    }

    #[test]
    fn a_step_without_words_or_calls_still_replays_as_a_message_providers_take() {
        let mut s = step(true);
        s.calls.clear();
        let mut m = vec![];
        replay(&mut m, &s);
        let v = serde_json::to_value(&m[0]).unwrap();
        assert_eq!(v["content"], "(no answer)", "{v}");
    }

    #[test]
    fn the_oldest_long_tool_answers_are_cut_first_to_fit_the_window() {
        let mut m = vec![user("system".into()), user("task".into())];
        for i in 0..10 {
            m.push(tool_answer(&format!("c{i}"), format!("{i}:{}", "x".repeat(3_000))));
        }
        let before = estimate(&m, &[]);
        let note = fit(&mut m, before / 2).unwrap();
        assert!(note.contains("cut"), "{note}");
        let texts = tool_texts(&m);
        assert!(texts[0].starts_with("[cut by REEF"), "oldest first: {}", &texts[0][..40]);
        assert!(texts[9].starts_with("9:"), "the newest stays");
        assert!(estimate(&m, &[]) <= before / 2 + 100);
    }
}
