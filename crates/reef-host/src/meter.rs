//! The metered LLM endpoint contained agents reach through `reef bridge`: HTTP on a Unix socket of
//! the host that starts them, forwarding each call to the gateway (LiteLLM) with REEF's own key
//! and counting its cost, as it happens, against the run its credential belongs to.
//!
//! Invariants: nothing reaches the gateway without a live run's credential and an admission that
//! fits its reservation; only model routes pass (never the gateway's admin, key or spend API);
//! the agent's headers never carry on to the gateway and REEF's key never comes back; a call is
//! counted whatever happens to the agent's connection (the answer is read to its end).

use crate::PrivateSocket;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use reef_core::engine::meter::{Meter, MeterError};
use reef_core::engine::wire::{shape, Route, UsageScan};
use reef_core::secret::Secret;
use reef_core::Usd;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Largest request body an agent may send (long contexts are large, not this large).
const MAX_REQUEST: usize = 32 * 1024 * 1024;
/// Calls open through the endpoint at once, across runs (each run has its own, smaller cap).
const MAX_OPEN: usize = 256;
/// How long an agent has to send a request's headers.
const HEADER_WAIT: Duration = Duration::from_secs(10);
/// How long an agent has to send a request's body.
const BODY_WAIT: Duration = Duration::from_secs(60);
/// Headers of the agent's that carry on to the gateway: the API's version and beta flags.
const PASSED: [&str; 3] = ["anthropic-version", "anthropic-beta", "openai-beta"];

struct Endpoint {
    meter: Meter,
    gateway: String,
    key: Option<Secret>,
    http: reqwest::Client,
    open: Arc<tokio::sync::Semaphore>,
}

/// Serves the metered endpoint on `path` (0600, in a 0700 directory) until `shutdown`.
pub async fn run(
    meter: Meter,
    gateway: String,
    key: Option<Secret>,
    sock: PrivateSocket,
    shutdown: CancellationToken,
) -> Result<(), String> {
    tracing::info!(socket = %sock.file.0.display(), gateway = %gateway, "metered LLM endpoint for contained agents");
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(3600))
        // REEF's key goes to the gateway and nowhere else: no redirects, no proxy from the environment.
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    let open = Arc::new(tokio::sync::Semaphore::new(MAX_OPEN));
    let st = Arc::new(Endpoint { meter, gateway: gateway.trim_end_matches('/').to_string(), key, http, open });
    let app = axum::Router::new().fallback(handle).with_state(st);
    let PrivateSocket { listener, file: _file } = sock;
    // Its clients are all on this host's socket: one peer, the global bound applies.
    let bounds = crate::http::Bounds { max_connections: MAX_OPEN, per_peer: MAX_OPEN, header_timeout: HEADER_WAIT };
    crate::http::serve(listener, app, bounds, shutdown).await
}

/// An error in the shape agents' SDKs read (`{"error": {"type", "message"}}`).
fn refuse(status: u16, kind: &str, message: impl std::fmt::Display) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = serde_json::json!({"type": "error", "error": {"type": kind, "message": format!("REEF: {message}")}});
    (status, axum::Json(body)).into_response()
}

fn refused(e: &MeterError) -> Response {
    let kind = match e {
        MeterError::Unknown => "authentication_error",
        MeterError::Exhausted { .. } => "reef_budget_exhausted",
        MeterError::Busy { .. } => "rate_limit_error",
        MeterError::BadRequest(_) => "invalid_request_error",
    };
    let mut r = refuse(e.status(), kind, e);
    if matches!(e, MeterError::Busy { .. }) {
        r.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
    }
    r
}

/// The credential, as OpenAI's (`Authorization: Bearer`), Anthropic's (`x-api-key`) or Google's
/// (`x-goog-api-key`) clients send it.
fn credential(h: &HeaderMap) -> Option<&str> {
    let bearer = h.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    bearer.or_else(|| ["x-api-key", "x-goog-api-key"].iter().find_map(|k| h.get(*k).and_then(|v| v.to_str().ok())))
}

/// The path and query that go on to the gateway: the path as the route matched it, and of the
/// query only what the wires need (`alt=sse`, Anthropic's `beta=true`) — never a `key` (Google's
/// other way to send one: the agent's credential stays here, REEF's key goes in a header).
fn onward(uri: &axum::http::Uri) -> String {
    const KEPT: [&str; 2] = ["alt=sse", "beta=true"];
    let kept: Vec<&str> = uri.query().unwrap_or("").split('&').filter(|p| KEPT.contains(p)).collect();
    if kept.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{}", uri.path(), kept.join("&"))
    }
}

