//! The official Rust MCP SDK with its OAuth support, unchanged, against both servers:
//! 401 → metadata discovery → registration → login and consent (driven over HTTP like a
//! browser) → code + PKCE with `resource` → initialize → tools → resources → refresh.

use e2e::TestStack;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ReadResourceRequestParams, ResourceContents};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{AuthClient, AuthorizationRequest, OAuthState};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;

const CALLBACK: &str = "http://127.0.0.1:8765/callback";

fn text(result: &rmcp::model::CallToolResult) -> serde_json::Value {
    let t = result.content[0].as_text().expect("text content");
    serde_json::from_str(&t.text).unwrap()
}

#[tokio::test]
async fn rmcp_oauth_client_completes_the_whole_flow() {
    // Short-lived access tokens so the client has to refresh during the test.
    let stack = TestStack::builder()
        .authz(|c| c.access_token_ttl = 4)
        .spawn()
        .await;

    // 1. Unauthenticated: the client is told where to go.
    let err = ()
        .serve(StreamableHttpClientTransport::from_uri(
            stack.resource.as_str(),
        ))
        .await
        .expect_err("needs auth");
    let challenge = err
        .auth_challenge()
        .expect("a WWW-Authenticate challenge")
        .to_owned();
    assert!(challenge.contains("resource_metadata="), "{challenge}");

    // 2. Discovery and dynamic registration by the SDK.
    let mut oauth = OAuthState::new(stack.resource.as_str(), None)
        .await
        .expect("discovery");
    oauth
        .start_authorization(
            AuthorizationRequest::new(CALLBACK)
                .with_client_name("rmcp e2e")
                .with_challenge(challenge),
        )
        .await
        .expect("registration");
    let auth_url = oauth
        .get_authorization_url()
        .await
        .expect("authorization URL");
    assert!(
        auth_url.contains("resource="),
        "the SDK sends RFC 8707 resource: {auth_url}"
    );

    // 3. A person signs in and consents.
    let callback = stack.browser_authorize(&auth_url).await;
    assert!(callback.as_str().starts_with(CALLBACK));
    oauth
        .handle_callback_url(callback.as_str())
        .await
        .expect("code exchange (state, PKCE, iss checked)");
    let manager = oauth.into_authorization_manager().expect("authorized");
    let auth = AuthClient::new(reqwest::Client::default(), manager);
    let first_token = auth.get_access_token().await.unwrap();

    // 4. MCP over the authorized transport.
    let transport = StreamableHttpClientTransport::with_client(
        auth.clone(),
        StreamableHttpClientTransportConfig::with_uri(stack.resource.as_str()),
    );
    let client = ().serve(transport).await.expect("initialize");
    let tools = client.list_tools(None).await.unwrap();
    let mut names: Vec<String> = tools.tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "create_secure_note",
            "get_api_usage",
            "get_user_profile",
            "list_secure_notes"
        ]
    );

    let call = |name: &'static str, args: serde_json::Value| {
        let client = &client;
        async move {
            client
                .call_tool(
                    CallToolRequestParams::new(name)
                        .with_arguments(args.as_object().unwrap().clone()),
                )
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        }
    };
    let profile = text(&call("get_user_profile", json!({})).await);
    assert_eq!(profile["username"], "alice");
    assert_eq!(profile["id"], stack.user_id.as_str());
    let note = text(
        &call(
            "create_secure_note",
            json!({"content": "from rmcp", "title": "SDK"}),
        )
        .await,
    );
    let id = note["id"].as_str().unwrap().to_owned();
    let notes = text(&call("list_secure_notes", json!({})).await);
    assert_eq!(notes["notes"][0]["preview"], "from rmcp");
    let usage = text(&call("get_api_usage", json!({})).await);
    assert_eq!(usage["by_name"]["create_secure_note"], 1);

    let resources = client.list_resources(None).await.unwrap();
    assert_eq!(resources.resources[0].uri, "user://profile");
    let templates = client.list_resource_templates(None).await.unwrap();
    assert_eq!(
        templates.resource_templates[0].uri_template,
        "user://notes/{note_id}"
    );
    let read = client
        .read_resource(ReadResourceRequestParams::new(format!("user://notes/{id}")))
        .await
        .unwrap();
    match &read.contents[0] {
        ResourceContents::TextResourceContents { text, .. } => assert!(text.contains("from rmcp")),
        other => panic!("unexpected contents {other:?}"),
    }

    // 5. After the access token expires the SDK refreshes and carries on.
    tokio::time::sleep(std::time::Duration::from_millis(4200)).await;
    let again = text(&call("get_user_profile", json!({})).await);
    assert_eq!(again["username"], "alice");
    let second_token = auth.get_access_token().await.unwrap();
    assert_ne!(first_token, second_token, "the token was refreshed");
    client.cancel().await.unwrap();
}

