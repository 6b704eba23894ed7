//! REEF's MCP server: `reef_core::toolbox` spoken over MCP with the official Rust SDK (rmcp), on
//! stdio (`reef mcp`, and `reef-app mcp`, for the CLI agents REEF starts) and streamable HTTP
//! (`/mcp` on `reef serve`'s address, feature `http`, for long-running clients such as OpenClaw).
//! Wiring only: every rule is the toolbox's.
//!
//! Invariant: every request is authenticated afresh — the stdio server with the token it was
//! started with, the HTTP server with the request's own `Authorization: Bearer` header.

pub mod socket;

use reef_core::factory::Factory;
use reef_core::toolbox::{self, Caller, ToolError, Toolbox};
use rmcp::model::*;
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt};
use std::sync::Arc;
#[cfg(feature = "http")]
use tokio_util::sync::CancellationToken;

const INSTRUCTIONS: &str = "REEF is the control plane of this agentic factory. Your token speaks for one task: split it with create_task, \
look things up with search_memory and graph_neighbors, keep the operator informed with report_progress and add_comment, and \
when an action needs a person's yes (request_approval) or an answer only a person has (ask_operator), ask, then end your turn: \
REEF runs the task again with the answer in its comments. Budgets, the approval policy and the audit log apply to every call.";

#[derive(Clone)]
pub struct ReefMcp {
    toolbox: Toolbox,
    /// The stdio server's token; HTTP requests bring their own.
    token: Option<String>,
}

impl ReefMcp {
    pub fn new(toolbox: Toolbox, token: Option<String>) -> Self {
        Self { toolbox, token }
    }

    fn token(&self, ctx: &RequestContext<RoleServer>) -> String {
        if let Some(t) = &self.token {
            return t.clone();
        }
        #[cfg(feature = "http")]
        if let Some(p) = ctx.extensions.get::<axum::http::request::Parts>() {
            return bearer(&p.headers).unwrap_or_default();
        }
        let _ = ctx;
        String::new()
    }

    /// The caller the HTTP middleware already resolved for this request (no second store read).
    fn resolved(&self, ctx: &RequestContext<RoleServer>) -> Option<Caller> {
        #[cfg(feature = "http")]
        if let Some(p) = ctx.extensions.get::<axum::http::request::Parts>() {
            return p.extensions.get::<Caller>().cloned();
        }
        let _ = ctx;
        None
    }

    async fn caller(&self, ctx: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
        match self.resolved(ctx) {
            Some(c) => Ok(c),
            None => toolbox::resolve(&self.toolbox.factory, &self.token(ctx)).await.map_err(protocol_error),
        }
    }
}

#[cfg(feature = "http")]
fn bearer(h: &axum::http::HeaderMap) -> Option<String> {
    let v = h.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).map(|t| t.trim().to_string())
}

/// Errors outside a tool call (listing, reading) travel as JSON-RPC errors carrying the code.
fn protocol_error(e: ToolError) -> McpError {
    let data = Some(serde_json::json!({"code": e.code()}));
    match e {
        ToolError::Invalid(_) => McpError::invalid_params(e.to_string(), data),
        ToolError::Store(_) | ToolError::Unavailable(_) => McpError::internal_error(e.to_string(), data),
        _ => McpError::invalid_request(e.to_string(), data),
    }
}