async fn handle(State(st): State<Arc<Endpoint>>, req: Request) -> Response {
    let Ok(_slot) = st.open.clone().try_acquire_owned() else {
        return refuse(503, "overloaded_error", format_args!("{MAX_OPEN} calls are open through REEF's meter; retry shortly"));
    };
    let (parts, body) = req.into_parts();
    let Some(route) = Route::of(parts.method.as_str(), parts.uri.path()) else {
        return refuse(404, "not_found_error", format_args!("{} {} is not a model route REEF meters", parts.method, parts.uri.path()));
    };
    let run = match credential(&parts.headers).map(|c| st.meter.authorize(c)) {
        Some(Ok(r)) => r,
        Some(Err(e)) => return refused(&e),
        None => return refused(&MeterError::Unknown),
    };
    let read = tokio::time::timeout(BODY_WAIT, axum::body::to_bytes(body, MAX_REQUEST)).await;
    let bytes = match read {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => return refuse(413, "request_too_large", format_args!("the request body is over {MAX_REQUEST} bytes or broken: {e}")),
        Err(_) => return refuse(408, "timeout_error", format_args!("the request body did not arrive within {BODY_WAIT:?}")),
    };
    let (out, admission, model, limit) = if route.metered() {
        let shaped = match shape(route, parts.uri.path(), &bytes, run.unspent(), st.meter.prices(), st.meter.default_max_tokens) {
            Ok(s) => s,
            Err(e) => {
                if matches!(e, MeterError::Exhausted { .. }) {
                    // Not even a one-token answer fits what it has left: the run has spent its hold.
                    run.stop_now();
                }
                return refused(&e);
            }
        };
        match run.admit(shaped.worst) {
            Ok(a) => (shaped.body, Some(a), shaped.model, shaped.limit),
            Err(e) => return refused(&e),
        }
    } else {
        if let Err(e) = reef_core::engine::wire::check_free(&bytes) {
            return refused(&e);
        }
        (bytes.to_vec(), None, String::new(), 0)
    };
    let path_q = onward(&parts.uri);
    let mut fwd = st.http.request(parts.method.clone(), format!("{}{path_q}", st.gateway)).header("content-type", "application/json");
    for h in PASSED {
        if let Some(v) = parts.headers.get(h) {
            fwd = fwd.header(h, v);
        }
    }
    if let Some(k) = &st.key {
        fwd = fwd.bearer_auth(k.expose()).header("x-api-key", k.expose()).header("x-goog-api-key", k.expose());
    }
    let fwd = fwd.header("x-reef-task", run.job.task.id.as_str()).body(out);
    let (head_tx, head_rx) = tokio::sync::oneshot::channel();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<axum::body::Bytes, std::io::Error>>(32);
    let (meter, gateway) = (st.meter.clone(), st.gateway.clone());
    // The call lives in its own task: if the agent hangs up, it is still read to its end,
    // counted and recorded.
    tokio::spawn(async move {
        let started = Instant::now();
        let resp = match fwd.send().await {
            Ok(r) => r,
            Err(e) => {
                if let Some(a) = admission {
                    // Never connected: nothing was billed. Anything later may have been: worst case.
                    if e.is_connect() {
                        a.charge(Usd::ZERO);
                    }
                }
                let _ = head_tx.send(Err(refuse(502, "api_error", format_args!("the gateway at {gateway} did not answer: {e}"))));
                return;
            }
        };
        let status = resp.status();
        let header_cost = resp
            .headers()
            .get("x-litellm-response-cost")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|c| c.is_finite() && *c >= 0.0)
            .map(Usd::from_dollars);
        let content_type = resp.headers().get("content-type").cloned().unwrap_or(HeaderValue::from_static("application/json"));
        let _ = head_tx.send(Ok((status, content_type)));
        let mut resp = resp;
        let mut scan = UsageScan::default();
        let mut broken = false;
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    scan.feed(&c);
                    let _ = tx.send(Ok(c)).await;
                }
                Ok(None) => break,
                Err(e) => {
                    broken = true;
                    let _ = tx.send(Err(std::io::Error::other(e))).await;
                    break;
                }
            }
        }
        // Counted before the agent sees the answer end: its next call finds the books up to date
        // (else it could be told 429 for a call already over).
        let Some(a) = admission else { return };
        let usage = scan.finish();
        let worst = a.worst();
        let cost = if status.is_client_error() {
            // Refused before any model ran; the gateway's header says if it billed anyway.
            header_cost.unwrap_or(Usd::ZERO)
        } else if !status.is_success() || broken || !usage.known() {
            // A gateway error or a cut answer may have been generated and billed: the worst case.
            header_cost.map_or(worst, |h| h.max(worst))
        } else {
            // The dearer of the gateway's word and the usage at the dearest model its fallbacks reach.
            let counted = meter.prices().worst_case(&model, usage.prompt.unwrap_or(0), usage.completion.unwrap_or(0)).unwrap_or(worst);
            header_cost.map_or(counted, |h| h.max(counted))
        };
        a.charge(cost);
        drop(tx);
        if status.is_success() {
            let tokens = (usage.prompt.unwrap_or(0), usage.completion.unwrap_or(0));
            meter.record(&run, &model, tokens, cost, limit, started.elapsed()).await;
        }
    });
    let (status, content_type) = match head_rx.await {
        Ok(Ok(h)) => h,
        Ok(Err(r)) => return r,
        Err(_) => return refuse(502, "api_error", "the call ended before the gateway answered"),
    };
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let mut r = Response::new(Body::from_stream(stream));
    *r.status_mut() = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    r.headers_mut().insert("content-type", content_type);
    r
}
