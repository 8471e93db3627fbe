#![allow(deprecated)] // Sampling is what this server asks its client for.
//! An MCP server without authorization, as the gateway tests and the benchmark put behind
//! it: over stdio, or Streamable HTTP recording the headers of every request (which
//! `GET /__seen` returns). The `fake-mcp-upstream` binary runs it as a process. Its tools say what
//! the server saw: `whoami` the `_meta` identity and this process's id, `echo` its
//! arguments, `slow` sends progress and waits to be cancelled, `ask` asks the client's
//! model (sampling), `crash` ends the process; `admin-reset` is one no policy should allow.

use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock,
    CreateMessageRequestParams, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam,
    SamplingMessage, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Value, json};

/// The headers of every request the HTTP server got.
pub type Seen = Arc<Mutex<Vec<Vec<(String, String)>>>>;

#[derive(Clone, Default)]
pub struct Fake;

fn tool(name: &str) -> Tool {
    Tool::new_with_raw(
        name.to_owned(),
        Some(format!("{name} (fake upstream)").into()),
        Arc::new(json!({"type": "object"}).as_object().unwrap().clone()),
    )
}

fn text(v: Value) -> CallToolResponse {
    CallToolResult::success(vec![ContentBlock::text(v.to_string())]).into()
}

impl ServerHandler for Fake {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::default();
        info.capabilities = ServerCapabilities::builder().enable_tools().build();
        info.server_info.name = "fake-upstream".into();
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(
            ["whoami", "echo", "slow", "ask", "crash", "admin-reset"]
                .into_iter()
                .map(tool)
                .collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        match request.name.as_ref() {
            "whoami" => Ok(text(json!({
                "identity": ctx.meta.get("mcp-authz/identity"),
                "pid": std::process::id(),
                "arguments": request.arguments,
            }))),
            "echo" => Ok(text(json!({"arguments": request.arguments}))),
            "slow" => {
                let token = ctx.meta.get_progress_token();
                for step in 0..100u32 {
                    if let Some(t) = &token {
                        let _ = ctx
                            .peer
                            .notify_progress(
                                ProgressNotificationParam::new(t.clone(), f64::from(step))
                                    .with_total(100.0),
                            )
                            .await;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                        () = ctx.ct.cancelled() => return Ok(text(json!({"cancelled": true}))),
                    }
                }
                Ok(text(json!({"done": true})))
            }
            "ask" => {
                let answer = ctx
                    .peer
                    .create_message(CreateMessageRequestParams::new(
                        vec![SamplingMessage::user_text("what is the answer?")],
                        50,
                    ))
                    .await
                    .map_err(|e| McpError::internal_error(e.to_string(), None))?;
                Ok(text(json!({"sampled": answer.message.content})))
            }
            "crash" => std::process::exit(3),
            "admin-reset" => Ok(text(json!({"reset": true}))),
            other => Err(McpError::invalid_params(format!("no tool {other}"), None)),
        }
    }
}

/// Serves over Streamable HTTP at `/mcp` on `listener` until the process ends.
pub async fn serve_http(listener: tokio::net::TcpListener) -> anyhow::Result<()> {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService,
    };
    let seen: Seen = Arc::default();
    let service = StreamableHttpService::new(
        || Ok(Fake),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let record = seen.clone();
    let app = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let record = record.clone();
                async move {
                    record.lock().unwrap().push(
                        req.headers()
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                            .collect(),
                    );
                    next.run(req).await
                }
            },
        ))
        .route(
            "/__seen",
            axum::routing::get(move || {
                let seen = seen.clone();
                async move { axum::Json(json!(*seen.lock().unwrap())) }
            }),
        );
    // Without TCP_NODELAY every SSE answer waits for the delayed ACK (~40 ms).
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|t| {
        let _ = t.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}
