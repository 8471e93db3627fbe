//! Fixture mode of the resource server: the conformance suite's test tools, resources and
//! prompts, served behind the same bearer protection and only when configured, on both the
//! 2025-11-25 session wire and the stateless 2026-07-28 wire.

use e2e::{McpReply, PASSWORD, TestStack, USERNAME, tool_json};
use serde_json::{Value, json};

const REGULAR_TOOLS: [&str; 4] = [
    "create_secure_note",
    "get_api_usage",
    "get_user_profile",
    "list_secure_notes",
];

async fn fixture_stack() -> TestStack {
    TestStack::builder()
        .resource_server(|rs| rs.fixtures = true)
        .spawn()
        .await
}

async fn token(stack: &TestStack, scope: &str) -> String {
    let token = stack
        .user_token(&stack.browser, USERNAME, PASSWORD, scope)
        .await;
    token["access_token"].as_str().unwrap().to_owned()
}

async fn request(
    stack: &TestStack,
    token: &str,
    session: &str,
    method: &str,
    params: Value,
) -> McpReply {
    stack
        .mcp_post(
            Some(token),
            Some(session),
            json!({"jsonrpc": "2.0", "id": 5, "method": method, "params": params}),
        )
        .await
}

fn tool_names(reply: &McpReply) -> Vec<String> {
    let message = reply.message.as_ref().expect("a tools/list answer");
    message["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools in {message}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Without `fixtures` nothing of it shows: the four tools, only the server's own prompt, no
/// `test://` resource.
#[tokio::test]
async fn fixtures_are_served_only_when_configured() {
    let stack = TestStack::spawn().await;
    let at = token(&stack, "mcp:read mcp:write").await;
    let session = stack.mcp_session(&at).await;
    let tools = request(&stack, &at, &session, "tools/list", json!({})).await;
    assert_eq!(tool_names(&tools), REGULAR_TOOLS);
    // The server's own prompt only (before it had one, prompts/list was "method not found").
    let prompts = request(&stack, &at, &session, "prompts/list", json!({})).await;
    let listed = prompts.message.unwrap()["result"]["prompts"].clone();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["name"], "summarize_notes");
    let read = request(
        &stack,
        &at,
        &session,
        "resources/read",
        json!({"uri": "test://static-text"}),
    )
    .await;
    assert_eq!(read.message.unwrap()["error"]["code"], -32002);
    let call = stack
        .call_tool(&at, &session, "test_simple_text", json!({}))
        .await;
    assert_eq!(
        call.message.unwrap()["error"]["message"],
        "tool not found",
        "no fixture tool without fixture mode"
    );

    let stack = fixture_stack().await;
    let at = token(&stack, "mcp:read mcp:write").await;
    let session = stack.mcp_session(&at).await;
    let names = tool_names(&request(&stack, &at, &session, "tools/list", json!({})).await);
    for name in REGULAR_TOOLS
        .iter()
        .chain(&["test_simple_text", "test_input_required_result_elicitation"])
    {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    let init = stack
        .mcp_post(
            Some(&at),
            None,
            json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "e2e", "version": "1"}}}),
        )
        .await;
    let capabilities = &init.message.unwrap()["result"]["capabilities"];
    assert_eq!(capabilities["resources"]["subscribe"], true);
    for capability in ["prompts", "logging", "completions"] {
        assert!(capabilities.get(capability).is_some(), "{capability}");
    }
}