/// Runs the SDK's authorization for `request` and returns an authorized MCP client.
async fn connect(
    stack: &TestStack,
    request: AuthorizationRequest,
) -> (
    AuthClient<reqwest::Client>,
    rmcp::service::RunningService<rmcp::RoleClient, ()>,
) {
    let mut oauth = OAuthState::new(stack.resource.as_str(), None)
        .await
        .expect("discovery");
    oauth
        .start_authorization(request)
        .await
        .expect("registration");
    let url = oauth.get_authorization_url().await.unwrap();
    let callback = stack.browser_authorize(&url).await;
    oauth
        .handle_callback_url(callback.as_str())
        .await
        .expect("code exchange");
    let auth = AuthClient::new(
        reqwest::Client::default(),
        oauth.into_authorization_manager().unwrap(),
    );
    let transport = StreamableHttpClientTransport::with_client(
        auth.clone(),
        StreamableHttpClientTransportConfig::with_uri(stack.resource.as_str()),
    );
    (auth, ().serve(transport).await.expect("initialize"))
}

/// A pre-registered confidential client (created with the admin command) authenticates
/// with its secret through the SDK.
#[tokio::test]
async fn rmcp_with_a_preregistered_confidential_client() {
    let stack = TestStack::spawn().await;
    let created = authz_server::admin::client_add(
        &stack.store,
        &stack.config,
        "Pre-registered",
        true,
        &[CALLBACK.to_owned()],
        None,
    )
    .await
    .unwrap();
    let request = AuthorizationRequest::new(CALLBACK)
        .with_preregistered_client(created.client_id.clone())
        .with_client_secret(created.client_secret.clone().unwrap())
        .with_scopes(["mcp:read", "mcp:write"]);
    let (_, client) = connect(&stack, request).await;
    let args = json!({"content": "confidential"});
    let r = client
        .call_tool(
            CallToolRequestParams::new("create_secure_note")
                .with_arguments(args.as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    assert!(text(&r)["id"].is_string());
    assert_eq!(
        stack.store.list_clients().await.unwrap().len(),
        1,
        "no dynamic registration happened"
    );
    client.cancel().await.unwrap();
}

/// Step-up with the SDK: it surfaces the 403 `insufficient_scope` challenge; the application
/// authorizes again with the wider scope and the call succeeds.
#[tokio::test]
async fn rmcp_step_up_is_signalled_and_completed_by_reauthorizing() {
    let stack = TestStack::spawn().await;
    let (_, reader) = connect(
        &stack,
        AuthorizationRequest::new(CALLBACK).with_scopes(["mcp:read"]),
    )
    .await;
    let args = json!({"content": "needs write"})
        .as_object()
        .unwrap()
        .clone();
    let err = reader
        .call_tool(CallToolRequestParams::new("create_secure_note").with_arguments(args.clone()))
        .await
        .expect_err("read-only token");
    let challenge = err
        .auth_challenge()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{err:?}"));
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("mcp:write"),
        "{challenge}"
    );
    reader.cancel().await.unwrap();

    let (_, writer) = connect(
        &stack,
        AuthorizationRequest::new(CALLBACK)
            .with_scopes(["mcp:read", "mcp:write"])
            .with_challenge(challenge),
    )
    .await;
    let r = writer
        .call_tool(CallToolRequestParams::new("create_secure_note").with_arguments(args))
        .await
        .unwrap();
    assert!(text(&r)["id"].is_string());
    writer.cancel().await.unwrap();
}

/// The server's own prompt, without the conformance fixtures: listed, and filled from the
/// signed-in user's notes.
#[tokio::test]
async fn rmcp_lists_and_gets_the_per_user_prompt() {
    let stack = TestStack::spawn().await;
    let request = AuthorizationRequest::new(CALLBACK).with_scopes(["mcp:read", "mcp:write"]);
    let (_, client) = connect(&stack, request).await;
    let args = json!({"title": "Groceries", "content": "oat milk, lentils"});
    client
        .call_tool(
            CallToolRequestParams::new("create_secure_note")
                .with_arguments(args.as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    let prompts = client.list_prompts(None).await.unwrap();
    let names: Vec<&str> = prompts.prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["summarize_notes"],
        "no fixtures in the default mode"
    );
    let prompt = client
        .get_prompt(
            rmcp::model::GetPromptRequestParams::new("summarize_notes")
                .with_arguments(json!({"focus": "shopping"}).as_object().unwrap().clone()),
        )
        .await
        .unwrap();
    let text = match &prompt.messages[0].content {
        rmcp::model::ContentBlock::Text(t) => t.text.clone(),
        other => panic!("text expected, got {other:?}"),
    };
    assert!(text.contains("focusing on: shopping"), "{text}");
    assert!(
        text.contains("Groceries") && text.contains("oat milk"),
        "{text}"
    );
    client.cancel().await.unwrap();
}
