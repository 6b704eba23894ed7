//! What the metered endpoint reads of an agent's LLM request and of the gateway's answer, in the
//! four wire shapes agent CLIs speak (OpenAI chat completions, Anthropic messages, OpenAI
//! responses, Gemini's generateContent): the model, a token limit it sets so the worst case fits,
//! and the usage it counts.
//!
//! Invariants: every request that leaves carries a token limit in the field its shape's backends
//! honour (`max_tokens` for chat, never only `max_completion_tokens`), no larger than what the
//! run can pay for; nothing leaves whose cost its body does not show (several answers, inputs
//! fetched by URL, server-side tools, stored conversations, the gateway's own per-call options);
//! usage is read from the answer whether it streams or not.

use super::meter::MeterError;
use crate::rules::pricing::PriceBook;
use crate::Usd;
use serde_json::Value;

/// The routes the metered endpoint forwards; everything else (the gateway's admin API, its key
/// and spend routes) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Chat,
    Messages,
    Responses,
    /// Gemini's `models/MODEL:generateContent` (and `:streamGenerateContent`): the model is the path's.
    Generate,
    Embeddings,
    /// Free: Anthropic's and Gemini's token counters and the model list.
    CountTokens,
    Models,
}

/// The methods of Gemini's model routes REEF forwards.
const GEMINI_METHODS: [&str; 3] = ["generateContent", "streamGenerateContent", "countTokens"];

/// The model and method a Gemini route names: exactly `/v1beta/models/MODEL:METHOD`, the model one
/// plain name, the method one REEF forwards — nothing after it, no escapes, no dot segments (the
/// path goes on to the gateway as it is, so what is checked is what arrives).
pub fn gemini_route(path: &str) -> Option<(&str, &str)> {
    let p = path.split('?').next().unwrap_or("");
    let (model, method) = p.strip_prefix("/v1beta/models/")?.split_once(':')?;
    let plain = !model.is_empty() && model.len() <= 128 && model.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    (plain && model != "." && model != ".." && GEMINI_METHODS.contains(&method)).then_some((model, method))
}

/// The model a Gemini route names.
pub fn path_model(path: &str) -> Option<&str> {
    gemini_route(path).map(|(m, _)| m)
}

impl Route {
    /// The route of `method path` (with or without the `/v1` prefix), if it is one REEF meters.
    pub fn of(method: &str, path: &str) -> Option<Route> {
        let p = path.split('?').next().unwrap_or("");
        if p.starts_with("/v1beta/") {
            return match (method, gemini_route(p)?.1) {
                ("POST", "countTokens") => Some(Route::CountTokens),
                ("POST", _) => Some(Route::Generate),
                _ => None,
            };
        }
        let p = p.strip_prefix("/v1").unwrap_or(p);
        match (method, p) {
            ("POST", "/chat/completions") => Some(Route::Chat),
            ("POST", "/messages") => Some(Route::Messages),
            ("POST", "/responses") => Some(Route::Responses),
            ("POST", "/embeddings") => Some(Route::Embeddings),
            ("POST", "/messages/count_tokens") => Some(Route::CountTokens),
            ("GET", "/models") => Some(Route::Models),
            _ => None,
        }
    }

    /// Whether calls on this route cost money (and so are admitted against the run).
    pub fn metered(self) -> bool {
        !matches!(self, Route::CountTokens | Route::Models)
    }

    /// The field that limits the answer's tokens.
    fn limit_field(self) -> Option<&'static str> {
        match self {
            Route::Chat | Route::Messages => Some("max_tokens"),
            Route::Responses => Some("max_output_tokens"),
            Route::Generate => Some("maxOutputTokens"),
            _ => None,
        }
    }
}

/// A request ready to leave: its body with the limit set, and what it may cost at most.
#[derive(Debug)]
pub struct Shaped {
    pub body: Vec<u8>,
    pub model: String,
    pub stream: bool,
    /// The completion-token limit it carries (0 for embeddings).
    pub limit: u64,
    pub prompt_tokens: u64,
    pub worst: Usd,
}

