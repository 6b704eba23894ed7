//! REEF's own agent loop: multi-turn tool calling through the gateway, so an agent on any tier
//! can act — split work, search and keep memories, ask for approval — not only answer.
//!
//! Invariants: every step is reserved at its worst case before its call and settled after it
//! (`LlmExecutor::call`), so a run stops at its budget like any call; every tool call goes through
//! the toolbox as the task's own caller, so scope, approval policy, budget carving and audit are
//! the MCP server's; only `finish` ends a run as done; a run stops — saying why, in its thread —
//! at its step, time and token limits and when it repeats a call; each step is kept (`trace`),
//! and a later attempt continues from the transcript without running any earlier tool call again.

pub mod tools;
pub mod trace;

use super::exec::*;
use super::llm::LlmExecutor;
use crate::rules::pricing::estimate_tokens;
use crate::toolbox::Caller;
use crate::*;
use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls, ChatCompletionNamedToolChoice, ChatCompletionRequestAssistantMessage,
    ChatCompletionRequestAssistantMessageContent, ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestToolMessage, ChatCompletionRequestToolMessageContent, ChatCompletionRequestUserMessage,
    ChatCompletionToolChoiceOption, CreateChatCompletionRequest, FunctionCall, FunctionName, ToolChoiceOptions,
};
use serde_json::{json, Value};
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tools::{is_offered, LoopGuard, ASKS, FINISH};
use trace::{cut, kept, Step, ToolStep};

/// What the model is told after a step without a tool call.
const NUDGE: &str =
    "You answered without calling a tool. If the task is done, call finish with your result; otherwise call the tool you need next.";
/// What the model is told on the last step its limits allow.
const LAST_STEP: &str = "This is the last step REEF allows for this task: call finish now with what you have.";
const LAST_STEP_NOTE: &str = "last step: finish required";
/// A tool answer longer than this is the first to be cut when the transcript outgrows the window.
const CUTTABLE: usize = 400;

fn system(job: &Job) -> String {
    let who = if job.agent.prompt.is_empty() {
        format!("You are {}, an agent of the factory.", job.agent.name)
    } else {
        job.agent.prompt.clone()
    };
    format!(
        "{who}\n\nYou work on one task through the tools you are given. Call a tool, read its answer, decide the next step. \
         When the task is done, call finish with your result: until you do, the task is not done. \
         A tool that needs a person (request_approval, ask_operator) ends your turn; you continue once they answer."
    )
}

fn assistant(text: &str, calls: &[(String, String, String)]) -> ChatCompletionRequestMessage {
    let tool_calls: Vec<ChatCompletionMessageToolCalls> = calls
        .iter()
        .map(|(id, name, arguments)| {
            ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                id: id.clone(),
                function: FunctionCall { name: name.clone(), arguments: arguments.clone() },
            })
        })
        .collect();
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

/// Puts a kept step back into the conversation, as the model saw it then.
fn replay(messages: &mut Vec<ChatCompletionRequestMessage>, s: &Step) {
    if s.note.as_deref().is_some_and(|n| n.contains(LAST_STEP_NOTE)) {
        messages.push(user(LAST_STEP.into()));
    }
    let calls: Vec<(String, String, String)> = s.calls.iter().map(|c| (c.id.clone(), c.name.clone(), c.arguments.clone())).collect();
    messages.push(assistant(&s.text, &calls));
    for c in &s.calls {
        messages.push(tool_answer(&c.id, c.answer.clone()));
    }
    if s.calls.is_empty() {
        messages.push(user(NUDGE.into()));
    }
}

fn estimate(messages: &[ChatCompletionRequestMessage]) -> u64 {
    estimate_tokens(&[&serde_json::to_string(messages).unwrap_or_default()])
}

