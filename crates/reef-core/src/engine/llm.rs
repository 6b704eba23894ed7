//! The LLM executor: one OpenAI-compatible chat call through the gateway (LiteLLM), inside a
//! budget reservation.
//!
//! Invariant: the reservation is made before the request leaves and is always closed: settled
//! with the real cost (LiteLLM's `x-litellm-response-cost`, else usage × price) or released.

use super::budget::Budget;
use super::exec::*;
use crate::rules::pricing::estimate_tokens;
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
    budget: Budget,
    max_tokens: u64,
}

impl LlmExecutor {
    pub fn new(base_url: &str, api_key: Option<Secret>, budget: Budget, max_tokens: u64, timeout: Duration) -> Self {
        let http = reqwest::Client::builder().timeout(timeout).build().unwrap_or_default();
        Self { http, base_url: base_url.trim_end_matches('/').to_string(), api_key, budget, max_tokens }
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

    async fn run(&self, job: &Job, _progress: ProgressTx, cancel: CancellationToken) -> Result<ExecSuccess, ExecError> {
        let model = job.agent.model.clone().unwrap_or_else(|| {
            self.budget.factory.config.llm_models.get(&job.tier).cloned().unwrap_or_else(|| job.tier.as_str().to_string())
        });
        let system = if job.agent.prompt.is_empty() {
            format!("You are {}, an agent of the factory.", job.agent.name)
        } else {
            job.agent.prompt.clone()
        };
        let user = job.prompt();
        let prompt_tokens = estimate_tokens(&[&system, &user]);
        let worst = self.budget.worst_case(&model, prompt_tokens, self.max_tokens).map_err(ExecError::NotRunnable)?;
        let provider = self.budget.prices.provider(&model).map(String::from);
        let hold =
            self.budget.reserve(&job.agent.name, Some(&job.task), provider.as_deref(), worst).await.map_err(ExecError::from_reserve)?;

        let req = request(&model, system, user, self.max_tokens);
        let started = Instant::now();
        let mut http = self
            .http
            .post(format!("{}/v1/chat/completions", self.base_url))
            .json(&req)
            .header("x-reef-idempotency-key", &job.idempotency_key);
        if let Some(k) = &self.api_key {
            http = http.bearer_auth(k.expose());
        }
        let outcome: Result<(u16, Option<Usd>, Vec<u8>), ExecError> = tokio::select! {
            _ = cancel.cancelled() => Err(ExecError::Cancelled),
            r = async {
                let resp = http.send().await.map_err(|e| ExecError::ProviderDown(format!("gateway at {} unreachable: {e}", self.base_url)))?;
                let status = resp.status().as_u16();
                let cost = resp.headers().get("x-litellm-response-cost").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<f64>().ok()).filter(|c| c.is_finite() && *c >= 0.0).map(Usd::from_dollars);
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
                // The request may have reached the provider; if it did, the proxy billed it, but
                // REEF cannot know the amount: hold nothing back and record nothing.
                let _ = self.budget.release(&hold).await;
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
        let (pt, ct) = resp.usage.as_ref().map(|u| (u.prompt_tokens as u64, u.completion_tokens as u64)).unwrap_or((prompt_tokens, 0));
        let cost = header_cost.or_else(|| self.budget.prices.cost(&model, pt, ct)).unwrap_or_default();
        // Settled at what it really cost, whatever was reserved: an overshoot is counted, not hidden.
        self.budget.settle(&hold, cost).await.map_err(|e| ExecError::Failed(format!("settling budget: {e}")))?;
        if ct > self.max_tokens {
            // The backend answered past the limit it was sent: the reservation's worst case did not
            // hold. Say so loudly; the spend above is already the real one.
            let data = serde_json::json!({
                "task": job.task.id, "agent": job.agent.name, "model": model,
                "limit_tokens": self.max_tokens, "completion_tokens": ct,
                "reserved": hold.reservation.amount, "cost": cost, "alert": true,
            });
            let _ = self.budget.factory.event("budget.overshoot", &format!("agent:{}", job.agent.name), Some(&job.task.id), data).await;
        }
        let _ = self.budget.record_call(job, model.clone(), provider, (pt, ct), cost, latency).await;
        let content = resp.choices.into_iter().next().and_then(|c| c.message.content).unwrap_or_default();
        if content.trim().is_empty() {
            return Err(ExecError::Empty);
        }
        Ok(ExecSuccess { output: truncate(content, MAX_RESULT), work_products: WorkProducts::default(), cost })
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
