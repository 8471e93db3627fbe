//! MCP calls with the stored tokens (rmcp over Streamable HTTP). A server that needs no
//! authorization is called without a token. A call refused as unauthorized gets one refresh
//! and one retry; one refused for `insufficient_scope` gets one sign-in for the wider scope
//! (step-up) and one retry. The answers are printed as JSON.

use anyhow::Context;
use oauth_protocol::challenge::BearerChallenge;
use rmcp::model::{CallToolRequestParams, ProtocolVersion, ReadResourceRequestParams};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

use crate::session;
use crate::store::Store;

type Client = RunningService<rmcp::RoleClient, ()>;

/// What to ask the server.
pub enum Op {
    Tools,
    Call { tool: String, arguments: String },
    Resources,
    Read { uri: String },
}

/// `MCP_CLIENT_PROTOCOL_VERSION` picks the lifecycle: `2026-07-28` and later are stateless
/// (`server/discover`), earlier ones use `initialize`; unset, the server is probed.
fn lifecycle() -> ClientLifecycleMode {
    match std::env::var("MCP_CLIENT_PROTOCOL_VERSION").ok() {
        Some(v) if v.as_str() >= "2026-07-28" => ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
        Some(_) => ClientLifecycleMode::Initialize,
        None => ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        },
    }
}

async fn connect(token: Option<String>, url: &str) -> anyhow::Result<Client> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url);
    if let Some(token) = token {
        config = config.auth_header(token);
    }
    let transport = StreamableHttpClientTransport::with_client(reqwest::Client::default(), config);
    Ok(().serve_with_lifecycle(transport, lifecycle()).await?)
}

fn mentions(e: &anyhow::Error, what: &[&str]) -> bool {
    let text = format!("{e:#}").to_ascii_lowercase();
    what.iter().any(|w| text.contains(w))
}

async fn run(client: &Client, op: &Op) -> anyhow::Result<serde_json::Value> {
    Ok(match op {
        Op::Tools => serde_json::to_value(client.list_all_tools().await?)?,
        Op::Call { tool, arguments } => {
            let args: serde_json::Value =
                serde_json::from_str(arguments).context("the arguments must be a JSON object")?;
            let args = args
                .as_object()
                .cloned()
                .context("the arguments must be a JSON object")?;
            let params = CallToolRequestParams::new(tool.clone()).with_arguments(args);
            serde_json::to_value(client.call_tool(params).await?)?
        }
        Op::Resources => serde_json::to_value(client.list_all_resources().await?)?,
        Op::Read { uri } => serde_json::to_value(
            client
                .read_resource(ReadResourceRequestParams::new(uri.clone()))
                .await?,
        )?,
    })
}

/// One attempt: connect with the current token and run `op`.
async fn attempt(store: &Store, url: &str, op: &Op) -> anyhow::Result<serde_json::Value> {
    let token = session::stored_token(store, url).await?;
    let client = connect(token, url).await?;
    let result = run(&client, op).await;
    let _ = client.cancel().await;
    result
}

/// The scope a server's `insufficient_scope` challenge asks for, read by sending the call
/// once more without the MCP client in between.
async fn challenged_scope(store: &Store, url: &str, op: &Op) -> Option<String> {
    let token = session::stored_token(store, url).await.ok()??;
    let (method, params) = match op {
        Op::Tools => ("tools/list", serde_json::json!({})),
        Op::Call { tool, arguments } => (
            "tools/call",
            serde_json::json!({"name": tool, "arguments": serde_json::from_str::<serde_json::Value>(arguments).ok()?}),
        ),
        Op::Resources => ("resources/list", serde_json::json!({})),
        Op::Read { uri } => ("resources/read", serde_json::json!({"uri": uri})),
    };
    let res = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .json(&serde_json::json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}))
        .send()
        .await
        .ok()?;
    res.headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(BearerChallenge::parse)
        .find(|c| c.error.as_deref() == Some("insufficient_scope"))
        .and_then(|c| c.scope)
}

pub async fn execute(store: &Store, url: &str, op: Op) -> anyhow::Result<String> {
    let manual = std::env::var("MCP_ACCESS_TOKEN").is_ok_and(|t| !t.is_empty());
    let result = match attempt(store, url, &op).await {
        Ok(v) => v,
        Err(e) if manual => return Err(e),
        Err(e) if mentions(&e, &["403", "forbidden", "insufficient_scope"]) => {
            let wanted = challenged_scope(store, url, &op)
                .await
                .with_context(|| format!("{e:#}"))?;
            session::step_up(store, url, &wanted).await?;
            attempt(store, url, &op)
                .await
                .context("refused again after signing in for the wider scope")?
        }
        Err(e) if mentions(&e, &["401", "unauthorized", "auth required"]) => {
            if session::stored_token(store, url).await?.is_none() {
                anyhow::bail!("{url} asks for authorization: run `mcp-client login {url}`");
            }
            // The server may have moved to another authorization server (its metadata says
            // so): register and sign in there, never taking the old credentials along.
            if session::issuer_changed(store, url).await? {
                session::sign_in_again(store, url).await?;
            } else {
                session::refresh(store, url, true).await?;
            }
            attempt(store, url, &op)
                .await
                .with_context(|| format!("{url} refused the new token"))?
        }
        Err(e) => return Err(e),
    };
    Ok(format!("{}\n", serde_json::to_string_pretty(&result)?))
}