impl ServerHandler for ReefMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_resources().build())
            .with_server_info(Implementation::new("reef", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(&self, _r: Option<PaginatedRequestParams>, ctx: RequestContext<RoleServer>) -> Result<ListToolsResult, McpError> {
        let caller = self.caller(&ctx).await?;
        let tools = toolbox::tools_for(&caller)
            .into_iter()
            .map(|t| {
                let schema = t.input_schema().as_object().cloned().unwrap_or_default();
                Tool::new(t.name, t.description, Arc::new(schema)).with_annotations(ToolAnnotations::new().read_only(t.read_only))
            })
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(&self, req: CallToolRequestParams, ctx: RequestContext<RoleServer>) -> Result<CallToolResponse, McpError> {
        let args = req.arguments.map(serde_json::Value::Object).unwrap_or(serde_json::Value::Null);
        // A refusal is the tool's answer, which the agent must read: a tool-level error result
        // with {code, message}, not a protocol error its client would hide.
        let r = match self.resolved(&ctx) {
            Some(c) => self.toolbox.call_as(&c, &req.name, args).await,
            None => self.toolbox.call(&self.token(&ctx), &req.name, args).await,
        };
        Ok(match r {
            Ok(v) => CallToolResult::structured(v),
            Err(e) => CallToolResult::structured_error(serde_json::json!({"code": e.code(), "message": e.to_string()})),
        }
        .into())
    }

    async fn list_resources(
        &self,
        _r: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let caller = self.caller(&ctx).await?;
        let items = toolbox::resources_for(&caller)
            .into_iter()
            .map(|(uri, name, desc)| Resource::new(uri, name).with_description(desc).with_mime_type("application/json"))
            .collect();
        Ok(ListResourcesResult::with_all_items(items))
    }

    async fn read_resource(&self, r: ReadResourceRequestParams, ctx: RequestContext<RoleServer>) -> Result<ReadResourceResponse, McpError> {
        let caller = self.caller(&ctx).await?;
        let v = self.toolbox.read(&caller, &r.uri).await.map_err(protocol_error)?;
        let text = serde_json::to_string_pretty(&v).unwrap_or_default();
        Ok(ReadResourceResult::new(vec![ResourceContents::TextResourceContents {
            uri: r.uri.clone(),
            mime_type: Some("application/json".into()),
            text,
            meta: None,
        }])
        .into())
    }
}

/// The toolbox for a host: with the memory index when the config names an embedder that loads.
pub fn toolbox(f: &Factory) -> Toolbox {
    let memory = match reef_host::embedder(&f.config) {
        Ok(e) => Some(reef_core::memory::MemoryIndex::new(f.ports.clone(), e)),
        Err(e) => {
            tracing::warn!(error = %e, "MCP: no embedder; search_memory and remember are unavailable");
            None
        }
    };
    Toolbox::new(f.clone(), memory)
}

/// `reef mcp`: serves one client on stdin/stdout until it hangs up.
pub async fn stdio(f: &Factory) -> anyhow::Result<()> {
    let token = std::env::var("REEF_MCP_TOKEN").unwrap_or_default();
    // Refuse at once rather than answer every request with "unauthorized".
    toolbox::resolve(f, &token).await.map_err(|e| anyhow::anyhow!("reef mcp: {e}"))?;
    let server = ReefMcp::new(toolbox(f), Some(token)).serve(rmcp::transport::stdio()).await?;
    server.waiting().await?;
    Ok(())
}

/// The `/mcp` endpoint for `reef serve`: rejects a request without a valid bearer token with 401
/// before it reaches the protocol.
#[cfg(feature = "http")]
pub fn http_service(f: &Factory, shutdown: CancellationToken) -> axum::Router {
    use axum::response::IntoResponse;
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
    let tb = toolbox(f);
    let mut cfg = StreamableHttpServerConfig::default();
    cfg.cancellation_token = shutdown;
    if let Some(addr) = f.config.listen {
        cfg.allowed_hosts.push(addr.ip().to_string());
        cfg.allowed_hosts.push(addr.to_string());
    }
    // Clients that reach REEF by its public name (a tailnet, a proxy) send that as their Host.
    cfg.allowed_hosts.extend(f.config.public_hosts());
    let tb2 = tb.clone();
    let service = StreamableHttpService::new(move || Ok(ReefMcp::new(tb2.clone(), None)), Arc::new(LocalSessionManager::default()), cfg);
    let auth = move |mut req: axum::extract::Request, next: axum::middleware::Next| {
        let f = tb.factory.clone();
        async move {
            let token = bearer(req.headers()).unwrap_or_default();
            match toolbox::resolve(&f, &token).await {
                Ok(caller) => {
                    // Handed to the handler with the request, so it is not resolved twice.
                    req.extensions_mut().insert(caller);
                    next.run(req).await
                }
                Err(e) => {
                    let body = serde_json::json!({"error": {"code": e.code(), "message": e.to_string()}});
                    (axum::http::StatusCode::UNAUTHORIZED, [(axum::http::header::WWW_AUTHENTICATE, "Bearer")], axum::Json(body))
                        .into_response()
                }
            }
        }
    };
    axum::Router::new().nest_service("/mcp", service).layer(axum::middleware::from_fn(auth))
}