/// Fixture calls answer with the suite's values; the user's own tools keep working.
#[tokio::test]
async fn fixture_calls_answer_as_the_suite_expects() {
    let stack = fixture_stack().await;
    let at = token(&stack, "mcp:read mcp:write").await;
    let session = stack.mcp_session(&at).await;
    let result = |reply: McpReply| reply.message.expect("an answer")["result"].clone();

    // `arguments` may be left out.
    let simple = stack
        .mcp_post(
            Some(&at),
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "test_simple_text"}}),
        )
        .await;
    assert_eq!(
        result(simple)["content"],
        json!([{"type": "text", "text": "This is a simple text response for testing."}])
    );

    let image = result(
        stack
            .call_tool(&at, &session, "test_image_content", json!({}))
            .await,
    );
    assert_eq!(image["content"][0]["type"], "image");
    assert_eq!(image["content"][0]["mimeType"], "image/png");
    assert!(image["content"][0]["data"].as_str().unwrap().len() > 40);

    // A tool failure is a result with isError, not a JSON-RPC error.
    let error = result(
        stack
            .call_tool(&at, &session, "test_error_handling", json!({}))
            .await,
    );
    assert_eq!(error["isError"], true);
    assert_eq!(
        error["content"][0]["text"],
        "This tool intentionally returns an error for testing"
    );

    let prompt = result(
        request(
            &stack,
            &at,
            &session,
            "prompts/get",
            json!({"name": "test_prompt_with_arguments", "arguments": {"arg1": "testValue1", "arg2": "testValue2"}}),
        )
        .await,
    );
    assert_eq!(
        prompt["messages"],
        json!([{"role": "user", "content": {"type": "text",
            "text": "Prompt with arguments: arg1='testValue1', arg2='testValue2'"}}])
    );
    let missing = request(
        &stack,
        &at,
        &session,
        "prompts/get",
        json!({"name": "test_prompt_with_arguments", "arguments": {"arg1": "x"}}),
    )
    .await;
    assert_eq!(missing.message.unwrap()["error"]["code"], -32602);

    let text = result(
        request(
            &stack,
            &at,
            &session,
            "resources/read",
            json!({"uri": "test://static-text"}),
        )
        .await,
    );
    assert_eq!(
        text["contents"],
        json!([{"uri": "test://static-text", "mimeType": "text/plain",
            "text": "This is the content of the static text resource."}])
    );
    let templated = result(
        request(
            &stack,
            &at,
            &session,
            "resources/read",
            json!({"uri": "test://template/123/data"}),
        )
        .await,
    );
    let data: Value =
        serde_json::from_str(templated["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        data,
        json!({"id": "123", "templateTest": true, "data": "Data for ID: 123"})
    );

    let level = result(
        request(
            &stack,
            &at,
            &session,
            "logging/setLevel",
            json!({"level": "info"}),
        )
        .await,
    );
    assert_eq!(level, json!({}));

    // The user's own data is still there, beside the fixtures.
    let profile = stack
        .call_tool(&at, &session, "get_user_profile", json!({}))
        .await;
    assert_eq!(tool_json(&profile)["username"], USERNAME);
    let usage = stack
        .call_tool(&at, &session, "get_api_usage", json!({}))
        .await;
    assert!(
        tool_json(&usage)["by_name"]
            .get("test_simple_text")
            .is_none(),
        "fixture calls are not counted as the user's usage"
    );
}

/// Fixture calls need `mcp:read`, like every read.
#[tokio::test]
async fn fixture_calls_need_the_read_scope() {
    let stack = fixture_stack().await;
    let at = token(&stack, "mcp:write").await;
    let session = stack.mcp_session(&at).await;
    let call = stack
        .call_tool(&at, &session, "test_simple_text", json!({}))
        .await;
    assert_eq!(call.status, 403);
    assert!(
        call.header("www-authenticate")
            .unwrap()
            .contains(r#"error="insufficient_scope""#)
    );
}

/// One stateless 2026-07-28 request; the JSON-RPC answer out of a JSON or SSE body.
async fn stateless(
    stack: &TestStack,
    token: &str,
    method: &str,
    name: Option<&str>,
    mut params: Value,
) -> (u16, Value) {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "e2e", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}
    });
    let mut req = stack
        .http
        .post(&stack.resource)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(name) = name {
        req = req.header("mcp-name", name);
    }
    let res = req
        .body(json!({"jsonrpc": "2.0", "id": 9, "method": method, "params": params}).to_string())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body = res.text().await.unwrap();
    let message = body
        .lines()
        .map(|l| l.strip_prefix("data:").unwrap_or(l).trim())
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|m| m.get("id").is_some())
        .unwrap_or_else(|| panic!("no answer in {body}"));
    (status, message)
}

