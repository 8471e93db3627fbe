//! MCP calls with the stored tokens (rmcp over Streamable HTTP). A call the server refuses
//! as unauthorized is retried once after a refresh; the answers are printed as JSON.

use anyhow::Context;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ReadResourceRequestParams};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;

use crate::session;
use crate::store::Store;

type Client = RunningService<rmcp::RoleClient, ()>;

async fn connect(token: String, url: &str) -> anyhow::Result<Client> {
    let transport = StreamableHttpClientTransport::with_client(
        reqwest::Client::default(),
        StreamableHttpClientTransportConfig::with_uri(url).auth_header(token),
    );
    Ok(().serve(transport).await?)
}

/// Connects with a fresh token; a refusal as unauthorized gets one refresh and one retry.
async fn session_for(store: &Store, url: &str) -> anyhow::Result<Client> {
    let token = session::access_token(store, url).await?;
    match connect(token, url).await {
        Ok(c) => Ok(c),
        Err(e) if is_unauthorized(&e) && std::env::var("MCP_ACCESS_TOKEN").is_err() => {
            let token = session::refresh(store, url, true).await?;
            connect(token, url)
                .await
                .with_context(|| format!("{url} refused the refreshed token"))
        }
        Err(e) => Err(e),
    }
}

fn is_unauthorized(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}");
    text.contains("401") || text.to_ascii_lowercase().contains("unauthorized")
}

fn pretty(v: &impl serde::Serialize) -> anyhow::Result<String> {
    Ok(format!("{}\n", serde_json::to_string_pretty(v)?))
}

pub async fn tools(store: &Store, url: &str) -> anyhow::Result<String> {
    let client = session_for(store, url).await?;
    let tools = client.list_all_tools().await?;
    let _ = client.cancel().await;
    pretty(&tools)
}

pub async fn call(store: &Store, url: &str, tool: &str, arguments: &str) -> anyhow::Result<String> {
    let args: serde_json::Value =
        serde_json::from_str(arguments).context("the arguments must be a JSON object")?;
    let args = args
        .as_object()
        .cloned()
        .context("the arguments must be a JSON object")?;
    let client = session_for(store, url).await?;
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await?;
    let _ = client.cancel().await;
    pretty(&result)
}

pub async fn resources(store: &Store, url: &str) -> anyhow::Result<String> {
    let client = session_for(store, url).await?;
    let list = client.list_all_resources().await?;
    let _ = client.cancel().await;
    pretty(&list)
}

pub async fn read(store: &Store, url: &str, uri: &str) -> anyhow::Result<String> {
    let client = session_for(store, url).await?;
    let result = client
        .read_resource(ReadResourceRequestParams::new(uri.to_owned()))
        .await?;
    let _ = client.cancel().await;
    pretty(&result)
}
