//! The LLM executor: OpenAI-compatible chat calls through the gateway (LiteLLM), each inside a
//! budget reservation — one call that answers for an agent without tools, REEF's agent loop
//! (`agent_loop`) for an agent with tools.
//!
//! Invariant: the reservation is made before the request leaves and is always closed: settled
//! with the real cost (LiteLLM's `x-litellm-response-cost`, else usage × price) or released.

use super::budget::Budget;
use super::exec::*;
use crate::secret::Secret;
use crate::*;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage, ChatCompletionRequestUserMessage, CreateChatCompletionRequest,
    CreateChatCompletionResponse,
};
use async_trait::async_trait;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Largest gateway answer REEF reads; anything bigger is not a chat completion it wants.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Largest completion text kept as a task result.
const MAX_RESULT: usize = 1024 * 1024;

pub struct LlmExecutor {
    http: reqwest::Client,
    base_url: String,
    api_key: Option<Secret>,
    pub(crate) budget: Budget,
    pub(crate) max_tokens: u64,
    /// The memory index the loop's `search_memory` and `remember` use (none: those tools refuse).
    memory: Option<crate::memory::MemoryIndex>,
    /// Where the loop's workspace tools act (none: an agent given them cannot run).
    pub(crate) workspace: Option<super::workspace::Reach>,
}

/// One call's answer and what it cost (already settled and recorded).
pub(crate) struct Call {
    pub resp: CreateChatCompletionResponse,
    pub cost: Usd,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub latency: Duration,
}

impl LlmExecutor {
    pub fn new(base_url: &str, api_key: Option<Secret>, budget: Budget, max_tokens: u64, timeout: Duration) -> Self {
        let http = reqwest::Client::builder().timeout(timeout).build().unwrap_or_default();
        Self { http, base_url: base_url.trim_end_matches('/').to_string(), api_key, budget, max_tokens, memory: None, workspace: None }
    }

    /// Gives agents with tools the factory's memory.
    pub fn with_memory(mut self, memory: Option<crate::memory::MemoryIndex>) -> Self {
        self.memory = memory;
        self
    }

    /// Lets agents with workspace tools act in their task's directory, contained as `reach` says.
    pub fn with_workspace(mut self, reach: super::workspace::Reach) -> Self {
        self.workspace = Some(reach);
        self
    }

    /// The model a job runs on: the agent's own, else its tier's.
    pub(crate) fn model_for(&self, job: &Job) -> String {
        job.model(&self.budget.factory.config.llm_models)
    }

    pub(crate) fn toolbox(&self) -> crate::toolbox::Toolbox {
        crate::toolbox::Toolbox::new(self.budget.factory.clone(), self.memory.clone())
    }
}

/// Sorts a gateway error answer into what the worker acts on.
pub fn classify(status: u16, body: &str) -> ExecError {
    let short: String = body.chars().take(300).collect();
    let lower = body.to_lowercase();
    match status {
        429 => ExecError::RateLimited(short),
        400 | 413 | 422
            if lower.contains("context") && (lower.contains("length") || lower.contains("window") || lower.contains("exceed")) =>
        {
            ExecError::ContextTooLong(short)
        }
        400 | 404 | 413 | 422 => ExecError::BadRequest(short),
        401 | 403 => ExecError::NotRunnable(format!("the gateway refused REEF's key (set REEF_LLM_API_KEY): {short}")),
        _ => ExecError::ProviderDown(format!("HTTP {status}: {short}")),
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("\n[… truncated by REEF]");
    }
    s
}

/// The chat request. The limit goes as `max_tokens`: LiteLLM maps it to what each provider
/// honours (`max_completion_tokens` for OpenAI's reasoning models), while a bare
/// `max_completion_tokens` reaches OpenAI-compatible servers that ignore it (measured: llama.cpp's
/// server answered 546 tokens to a limit of 10 sent that way, and 10 to `max_tokens`).
#[allow(deprecated)] // OpenAI deprecated `max_tokens` for its own API only; the gateway needs it.
fn request(model: &str, system: String, user: String, max_tokens: u64) -> CreateChatCompletionRequest {
    CreateChatCompletionRequest {
        model: model.to_string(),
        messages: vec![
            ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage::from(system)),
            ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage::from(user)),
        ],
        max_tokens: Some(max_tokens.min(u32::MAX as u64) as u32),
        ..Default::default()
    }
}