/// SEP-2322 on the stateless wire: the tool asks through an `InputRequiredResult`, completes
/// with the answers, and refuses a `requestState` that was changed.
#[tokio::test]
async fn input_required_rounds_on_the_stateless_wire() {
    let stack = fixture_stack().await;
    let at = token(&stack, "mcp:read mcp:write").await;
    let name = "test_input_required_result_elicitation";
    let (status, first) =
        stateless(&stack, &at, "tools/call", Some(name), json!({"name": name})).await;
    assert_eq!(status, 200);
    let first = &first["result"];
    assert_eq!(first["resultType"], "input_required");
    assert_eq!(
        first["inputRequests"]["user_name"]["method"],
        "elicitation/create"
    );

    let answer = json!({"user_name": {"action": "accept", "content": {"name": "Alice"}}});
    let (_, done) = stateless(
        &stack,
        &at,
        "tools/call",
        Some(name),
        json!({"name": name, "arguments": {}, "inputResponses": answer}),
    )
    .await;
    assert_eq!(done["result"]["resultType"], "complete");
    assert_eq!(done["result"]["content"][0]["text"], "Hello, Alice!");

    let name = "test_input_required_result_tampered_state";
    let (_, first) = stateless(&stack, &at, "tools/call", Some(name), json!({"name": name})).await;
    let state = first["result"]["requestState"].as_str().unwrap().to_owned();
    let confirm = json!({"confirm": {"action": "accept", "content": {"ok": true}}});
    let retry = |state: String| {
        let params = json!({"name": name, "inputResponses": confirm, "requestState": state});
        let stack = &stack;
        let at = &at;
        async move {
            stateless(stack, at, "tools/call", Some(name), params)
                .await
                .1
        }
    };
    let intact = retry(state.clone()).await;
    assert!(
        intact["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("state-ok")
    );
    let tampered = retry(format!("{state}-TAMPERED")).await;
    assert_eq!(tampered["error"]["code"], -32602);

    // A tool that needs a capability the request did not declare: -32021, HTTP 400.
    let name = "test_missing_capability";
    let (status, refused) =
        stateless(&stack, &at, "tools/call", Some(name), json!({"name": name})).await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"]["code"], -32021);
    assert_eq!(
        refused["error"]["data"]["requiredCapabilities"],
        json!({"sampling": {}})
    );

    // The 2025-11-25 way to set a level does not exist on this wire.
    let (status, removed) = stateless(
        &stack,
        &at,
        "logging/setLevel",
        None,
        json!({"level": "info"}),
    )
    .await;
    assert_eq!(
        (status, removed["error"]["code"].clone()),
        (404, json!(-32601))
    );
}

/// SEP-1699 in a session: the `test_reconnection` POST stream ends after its priming event,
/// and the answer arrives on the GET that resumes from that event.
#[tokio::test]
async fn reconnection_fixture_answers_on_the_resumed_stream() {
    let stack = fixture_stack().await;
    let at = token(&stack, "mcp:read mcp:write").await;
    let session = stack.mcp_session(&at).await;
    let sse = |req: reqwest::RequestBuilder| {
        req.bearer_auth(&at)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
    };
    let post = sse(stack.http.post(&stack.resource))
        .header("content-type", "application/json")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "test_reconnection", "arguments": {}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);
    let cut = post.text().await.unwrap();
    assert!(cut.contains("retry:"), "a priming event: {cut}");
    assert!(
        !cut.contains("Reconnection test completed"),
        "no answer yet: {cut}"
    );
    let last_id = cut
        .lines()
        .filter_map(|l| l.strip_prefix("id:"))
        .next_back()
        .expect("an event id")
        .trim()
        .to_owned();

    let mut get = sse(stack.http.get(&stack.resource))
        .header("last-event-id", last_id)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    let mut resumed = String::new();
    while !resumed.contains("Reconnection test completed") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), get.chunk())
            .await
            .expect("the answer within 10 s")
            .unwrap()
            .expect("the stream stays open until the answer");
        resumed.push_str(&String::from_utf8_lossy(&chunk));
    }
    let answer: Value = resumed
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .find(|m: &Value| m["id"] == 1)
        .expect("the answer to request 1");
    assert!(answer["result"]["content"][0]["text"].is_string());
}
