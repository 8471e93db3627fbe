//! The gateway in front of MCP servers without authorization (`fake-mcp-upstream`, over
//! stdio and Streamable HTTP): the upstream never sees the client's token and gets the
//! caller's identity (a JWT that verifies at the gateway's JWKS, or `_meta` that a client
//! cannot forge); what the policy does not name is hidden and refused with 403; each user
//! gets their own stdio child, a crashed one is started again; progress, sampling and
//! cancellation are relayed; every call is in the audit trail.

// Sampling is relayed, deprecated or not.
#![allow(deprecated)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e::{TestStack, new_browser};
use resource_server::gateway::Upstream;
use resource_server::gateway::settings::Rule;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientRequest, CreateMessageRequestParams,
    CreateMessageResult, ProgressNotificationParam, SamplingMessage, ServerResult,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RequestContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ErrorData as McpError, RoleClient, ServiceExt};
use serde_json::{Value, json};

const FAKE: &str = env!("CARGO_BIN_EXE_fake-mcp-upstream");
const GW_CLIENT: &str = "gw-introspection";
const GW_SECRET: &str = "gw-introspection-secret-0123456789";

/// A client that answers sampling with "42" and counts progress notifications.
#[derive(Clone, Default)]
pub(crate) struct Client {
    pub(crate) progress: Arc<Mutex<Vec<f64>>>,
}

impl ClientHandler for Client {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        let mut info = rmcp::model::ClientConfig::default();
        info.capabilities = rmcp::model::ClientCapabilities::builder()
            .enable_sampling()
            .enable_elicitation()
            .build();
        info
    }

    async fn create_elicitation(
        &self,
        _request: rmcp::model::ElicitRequestParams,
        _ctx: RequestContext<RoleClient>,
    ) -> Result<rmcp::model::ElicitResult, McpError> {
        Ok(rmcp::model::ElicitResult::new(
            rmcp::model::ElicitationAction::Decline,
        ))
    }

    async fn create_message(
        &self,
        _params: CreateMessageRequestParams,
        _ctx: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, McpError> {
        Ok(CreateMessageResult::new(
            SamplingMessage::assistant_text("42"),
            "test-model".into(),
        ))
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _ctx: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params.progress);
    }
}

pub(crate) fn upstream(name: &str) -> Upstream {
    let mut up: Upstream = toml_like(name);
    up.rules = vec![Rule {
        tools: vec![
            "whoami".into(),
            "echo".into(),
            "slow".into(),
            "ask".into(),
            "crash".into(),
        ],
        resources: Vec::new(),
        prompts: Vec::new(),
        scope: "mcp:read".into(),
    }];
    up
}

pub(crate) fn toml_like(name: &str) -> Upstream {
    serde_json::from_value(json!({
        "name": name,
        "client_id": GW_CLIENT,
        "client_secret": GW_SECRET,
    }))
    .unwrap()
}

/// A stack whose resource server also serves `up` at `/<name>/mcp`.
pub(crate) async fn stack_with(up: Upstream) -> (TestStack, String) {
    e2e::gateway_stack(up, GW_CLIENT, GW_SECRET).await
}

pub(crate) async fn token(
    stack: &TestStack,
    browser: &reqwest::Client,
    user: (&str, &str),
    resource: &str,
) -> String {
    stack
        .user_token_for(browser, user.0, user.1, "mcp:read", resource)
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) async fn connect(
    url: &str,
    token: &str,
) -> (RunningService<RoleClient, Client>, Client) {
    let handler = Client::default();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url).auth_header(token),
    );
    (
        handler
            .clone()
            .serve(transport)
            .await
            .expect("initialize through the gateway"),
        handler,
    )
}