/// Keeps the transcript within `window` tokens: the oldest long tool answers are replaced by a
/// line saying they were cut (the trace keeps them). Returns what was done, if anything.
fn fit(messages: &mut [ChatCompletionRequestMessage], window: u64) -> Option<String> {
    let mut cut_count = 0;
    for i in 2..messages.len() {
        if estimate(messages) <= window {
            break;
        }
        if let ChatCompletionRequestMessage::Tool(t) = &mut messages[i] {
            if let ChatCompletionRequestToolMessageContent::Text(s) = &t.content {
                if s.len() > CUTTABLE {
                    let n = s.len();
                    t.content = ChatCompletionRequestToolMessageContent::Text(format!(
                        "[cut by REEF to keep the conversation within the model's window: {n} bytes; the task's trace keeps them]"
                    ));
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

/// Runs `job` as a loop until `finish`, a wait for a person, a limit or a stop.
pub(crate) async fn run(x: &LlmExecutor, job: &Job, progress: ProgressTx, cancel: CancellationToken) -> Result<ExecSuccess, ExecError> {
    let f = &x.budget.factory;
    let limits = &f.config.engine.agent_loop;
    let model = x.model_for(job);
    let caller = Caller::Task { task_id: job.task.id.clone(), agent: job.agent.name.clone() };
    let toolbox = x.toolbox();
    let offered = tools::offered(&job.agent.tools, &caller);
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
        let mut note = fit(&mut messages, limits.window_tokens);
        // The last step the limit allows is a wrap-up: `finish` is the one call the model may
        // make (a named tool choice, which even a small local model follows).
        let last = step_no + 1 >= limits.max_steps;
        let choice = if last {
            messages.push(user(LAST_STEP.into()));
            note = Some(note.map(|n| format!("{n}; ")).unwrap_or_default() + LAST_STEP_NOTE);
            ChatCompletionToolChoiceOption::Function(ChatCompletionNamedToolChoice { function: FunctionName { name: FINISH.into() } })
        } else {
            ChatCompletionToolChoiceOption::Mode(ToolChoiceOptions::Auto)
        };
        let prompt_tokens = estimate(&messages);
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
        let text = choice.message.content.unwrap_or_default();
        let calls: Vec<(String, String, String)> = choice
            .message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| match c {
                ChatCompletionMessageToolCalls::Function(c) => Some((c.id, c.function.name, c.function.arguments)),
                ChatCompletionMessageToolCalls::Custom(_) => None,
            })
            .collect();
        let mut step = Step {
            attempt: job.attempt,
            step: step_no,
            model: model.clone(),
            prompt_tokens: call.prompt_tokens,
            completion_tokens: call.completion_tokens,
            cost: call.cost,
            latency_ms: call.latency.as_millis() as u64,
            text: kept(&text),
            calls: vec![],
            note,
        };
        messages.push(assistant(&text, &calls));
        if calls.is_empty() {
            if nudged {
                step.note = Some("ended without calling finish".into());
                trace::record(f, &job.task.id, &job.agent.name, &step).await.map_err(store)?;
                return Err(ExecError::Failed(format!("the agent stopped without calling finish; its last words: {}", cut(&text, 300))));
            }
            nudged = true;
            step.note = Some("no tool call: asked to call finish or a tool".into());
            trace::record(f, &job.task.id, &job.agent.name, &step).await.map_err(store)?;
            messages.push(user(NUDGE.into()));
            step_no += 1;
            continue;
        }
        let (mut finished, mut waiting, mut stopped) = (None, false, None);
        for (j, (id, name, arguments)) in calls.iter().enumerate() {
            let (ok, answer) = match serde_json::from_str::<Value>(arguments) {
                Err(e) => (false, json!({"error": "invalid", "message": format!("the arguments are not JSON: {e}")}).to_string()),
                Ok(args) => {
                    if let Some(reason) = guard.note(name, &args) {
                        stopped = Some(reason.clone());
                        (false, json!({"error": "stopped", "message": reason}).to_string())
                    } else if name == FINISH {
                        finished = Some(args);
                        (true, json!({"ok": true}).to_string())
                    } else if !is_offered(&offered, name) {
                        (false, json!({"error": "unknown_tool", "message": format!("{name} is not one of your tools")}).to_string())
                    } else {
                        let mut args = args;
                        // Creating the same subtask again (a retried step) returns the first one.
                        if name == "create_task" && args.get("idempotency_key").is_none() {
                            args["idempotency_key"] = json!(format!("loop:{}:{step_no}:{j}", job.task.id));
                        }
                        let _ = progress.try_send(format!("step {step_no}: {name} {}", cut(arguments, 200)));
                        match toolbox.call_as(&caller, name, args).await {
                            Ok(v) => {
                                waiting |= ASKS.contains(&name.as_str());
                                (true, v.to_string())
                            }
                            Err(e) => (false, json!({"error": e.code(), "message": e.to_string()}).to_string()),
                        }
                    }
                }
            };
            messages.push(tool_answer(id, answer.clone()));
            step.calls.push(ToolStep { id: id.clone(), name: name.clone(), arguments: kept(arguments), ok, answer: kept(&answer) });
        }
        trace::record(f, &job.task.id, &job.agent.name, &step).await.map_err(store)?;
        if let Some(reason) = stopped {
            return Err(stop(reason).await);
        }
        if let Some(a) = finished {
            let s = |k: &str| a.get(k).and_then(|v| v.as_str()).map(String::from);
            // A task keeps at most what a one-answer run keeps.
            let output = cut(&s("result").unwrap_or_default(), 1024 * 1024);
            let work_products = WorkProducts {
                branch: s("branch"),
                pr_url: s("pr_url"),
                preview_url: s("preview_url"),
                deploy_url: s("deploy_url"),
                repository: None,
            };
            if output.trim().is_empty() && work_products.is_empty() {
                return Err(ExecError::Empty);
            }
            return Ok(ExecSuccess { output, work_products, cost });
        }
        if waiting {
            // The worker parks the task until the person answers; the next attempt goes on from here.
            return Ok(ExecSuccess { output: "waiting for a person's answer".into(), work_products: WorkProducts::default(), cost });
        }
        nudged = false;
        step_no += 1;
    }
}
