//! `fake-mcp-upstream`: the test crate's MCP server without authorization, over stdio (no
//! arguments) or Streamable HTTP (`--http ADDR`, printing `listening <url>`). With
//! `--conformance` it serves the resource server's conformance fixtures over stdio instead
//! (for the conformance suite through the gateway).

use rmcp::ServiceExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--http") {
        let listener = tokio::net::TcpListener::bind(&args[2]).await?;
        println!("listening http://{}/mcp", listener.local_addr()?);
        return e2e::fake_upstream::serve_http(listener).await;
    }
    if args.get(1).map(String::as_str) == Some("--conformance") {
        let store = resource_server::store::Store::connect("sqlite::memory:").await?;
        let server =
            resource_server::mcp::McpServer::new(store, true, oauth_protocol::clock::system());
        let service = resource_server::mcp::conformance::server::Conformance(server.for_session())
            .serve((tokio::io::stdin(), tokio::io::stdout()))
            .await?;
        service.waiting().await?;
        return Ok(());
    }
    let service = e2e::fake_upstream::Fake
        .serve((tokio::io::stdin(), tokio::io::stdout()))
        .await?;
    service.waiting().await?;
    Ok(())
}