/// Reads `body` for `route` at `path`, sets its token limit to the smaller of what it asked (else
/// `default_max`) and what `remaining` pays for, and prices its worst case.
pub fn shape(route: Route, path: &str, body: &[u8], remaining: Usd, prices: &PriceBook, default_max: u64) -> Result<Shaped, MeterError> {
    let bad = |m: String| MeterError::BadRequest(m);
    let mut v: Value = serde_json::from_slice(body).map_err(|e| bad(format!("the request body is not JSON: {e}")))?;
    let obj = v.as_object_mut().ok_or_else(|| bad("the request body is not a JSON object".into()))?;
    let model = if route == Route::Generate {
        // Gemini names the model in the path; a body's "model" would be a second, unpriced say.
        obj.remove("model");
        path_model(path).ok_or_else(|| bad("the path names no plain model".into()))?.to_string()
    } else {
        obj.get("model").and_then(Value::as_str).ok_or_else(|| bad("the request names no \"model\"".into()))?.to_string()
    };
    let stream = obj.get("stream").and_then(Value::as_bool).unwrap_or(route == Route::Generate && path.contains(":streamGenerateContent"));
    if let Some(why) = unpriced(obj) {
        return Err(bad(format!("{why}: REEF meters what the request shows, so it sends no call whose cost it cannot see")));
    }
    // The whole body, JSON syntax included, at three bytes a token (English runs about four; the
    // calls a run has in flight are capped, which bounds what a stranger text can add).
    let prompt_tokens = (body.len() as u64).div_ceil(3) + 16;
    let worst = |n: u64| prices.worst_case(&model, prompt_tokens, n).map_err(bad);
    let Some(field) = route.limit_field() else {
        let w = worst(0)?;
        return Ok(Shaped { body: body.to_vec(), model, stream, limit: 0, prompt_tokens, worst: w });
    };
    // Gemini keeps its limit in `generationConfig`; the others at the top.
    let holder = if route == Route::Generate {
        let g = obj.entry("generationConfig").or_insert_with(|| Value::Object(Default::default()));
        g.as_object_mut().ok_or_else(|| bad("\"generationConfig\" is not an object".into()))?
    } else {
        &mut *obj
    };
    let asked = [field, "max_completion_tokens"]
        .iter()
        .filter_map(|k| holder.get(*k).and_then(Value::as_u64))
        .filter(|n| *n > 0)
        .min()
        .unwrap_or(default_max);
    // The most tokens `remaining` pays for: the worst case grows with the limit, so search it.
    let limit = if worst(asked)? <= remaining {
        asked
    } else {
        let (mut lo, mut hi) = (0u64, asked);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if worst(mid)? <= remaining {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    };
    if limit == 0 {
        let w = worst(1)?;
        return Err(MeterError::Exhausted { spent: Usd::ZERO, pending: w, limit: remaining });
    }
    holder.insert(field.into(), Value::from(limit));
    if route == Route::Chat {
        // Servers behind the gateway may ignore `max_completion_tokens` (FACTS: 546 tokens for 10).
        obj.remove("max_completion_tokens");
        if stream {
            // Usage arrives in the last chunk only when asked for.
            let opts = obj.entry("stream_options").or_insert_with(|| Value::Object(Default::default()));
            if let Some(o) = opts.as_object_mut() {
                o.insert("include_usage".into(), Value::Bool(true));
            }
        }
    }
    let worst = worst(limit)?;
    let body = serde_json::to_vec(&v).map_err(|e| bad(e.to_string()))?;
    Ok(Shaped { body, model, stream, limit, prompt_tokens, worst })
}

/// Top-level fields that change what a call costs (or where the gateway sends it) beyond what its
/// body shows: LiteLLM's per-call options, stored conversations, remote tool servers.
const UNPRICED_FIELDS: [&str; 26] = [
    "api_base",
    "base_url",
    "api_key",
    "api_version",
    "custom_llm_provider",
    "mock_response",
    "mock_tool_calls",
    "fallbacks",
    "context_window_fallbacks",
    "model_list",
    "user_config",
    "extra_headers",
    "extra_body",
    "num_retries",
    "previous_response_id",
    "conversation",
    "mcp_servers",
    "container",
    // Stored prompts add input the body does not show; a background answer comes back unmetered.
    "prompt",
    "prompt_id",
    "prompt_variables",
    "background",
    // Gemini: a cached context, and the settings LiteLLM reads instead of `generationConfig`.
    "cachedContent",
    "cached_content",
    "config",
    "generation_config",
];
/// Server-side tools: the provider runs them (searching, fetching, executing) and bills for it.
const SERVER_TOOLS: [&str; 8] =
    ["web_search", "web_fetch", "code_execution", "computer", "mcp", "file_search", "image_generation", "code_interpreter"];
/// Gemini's server-side tools, each a key of a `tools` entry (`{"googleSearch": {}}`), in both
/// spellings Google's API takes.
const GEMINI_SERVER_TOOLS: [&str; 16] = [
    "googleSearch",
    "googleSearchRetrieval",
    "codeExecution",
    "urlContext",
    "computerUse",
    "fileSearch",
    "googleMaps",
    "mcpServers",
    "google_search",
    "google_search_retrieval",
    "code_execution",
    "url_context",
    "computer_use",
    "file_search",
    "google_maps",
    "mcp_servers",
];

/// Refuses a free route's body that carries the gateway's per-call options (where to send the
/// call, with which key): free or not, a call goes only where the gateway's config says.
pub fn check_free(body: &[u8]) -> Result<(), MeterError> {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else { return Ok(()) };
    match obj.keys().find(|k| UNPRICED_FIELDS.contains(&k.as_str()) || k.starts_with("litellm")) {
        Some(k) => Err(MeterError::BadRequest(format!("the field {k:?} is not allowed through REEF's meter"))),
        None => Ok(()),
    }
}

/// Why a request's cost is not what its body shows, if it is not.
fn unpriced(obj: &serde_json::Map<String, Value>) -> Option<String> {
    if let Some(k) = obj.keys().find(|k| UNPRICED_FIELDS.contains(&k.as_str()) || k.starts_with("litellm")) {
        return Some(format!("the field {k:?} is not allowed through REEF's meter"));
    }
    if obj.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Some("\"n\" above 1 asks for several answers".into());
    }
    if let Some(g) = obj.get("generationConfig").and_then(Value::as_object) {
        if g.get("candidateCount").and_then(Value::as_u64).is_some_and(|n| n > 1) {
            return Some("\"candidateCount\" above 1 asks for several answers".into());
        }
        // The gateway also reads snake_case spellings, after REEF's camelCase limit: one
        // spelling only, so the limit REEF sets is the one that holds.
        if let Some(k) = g.keys().find(|k| k.contains('_')) {
            return Some(format!("\"generationConfig.{k}\" is spelt in camelCase through REEF's meter"));
        }
    }
    if let Some(tier) = obj.get("service_tier").and_then(Value::as_str).filter(|t| !matches!(*t, "auto" | "default")) {
        return Some(format!("the service tier {tier:?} is priced apart from the model's price"));
    }
    for t in obj.get("tools").and_then(Value::as_array).into_iter().flatten() {
        let kind = t.get("type").and_then(Value::as_str).unwrap_or("");
        if SERVER_TOOLS.iter().any(|s| kind.starts_with(s)) {
            return Some(format!("the server-side tool {kind:?} runs and bills at the provider"));
        }
        if let Some(k) = t.as_object().and_then(|o| o.keys().find(|k| GEMINI_SERVER_TOOLS.contains(&k.as_str()))) {
            return Some(format!("the server-side tool {k:?} runs and bills at the provider"));
        }
    }
    // Inputs the provider fetches itself (an image or a PDF by URL): their size is not in the body.
    fn fetched(v: &Value, depth: u32) -> bool {
        if depth > 64 {
            return true;
        }
        match v {
            Value::Object(o) => {
                let url_source = o.get("type").and_then(Value::as_str) == Some("url") && o.contains_key("url");
                let remote = |k: &str| {
                    o.get(k)
                        .and_then(|x| x.as_str().or_else(|| x.get("url").and_then(Value::as_str)))
                        .is_some_and(|u| !u.starts_with("data:"))
                };
                url_source
                    || remote("image_url")
                    || remote("file_url")
                    || remote("audio_url")
                    || remote("fileUri")
                    || remote("file_uri")
                    || o.values().any(|x| fetched(x, depth + 1))
            }
            Value::Array(a) => a.iter().any(|x| fetched(x, depth + 1)),
            _ => false,
        }
    }
    ["messages", "input", "system", "contents", "systemInstruction", "system_instruction"]
        .iter()
        .filter_map(|k| obj.get(*k))
        .any(|v| fetched(v, 0))
        .then(|| "an input given by URL is fetched and billed by the provider; send its content instead".into())
}