pub(crate) async fn call(
    client: &RunningService<RoleClient, Client>,
    name: &'static str,
    args: Value,
) -> Result<Value, String> {
    let result = client
        .call_tool(
            CallToolRequestParams::new(name).with_arguments(args.as_object().unwrap().clone()),
        )
        .await
        .map_err(|e| e.to_string())?;
    let text = &result.content[0].as_text().expect("text").text;
    Ok(serde_json::from_str(text).unwrap())
}

/// A raw JSON-RPC POST to an MCP endpoint: (status, WWW-Authenticate, session id).
pub(crate) async fn post(
    url: &str,
    token: &str,
    session: Option<&str>,
    body: Value,
) -> (u16, String, Option<String>) {
    let mut req = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25")
        .body(body.to_string());
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    let res = req.send().await.unwrap();
    let header = |n: &str| {
        res.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    (
        res.status().as_u16(),
        header("www-authenticate").unwrap_or_default(),
        header("mcp-session-id"),
    )
}

pub(crate) struct HttpUpstream {
    child: std::process::Child,
    url: String,
}

impl Drop for HttpUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn http_upstream() -> HttpUpstream {
    use std::io::BufRead;
    let mut child = std::process::Command::new(FAKE)
        .args(["--http", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening ")
        .expect("listening line")
        .to_owned();
    HttpUpstream { child, url }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_upstream_gets_a_verifiable_identity_and_never_the_token() {
    let fake = http_upstream();
    let mut up = upstream("rec");
    up.url = Some(fake.url.clone());
    let (stack, gw) = stack_with(up).await;
    let browser = new_browser();
    let token = token(&stack, &browser, (e2e::USERNAME, e2e::PASSWORD), &gw).await;
    let (client, _) = connect(&gw, &token).await;

    let mut names: Vec<String> = client
        .list_tools(None)
        .await
        .unwrap()
        .tools
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["ask", "crash", "echo", "slow", "whoami"],
        "admin-reset is hidden"
    );
    let echoed = call(&client, "echo", json!({"x": 1})).await.unwrap();
    assert_eq!(echoed["arguments"], json!({"x": 1}));
    // The upstream's sampling request reaches this client, and its answer goes back.
    let sampled = call(&client, "ask", json!({})).await.unwrap();
    assert_eq!(sampled["sampled"]["text"], "42", "{sampled}");

    // What the upstream saw: never the token, cookies or Authorization; always a fresh
    // identity token that verifies at the gateway's JWKS.
    let seen: Vec<Vec<(String, String)>> = reqwest::get(fake.url.replace("/mcp", "/__seen"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(seen.len() >= 3, "{seen:?}");
    let jwks: jsonwebtoken::jwk::JwkSet =
        reqwest::get(stack.resource.replace("/mcp", "/.well-known/jwks.json"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    for headers in &seen {
        for (name, value) in headers {
            assert!(
                name != "authorization" && name != "cookie",
                "{name} forwarded"
            );
            assert!(
                !value.contains(&token),
                "the client's token reached the upstream in {name}"
            );
        }
        let identity = &headers
            .iter()
            .find(|(n, _)| n == "x-mcp-identity")
            .expect("an identity header on every request")
            .1;
        let header = jsonwebtoken::decode_header(identity).unwrap();
        let key = jwks
            .find(header.kid.as_deref().unwrap())
            .expect("the signing key is published");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&[fake.url.as_str()]);
        let claims = jsonwebtoken::decode::<Value>(
            identity,
            &jsonwebtoken::DecodingKey::from_jwk(key).unwrap(),
            &validation,
        )
        .expect("the identity token verifies")
        .claims;
        assert_eq!(claims["sub"], stack.user_id.as_str());
        assert_eq!(claims["scope"], "mcp:read");
        assert_eq!(claims["iss"], stack.resource.trim_end_matches("/mcp"));
        assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 60);
    }

    // Outside the policy: refused with 403 before it reaches the upstream.
    let (status, _, session) = post(
        &gw,
        &token,
        None,
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, challenge, _) = post(
        &gw,
        &token,
        session.as_deref(),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "admin-reset", "arguments": {}}}),
    )
    .await;
    assert_eq!(status, 403);
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    // The token for this server's own /mcp is not for the gateway endpoint, and back.
    let own = token_for_own(&stack).await;
    let (status, challenge, _) = post(
        &gw,
        &own,
        None,
        json!({"jsonrpc": "2.0", "id": 0, "method": "ping"}),
    )
    .await;
    assert_eq!(status, 401, "{challenge}");
    let (status, _, _) = post(
        &stack.resource,
        &token,
        None,
        json!({"jsonrpc": "2.0", "id": 0, "method": "ping"}),
    )
    .await;
    assert_eq!(status, 401);
    // Its metadata names its own resource.
    let meta: Value = reqwest::get(stack.resource.replace(
        "/mcp",
        &format!("/.well-known/oauth-protected-resource/{}/mcp", "rec"),
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(meta["resource"], gw.as_str());
    client.cancel().await.unwrap();
}

async fn token_for_own(stack: &TestStack) -> String {
    stack
        .user_token(&new_browser(), e2e::USERNAME, e2e::PASSWORD, "mcp:read")
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_gets_a_stdio_child_with_an_identity_they_cannot_forge() {
    let mut up = upstream("fake");
    up.command = Some(FAKE.into());
    let (stack, gw) = stack_with(up).await;
    let alice = token(&stack, &new_browser(), (e2e::USERNAME, e2e::PASSWORD), &gw).await;
    let (bob_id, bob_browser) = stack.second_user().await;
    let bob = token(&stack, &bob_browser, ("bob", "bob password 123"), &gw).await;
    let (a, _) = connect(&gw, &alice).await;
    let (b, _) = connect(&gw, &bob).await;
    let who_a = call(&a, "whoami", json!({})).await.unwrap();
    let who_b = call(&b, "whoami", json!({})).await.unwrap();
    assert_eq!(who_a["identity"]["sub"], stack.user_id.as_str());
    assert_eq!(who_b["identity"]["sub"], bob_id.as_str());
    assert_ne!(who_a["pid"], who_b["pid"], "one child per session");

    // A client-supplied identity in _meta is replaced by the real one.
    let mut meta = rmcp::model::RequestMetaObject::default();
    meta.insert("mcp-authz/identity".into(), json!({"sub": "forged"}));
    let answer = a
        .peer()
        .send_request_with_option(
            ClientRequest::CallToolRequest(CallToolRequest::new(CallToolRequestParams::new(
                "whoami",
            ))),
            PeerRequestOptions::no_options().with_meta(meta),
        )
        .await
        .unwrap()
        .await_response()
        .await
        .unwrap();
    let ServerResult::CallToolResult(r) = answer else {
        panic!("{answer:?}")
    };
    let forged: Value = serde_json::from_str(&r.content[0].as_text().unwrap().text).unwrap();
    assert_eq!(
        forged["identity"]["sub"],
        stack.user_id.as_str(),
        "{forged}"
    );

    // A child that dies: the call gets an error, not a hang; the next one a new child.
    let crashed = tokio::time::timeout(Duration::from_secs(10), call(&a, "crash", json!({})))
        .await
        .expect("an answer, not a hang");
    assert!(crashed.is_err(), "{crashed:?}");
    let again = call(&a, "whoami", json!({})).await.unwrap();
    assert_eq!(again["identity"]["sub"], stack.user_id.as_str());
    assert_ne!(again["pid"], who_a["pid"], "started again");
    assert_eq!(
        call(&b, "whoami", json!({})).await.unwrap()["pid"],
        who_b["pid"],
        "bob's child is untouched"
    );
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_and_cancellation_are_relayed_and_calls_are_audited() {
    let mut up = upstream("fake");
    up.command = Some(FAKE.into());
    let (stack, gw) = stack_with(up).await;
    let alice = token(&stack, &new_browser(), (e2e::USERNAME, e2e::PASSWORD), &gw).await;
    let (client, handler) = connect(&gw, &alice).await;
    let handle = client
        .peer()
        .send_cancellable_request(
            ClientRequest::CallToolRequest(CallToolRequest::new(CallToolRequestParams::new(
                "slow",
            ))),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    for _ in 0..100 {
        if handler.progress.lock().unwrap().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        handler.progress.lock().unwrap().len() >= 3,
        "progress relayed"
    );
    handle.cancel(Some("enough".into())).await.unwrap();
    let echoed = call(&client, "echo", json!({"after": "cancel"}))
        .await
        .unwrap();
    assert_eq!(echoed["arguments"]["after"], "cancel");
    let rs_store = resource_server::store::Store::connect(&stack.rs_config.database_url)
        .await
        .unwrap();
    let mut outcomes = Vec::new();
    for _ in 0..50 {
        outcomes = rs_store
            .gateway_calls(10)
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.tool, c.outcome, c.user_sub))
            .collect::<Vec<_>>();
        if outcomes.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        outcomes.contains(&("slow".into(), "cancelled".into(), stack.user_id.clone())),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&("echo".into(), "ok".into(), stack.user_id.clone())),
        "{outcomes:?}"
    );
    let metrics = reqwest::get(stack.resource.replace("/mcp", "/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The audit is purged by age: an old row goes, today's stay.
    let now = outcomes.len();
    let mut old = rs_store.gateway_calls(1).await.unwrap().remove(0);
    old.id = "old".into();
    old.at = 1;
    rs_store.insert_gateway_call(&old).await.unwrap();
    assert_eq!(rs_store.purge_gateway_calls(2).await.unwrap(), 1);
    assert_eq!(rs_store.gateway_calls(50).await.unwrap().len(), now);
    assert!(
        metrics.contains("gateway_calls_total{upstream=\"fake\",tool=\"echo\",outcome=\"ok\"} 1"),
        "{metrics}"
    );
    client.cancel().await.unwrap();
}

/// A `stateless` child is shared by every session; `identity_argument` names the caller in
/// the tool's own arguments too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateless_upstream_shares_one_child_and_can_take_the_identity_as_an_argument() {
    let mut up = upstream("shared");
    up.command = Some(FAKE.into());
    up.stateless = true;
    up.identity_argument = Some("user".into());
    let (stack, gw) = stack_with(up).await;
    let alice = token(&stack, &new_browser(), (e2e::USERNAME, e2e::PASSWORD), &gw).await;
    let (bob_id, bob_browser) = stack.second_user().await;
    let bob = token(&stack, &bob_browser, ("bob", "bob password 123"), &gw).await;
    let (a, _) = connect(&gw, &alice).await;
    let (b, _) = connect(&gw, &bob).await;
    let who_a = call(&a, "whoami", json!({"user": "forged"})).await.unwrap();
    let who_b = call(&b, "whoami", json!({})).await.unwrap();
    assert_eq!(who_a["pid"], who_b["pid"], "one shared child");
    assert_eq!(who_a["arguments"]["user"], stack.user_id.as_str());
    assert_eq!(who_b["arguments"]["user"], bob_id.as_str());
    assert_eq!(who_b["identity"]["sub"], bob_id.as_str());
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}

/// Sessions are capped per upstream; only allow-listed headers reach it; `/readyz` reports
/// each upstream without failing for one that is down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_capped_headers_allow_listed_and_readiness_reports_upstreams() {
    let fake = http_upstream();
    let mut up = upstream("rec");
    up.url = Some(fake.url.clone());
    up.max_sessions = 1;
    up.forward_headers = vec!["x-request-id".into()];
    let (stack, gw) = stack_with(up).await;
    let alice = token(&stack, &new_browser(), (e2e::USERNAME, e2e::PASSWORD), &gw).await;
    let mut config =
        StreamableHttpClientTransportConfig::with_uri(gw.as_str()).auth_header(alice.clone());
    config.custom_headers.insert(
        reqwest::header::HeaderName::from_static("x-request-id"),
        reqwest::header::HeaderValue::from_static("req-7"),
    );
    config.custom_headers.insert(
        reqwest::header::HeaderName::from_static("x-secret-of-the-client"),
        reqwest::header::HeaderValue::from_static("keep-me"),
    );
    let first = Client::default()
        .serve(StreamableHttpClientTransport::from_config(config))
        .await
        .unwrap();
    call(&first, "echo", json!({})).await.unwrap();
    let seen: Vec<Vec<(String, String)>> = reqwest::get(fake.url.replace("/mcp", "/__seen"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        seen.iter()
            .all(|h| h.contains(&("x-request-id".into(), "req-7".into()))),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .flatten()
            .all(|(n, _)| n != "x-secret-of-the-client"),
        "{seen:?}"
    );
    // The one session allowed is taken: a second is refused, not queued.
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(gw.as_str()).auth_header(alice.clone()),
    );
    let refused =
        tokio::time::timeout(Duration::from_secs(10), Client::default().serve(transport)).await;
    assert!(matches!(refused, Ok(Err(_))), "a second session is refused");

    let ready = reqwest::get(stack.resource.replace("/mcp", "/readyz"))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    assert!(ready.text().await.unwrap().contains("upstream rec: ok"));
    drop(fake);
    let ready = reqwest::get(stack.resource.replace("/mcp", "/readyz"))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "this server's own tools still serve");
    assert!(
        ready
            .text()
            .await
            .unwrap()
            .contains("upstream rec: unreachable")
    );
    first.cancel().await.unwrap();
}

fn alive(pid: &Value) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether the process `pid` ends within eight seconds.
async fn stops(pid: &Value) -> bool {
    for _ in 0..80 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if !alive(pid) {
            return true;
        }
    }
    false
}

/// An upstream session unused for `idle_timeout_secs` is closed and its child stopped; the
/// client's session carries on with a new child at its next call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_child_is_stopped_and_the_next_call_starts_another() {
    let mut up = upstream("idle");
    up.command = Some(FAKE.into());
    up.idle_timeout_secs = 1;
    let (stack, gw) = stack_with(up).await;
    let alice = token(&stack, &new_browser(), (e2e::USERNAME, e2e::PASSWORD), &gw).await;
    let (client, _) = connect(&gw, &alice).await;
    let first = call(&client, "whoami", json!({})).await.unwrap()["pid"].clone();
    assert!(alive(&first));
    assert!(stops(&first).await, "the idle child {first} was stopped");
    let second = call(&client, "whoami", json!({})).await.unwrap()["pid"].clone();
    assert_ne!(first, second);
    client.cancel().await.unwrap();
}

/// A shared child is stopped too once no session has used it for the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_shared_child_is_stopped_too() {
    let mut up = upstream("shared-idle");
    up.command = Some(FAKE.into());
    up.stateless = true;
    up.idle_timeout_secs = 1;
    let (stack, gw) = stack_with(up).await;
    let alice = token(&stack, &new_browser(), (e2e::USERNAME, e2e::PASSWORD), &gw).await;
    let (a, _) = connect(&gw, &alice).await;
    let (b, _) = connect(&gw, &alice).await;
    let first = call(&a, "whoami", json!({})).await.unwrap()["pid"].clone();
    assert_eq!(call(&b, "whoami", json!({})).await.unwrap()["pid"], first);
    assert!(
        stops(&first).await,
        "the idle shared child {first} was stopped"
    );
    let again = call(&b, "whoami", json!({})).await.unwrap()["pid"].clone();
    assert_ne!(again, first);
    assert_eq!(
        call(&a, "whoami", json!({})).await.unwrap()["pid"],
        again,
        "shared again"
    );
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}