#[async_trait]
impl Executor for LlmExecutor {
    fn name(&self) -> &str {
        "llm"
    }

    async fn run(&self, job: &Job, progress: ProgressTx, cancel: CancellationToken) -> Result<ExecSuccess, ExecError> {
        if !job.agent.tools.is_empty() {
            return super::agent_loop::run(self, job, progress, cancel).await;
        }
        let model = self.model_for(job);
        let system = if job.agent.prompt.is_empty() {
            format!("You are {}, an agent of the factory.", job.agent.name)
        } else {
            job.agent.prompt.clone()
        };
        let user = job.prompt();
        // Estimated high (three bytes a token, the meter's rule): a reservation that holds.
        let prompt_tokens = ((system.len() + user.len()) as u64).div_ceil(3) + 16;
        let req = request(&model, system, user, self.max_tokens);
        let call = self.call(job, &model, req, prompt_tokens, &cancel).await?;
        let content = call.resp.choices.into_iter().next().and_then(|c| c.message.content).unwrap_or_default();
        if content.trim().is_empty() {
            return Err(ExecError::Empty);
        }
        Ok(ExecSuccess { output: truncate(content, MAX_RESULT), work_products: WorkProducts::default(), cost: call.cost })
    }
}

impl LlmExecutor {
    /// One chat call inside a hold: reserved at its worst case (`prompt_tokens` estimated, the
    /// request's whole limit) before it leaves, settled at what it cost, recorded in `llm_calls`;
    /// an answer past the limit is raised as `budget.overshoot`.
    pub(crate) async fn call(
        &self,
        job: &Job,
        model: &str,
        req: CreateChatCompletionRequest,
        prompt_tokens: u64,
        cancel: &CancellationToken,
    ) -> Result<Call, ExecError> {
        #[allow(deprecated)]
        let limit = req.max_tokens.map(u64::from).unwrap_or(self.max_tokens);
        let worst = self.budget.worst_case(model, prompt_tokens, limit).map_err(ExecError::NotRunnable)?;
        let provider = self.budget.prices.provider(model).map(String::from);
        let hold =
            self.budget.reserve(&job.agent.name, Some(&job.task), provider.as_deref(), worst).await.map_err(ExecError::from_reserve)?;
        let started = Instant::now();
        let mut http = self
            .http
            .post(format!("{}/v1/chat/completions", self.base_url))
            .json(&req)
            .header("x-reef-idempotency-key", &job.idempotency_key);
        if let Some(k) = &self.api_key {
            http = http.bearer_auth(k.expose());
        }
        // Set once a 2xx answer has begun (with the gateway's cost header, if any): from then on
        // the provider has billed, whatever happens to the rest of the answer.
        let billed = std::sync::Mutex::new(None::<Option<Usd>>);
        let outcome: Result<(u16, Option<Usd>, Vec<u8>), ExecError> = tokio::select! {
            _ = cancel.cancelled() => Err(ExecError::Cancelled),
            r = async {
                let resp = http.send().await.map_err(|e| ExecError::ProviderDown(format!("gateway at {} unreachable: {e}", self.base_url)))?;
                let status = resp.status().as_u16();
                let cost = resp.headers().get("x-litellm-response-cost").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<f64>().ok()).filter(|c| c.is_finite() && *c >= 0.0).map(Usd::from_dollars);
                if (200..300).contains(&status) {
                    *billed.lock().unwrap_or_else(|p| p.into_inner()) = Some(cost);
                }
                let mut body = vec![];
                let mut resp = resp;
                while let Some(chunk) = resp.chunk().await.map_err(|e| ExecError::ProviderDown(format!("reading the gateway's answer: {e}")))? {
                    if body.len() + chunk.len() > MAX_BODY {
                        return Err(ExecError::Garbage(format!("answer larger than {MAX_BODY} bytes")));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok((status, cost, body))
            } => r,
        };
        let latency = started.elapsed();
        let (status, header_cost, body) = match outcome {
            Ok(x) => x,
            Err(e) => {
                let seen = *billed.lock().unwrap_or_else(|p| p.into_inner());
                match seen {
                    // A 2xx answer cut short (or too large): billed, at its header's cost or,
                    // unknown, at its worst case.
                    Some(header) => {
                        let _ = self.budget.settle(&hold, header.unwrap_or(hold.reservation.amount)).await;
                    }
                    // No answer began: whether the provider saw it is unknown, and nothing says
                    // what it cost; the hold goes back.
                    None => {
                        let _ = self.budget.release(&hold).await;
                    }
                }
                return Err(e);
            }
        };
        let text = String::from_utf8_lossy(&body).to_string();
        if !(200..300).contains(&status) {
            let _ = self.budget.release(&hold).await;
            return Err(classify(status, &text));
        }
        let parsed: Result<CreateChatCompletionResponse, _> = serde_json::from_str(&text);
        let resp = match parsed {
            Ok(r) => r,
            Err(e) => {
                // It answered 2xx, so it may have billed; settle what the header says, if anything.
                let _ = self.budget.settle(&hold, header_cost.unwrap_or_default()).await;
                return Err(ExecError::Garbage(format!("{e}; body starts {:?}", text.chars().take(120).collect::<String>())));
            }
        };
        // No usage in the answer: counted at the worst case it was reserved for.
        let (pt, ct) = resp.usage.as_ref().map(|u| (u.prompt_tokens as u64, u.completion_tokens as u64)).unwrap_or((prompt_tokens, limit));
        let cost = header_cost.or_else(|| self.budget.prices.cost(model, pt, ct)).unwrap_or_default();
        // Settled at what it really cost, whatever was reserved: an overshoot is counted, not hidden.
        self.budget.settle(&hold, cost).await.map_err(|e| ExecError::Failed(format!("settling budget: {e}")))?;
        if ct > limit || cost > hold.reservation.amount {
            // The backend answered past the limit it was sent, or the prompt was longer than its
            // estimate: the reservation's worst case did not hold. Say so loudly; the spend above
            // is already the real one.
            let data = serde_json::json!({
                "task": job.task.id, "agent": job.agent.name, "model": model,
                "limit_tokens": limit, "completion_tokens": ct,
                "reserved": hold.reservation.amount, "cost": cost, "alert": true,
            });
            let _ = self.budget.factory.event("budget.overshoot", &format!("agent:{}", job.agent.name), Some(&job.task.id), data).await;
        }
        let _ = self.budget.record_call(job, model.to_string(), provider, (pt, ct), cost, latency).await;
        Ok(Call { resp, cost, prompt_tokens: pt, completion_tokens: ct, latency })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_errors_are_classified() {
        assert!(matches!(classify(429, "slow down"), ExecError::RateLimited(_)));
        assert!(matches!(classify(400, "ContextWindowExceededError: context length exceeded"), ExecError::ContextTooLong(_)));
        assert!(matches!(classify(400, "invalid model"), ExecError::BadRequest(_)));
        assert!(matches!(classify(401, "bad key"), ExecError::NotRunnable(_)));
        assert!(matches!(classify(503, "upstream down"), ExecError::ProviderDown(_)));
        assert!(classify(503, "").escalates());
        assert!(classify(400, "x").is_final());
    }

    #[test]
    fn the_token_limit_goes_as_max_tokens_which_every_backend_honours() {
        let v = serde_json::to_value(request("local", "sys".into(), "hi".into(), 10)).unwrap();
        assert_eq!(v["max_tokens"], 10, "{v}");
        assert!(v.get("max_completion_tokens").is_none_or(|x| x.is_null()), "{v}");
    }

    #[test]
    fn results_are_capped_on_a_char_boundary() {
        let s = truncate("é".repeat(10), 5);
        assert!(s.starts_with("éé") && s.ends_with("[… truncated by REEF]"));
    }
}