/// Token counts read from an answer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub prompt: Option<u64>,
    pub completion: Option<u64>,
}

impl Usage {
    pub fn known(&self) -> bool {
        self.prompt.is_some() || self.completion.is_some()
    }

    /// Takes the larger count of each (streams report cumulative numbers, some more than once).
    fn merge(&mut self, u: &Value) {
        let n = |keys: &[&str]| -> Option<u64> {
            let found: Vec<u64> = keys.iter().filter_map(|k| u.get(*k).and_then(Value::as_u64)).collect();
            (!found.is_empty()).then(|| found.iter().sum())
        };
        // OpenAI's `prompt_tokens` includes cached tokens; Anthropic's `input_tokens` leaves them
        // apart, and they are prompt tokens all the same.
        let prompt = if u.get("prompt_tokens").is_some() {
            n(&["prompt_tokens"])
        } else {
            n(&["input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"])
        };
        if let Some(p) = prompt {
            self.prompt = Some(self.prompt.map_or(p, |q| q.max(p)));
        }
        if let Some(c) = n(&["completion_tokens", "output_tokens"]) {
            self.completion = Some(self.completion.map_or(c, |q| q.max(c)));
        }
        // Gemini's `usageMetadata`: thinking is billed as output, tool-use prompts as input.
        if let Some(p) = n(&["promptTokenCount", "toolUsePromptTokenCount"]) {
            self.prompt = Some(self.prompt.map_or(p, |q| q.max(p)));
        }
        if let Some(c) = n(&["candidatesTokenCount", "thoughtsTokenCount"]) {
            self.completion = Some(self.completion.map_or(c, |q| q.max(c)));
        }
    }

    /// Every `usage` object of one answer document or stream event (a JSON array of them, as
    /// Gemini streams without server-sent events, is read element by element).
    fn scan(&mut self, doc: &Value) {
        if let Value::Array(docs) = doc {
            docs.iter().filter(|d| d.is_object()).for_each(|d| self.scan(d));
            return;
        }
        for u in [doc.get("usage"), doc.pointer("/message/usage"), doc.pointer("/response/usage"), doc.get("usageMetadata")]
            .into_iter()
            .flatten()
        {
            if u.is_object() {
                self.merge(u);
            }
        }
    }
}

/// Most of an answer kept to read usage from when it is not a stream.
const MAX_KEPT: usize = 16 * 1024 * 1024;
/// Longest stream line read; longer ones carry text, not usage.
const MAX_LINE: usize = 1024 * 1024;

/// Reads usage from an answer as its bytes pass through, streamed (server-sent events) or whole.
#[derive(Default)]
pub struct UsageScan {
    line: Vec<u8>,
    whole: Vec<u8>,
    overflow: bool,
    usage: Usage,
}

impl UsageScan {
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.whole.len() + chunk.len() <= MAX_KEPT {
            self.whole.extend_from_slice(chunk);
        } else {
            self.overflow = true;
        }
        for &b in chunk {
            if b == b'\n' {
                self.event_line();
                self.line.clear();
            } else if self.line.len() < MAX_LINE {
                self.line.push(b);
            }
        }
    }

    fn event_line(&mut self) {
        let l = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
        if let Some(data) = l.strip_prefix(b"data:") {
            if let Ok(doc) = serde_json::from_slice::<Value>(data.trim_ascii()) {
                self.usage.scan(&doc);
            }
        }
    }

    /// The usage seen; a whole (non-stream) answer is read as one document.
    pub fn finish(mut self) -> Usage {
        self.event_line();
        if !self.usage.known() && !self.overflow {
            if let Ok(doc) = serde_json::from_slice::<Value>(&self.whole) {
                self.usage.scan(&doc);
            }
        }
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> PriceBook {
        PriceBook::from_litellm_yaml(
            "model_list:\n  - model_name: cheap\n    model_info: {input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}\n",
        )
        .unwrap()
    }

    #[test]
    fn routes_reef_meters_and_the_admin_api_it_does_not() {
        assert_eq!(Route::of("POST", "/v1/chat/completions"), Some(Route::Chat));
        assert_eq!(Route::of("POST", "/chat/completions"), Some(Route::Chat));
        assert_eq!(Route::of("POST", "/v1/messages?beta=true"), Some(Route::Messages));
        for admin in ["/key/generate", "/spend/logs", "/config/update", "/v1/../key/generate", "/model/new"] {
            assert_eq!(Route::of("POST", admin), None, "{admin}");
        }
        assert_eq!(Route::of("GET", "/v1/chat/completions"), None);
    }

    #[test]
    fn the_limit_is_set_in_the_field_backends_honour_and_lowered_to_what_is_left() {
        let body = br#"{"model":"cheap","max_completion_tokens":100000,"stream":true,"messages":[]}"#;
        let s = shape(Route::Chat, "/v1/chat/completions", body, Usd::from_dollars(10.0), &book(), 4096).unwrap();
        let v: Value = serde_json::from_slice(&s.body).unwrap();
        assert_eq!(v["max_tokens"], 100000, "{v}");
        assert!(v.get("max_completion_tokens").is_none(), "{v}");
        assert_eq!(v["stream_options"]["include_usage"], true);
        // $0.01 left pays for about 5,000 completion tokens at $2 per million.
        let s = shape(Route::Chat, "/v1/chat/completions", body, Usd::from_dollars(0.01), &book(), 4096).unwrap();
        assert!(s.limit < 5000 && s.limit > 4900, "{}", s.limit);
        for hostile in [
            r#"{"model":"cheap","n":128,"messages":[]}"#,
            r#"{"model":"cheap","mock_response":"free","messages":[]}"#,
            r#"{"model":"cheap","api_base":"http://10.0.0.1","messages":[]}"#,
            r#"{"model":"cheap","litellm_logging_obj":{},"messages":[]}"#,
            r#"{"model":"cheap","tools":[{"type":"web_fetch_20250910","name":"web_fetch"}],"messages":[]}"#,
            r#"{"model":"cheap","messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://x/100-pages.pdf"}}]}]}"#,
            r#"{"model":"cheap","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/big.png"}}]}]}"#,
        ] {
            let e = shape(Route::Chat, "/v1/chat/completions", hostile.as_bytes(), Usd::from_dollars(10.0), &book(), 10).unwrap_err();
            assert!(matches!(e, MeterError::BadRequest(_)), "{hostile}: {e}");
        }
        assert!(check_free(br#"{"model":"cheap","messages":[]}"#).is_ok());
        assert!(
            check_free(br#"{"model":"cheap","api_base":"http://attacker","messages":[]}"#).is_err(),
            "free routes go nowhere else either"
        );
        let inline = r#"{"model":"cheap","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#;
        assert!(
            shape(Route::Chat, "/v1/chat/completions", inline.as_bytes(), Usd::from_dollars(10.0), &book(), 10).is_ok(),
            "inline content is priced by its size"
        );
        assert!(s.worst <= Usd::from_dollars(0.01));
        let s =
            shape(Route::Messages, "/v1/messages", br#"{"model":"cheap","messages":[]}"#, Usd::from_dollars(1.0), &book(), 321).unwrap();
        assert_eq!(s.limit, 321, "no limit asked: the default");
        assert!(matches!(shape(Route::Chat, "/v1/chat/completions", body, Usd(1), &book(), 10), Err(MeterError::Exhausted { .. })));
        assert!(matches!(
            shape(Route::Chat, "/v1/chat/completions", br#"{"model":"nope"}"#, Usd(1_000_000), &book(), 10),
            Err(MeterError::BadRequest(_))
        ));
        assert!(matches!(shape(Route::Chat, "/v1/chat/completions", b"[1]", Usd(1_000_000), &book(), 10), Err(MeterError::BadRequest(_))));
    }

    #[test]
    fn usage_is_read_from_streams_of_each_shape_and_from_whole_answers() {
        let mut s = UsageScan::default();
        // Anthropic: input in message_start, cumulative output in message_delta; split mid-line.
        let sse = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n";
        let (a, b) = sse.split_at(40);
        s.feed(a.as_bytes());
        s.feed(b.as_bytes());
        assert_eq!(s.finish(), Usage { prompt: Some(25), completion: Some(15) });
        let mut s = UsageScan::default();
        s.feed(b"data: {\"choices\":[]}\n\ndata: {\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n");
        assert_eq!(s.finish(), Usage { prompt: Some(7), completion: Some(3) });
        let mut s = UsageScan::default();
        s.feed(br#"{"id":"x","usage":{"prompt_tokens":10,"completion_tokens":20,"cache_read_input_tokens":8}}"#);
        assert_eq!(s.finish(), Usage { prompt: Some(10), completion: Some(20) }, "OpenAI's prompt_tokens already holds the cached ones");
        let mut s = UsageScan::default();
        s.feed(b"data: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":4,\"output_tokens\":9}}}\n");
        assert_eq!(s.finish(), Usage { prompt: Some(4), completion: Some(9) });
        let mut s = UsageScan::default();
        s.feed(b"data: {\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":11,\"candidatesTokenCount\":5}}\r\n\r\n");
        s.feed(b"data: {\"candidates\":[],\"usageMetadata\":{\"promptTokenCount\":11,\"candidatesTokenCount\":20,\"thoughtsTokenCount\":7}}\r\n\r\n");
        assert_eq!(s.finish(), Usage { prompt: Some(11), completion: Some(27) }, "Gemini's thoughts are billed as output");
        let mut s = UsageScan::default();
        s.feed(br#"[{"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1}},{"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":9}}]"#);
        assert_eq!(s.finish(), Usage { prompt: Some(3), completion: Some(9) }, "a stream as one JSON array");
        assert!(!UsageScan::default().finish().known());
    }

    #[test]
    fn responses_and_gemini_requests_are_limited_in_their_own_fields_and_refused_what_they_cannot_price() {
        let ten = Usd::from_dollars(10.0);
        let s = shape(Route::Responses, "/v1/responses", br#"{"model":"cheap","input":[],"stream":true}"#, ten, &book(), 777).unwrap();
        let v: Value = serde_json::from_slice(&s.body).unwrap();
        assert_eq!((v["max_output_tokens"].as_u64(), s.stream), (Some(777), true));
        let path = "/v1beta/models/cheap:streamGenerateContent?alt=sse";
        assert_eq!(Route::of("POST", path), Some(Route::Generate));
        assert_eq!(Route::of("POST", "/v1beta/models/cheap:countTokens"), Some(Route::CountTokens));
        for odd in
            ["/v1beta/models/../key:generateContent", "/v1beta/models/a%2Fb:generateContent", "/v1beta/models/cheap:deleteEverything"]
        {
            assert_eq!(Route::of("POST", odd), None, "{odd}");
        }
        let body = br#"{"model":"dear","contents":[],"generationConfig":{"maxOutputTokens":100000,"temperature":1}}"#;
        let s = shape(Route::Generate, path, body, Usd::from_dollars(0.01), &book(), 4096).unwrap();
        let v: Value = serde_json::from_slice(&s.body).unwrap();
        assert_eq!((s.model.as_str(), s.stream), ("cheap", true), "the path's model, not the body's");
        assert!(v.get("model").is_none() && v["generationConfig"]["temperature"] == 1, "{v}");
        assert!(s.limit < 5000 && v["generationConfig"]["maxOutputTokens"] == s.limit, "lowered to what is left: {v}");
        for hostile in [
            r#"{"model":"cheap","input":[],"previous_response_id":"resp_1"}"#,
            r#"{"model":"cheap","input":[],"tools":[{"type":"web_search"}]}"#,
            r#"{"model":"cheap","input":[{"role":"user","content":[{"type":"input_image","image_url":"https://x/big.png"}]}]}"#,
            r#"{"model":"cheap","prompt":{"id":"pmpt_1"},"input":[]}"#,
            r#"{"model":"cheap","background":true,"input":[]}"#,
            r#"{"model":"cheap","service_tier":"priority","input":[]}"#,
        ] {
            assert!(shape(Route::Responses, "/v1/responses", hostile.as_bytes(), ten, &book(), 10).is_err(), "{hostile}");
        }
        for hostile in [
            r#"{"contents":[],"tools":[{"googleSearch":{}}]}"#,
            r#"{"contents":[],"cachedContent":"cachedContents/abc"}"#,
            r#"{"contents":[],"generationConfig":{"candidateCount":8}}"#,
            r#"{"contents":[{"role":"user","parts":[{"fileData":{"fileUri":"https://x/long.mp4"}}]}]}"#,
            r#"{"contents":[],"generationConfig":7}"#,
            r#"{"contents":[],"config":{"maxOutputTokens":65536}}"#,
            r#"{"contents":[],"generationConfig":{"max_output_tokens":65536,"candidate_count":8}}"#,
            r#"{"contents":[],"tools":[{"google_search":{}}]}"#,
            r#"{"contents":[{"role":"user","parts":[{"file_data":{"file_uri":"https://x/long.mp4"}}]}]}"#,
        ] {
            assert!(shape(Route::Generate, path, hostile.as_bytes(), ten, &book(), 10).is_err(), "{hostile}");
        }
    }
}
