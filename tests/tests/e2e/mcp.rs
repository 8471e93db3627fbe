//! The MCP resource server behind the authorization server: discovery, exact challenges,
//! audience binding, step-up, session binding, per-user data, cached introspection and
//! behaviour when the authorization server is down.

use std::sync::atomic::Ordering;

use e2e::{PASSWORD, TestStack, USERNAME, new_browser, tool_json};
use oauth_protocol::challenge::BearerChallenge;
use serde_json::json;

fn metadata_url(stack: &TestStack) -> String {
    stack
        .resource
        .replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
}

/// RFC 9728 §3: the path-inserted and root documents, byte-identical issuer.
#[tokio::test]
async fn protected_resource_metadata_names_the_issuer_exactly() {
    let stack = TestStack::spawn().await;
    let root = stack
        .resource
        .replace("/mcp", "/.well-known/oauth-protected-resource");
    for url in [metadata_url(&stack), root] {
        let res = stack
            .http
            .get(&url)
            .header("origin", "http://localhost:6274")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{url}");
        assert!(res.headers().get("access-control-allow-origin").is_some());
        let prm: serde_json::Value = res.json().await.unwrap();
        assert_eq!(prm["resource"], stack.resource.as_str());
        assert_eq!(prm["authorization_servers"], json!([stack.issuer]));
        assert_eq!(prm["scopes_supported"], json!(["mcp:read", "mcp:write"]));
        assert_eq!(prm["bearer_methods_supported"], json!(["header"]));
        assert_eq!(prm["resource_name"], "Test MCP server");
    }
    let as_meta: serde_json::Value = stack
        .http
        .get(stack.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(as_meta["issuer"], stack.issuer.as_str());
}

/// RFC 6750 §3, §3.1 and MCP: the exact challenge for each failure.
#[tokio::test]
async fn challenges_are_exact() {
    let stack = TestStack::spawn().await;
    let md = metadata_url(&stack);
    // No token: GET and POST alike, before method routing; no error parameter.
    let expected = format!(r#"Bearer scope="mcp:read mcp:write", resource_metadata="{md}""#);
    let get = stack.http.get(&stack.resource).send().await.unwrap();
    assert_eq!(get.status(), 401);
    assert_eq!(get.headers()["www-authenticate"], expected.as_str());
    assert_eq!(
        get.headers().get_all("www-authenticate").iter().count(),
        1,
        "one challenge"
    );
    let post = stack
        .mcp_post(
            None,
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await;
    assert_eq!(post.status, 401);
    assert_eq!(post.header("www-authenticate"), Some(expected.as_str()));
    // Another scheme counts as no bearer token.
    let basic = stack
        .http
        .get(&stack.resource)
        .basic_auth("a", Some("b"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.headers()["www-authenticate"], expected.as_str());

    // A bad token: invalid_token.
    for token in ["garbage", "a.b.c"] {
        let res = stack
            .http
            .get(&stack.resource)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        let c =
            BearerChallenge::parse(res.headers()["www-authenticate"].to_str().unwrap()).unwrap();
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        assert_eq!(c.resource_metadata.as_deref(), Some(md.as_str()));
        assert_eq!(
            res.headers()["www-authenticate"],
            format!(
                r#"Bearer error="invalid_token", error_description="the access token is invalid, expired, revoked or not for this resource", resource_metadata="{md}""#
            )
            .as_str()
        );
    }
    assert_eq!(
        stack.rs_stats.calls.load(Ordering::SeqCst),
        0,
        "garbage never reaches introspection"
    );

    // A token in the query string is refused.
    let res = stack
        .http
        .get(format!("{}?access_token=abc", stack.resource))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with(r#"Bearer error="invalid_request""#)
    );

    // DNS rebinding: a foreign Origin is refused; a loopback one is fine.
    let token = stack
        .user_token(&stack.browser, USERNAME, PASSWORD, "mcp:read")
        .await;
    let at = token["access_token"].as_str().unwrap();
    let res = stack
        .http
        .get(&stack.resource)
        .bearer_auth(at)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // CORS preflight needs no token and allows the MCP headers.
    let res = stack
        .http
        .request(reqwest::Method::OPTIONS, &stack.resource)
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,mcp-protocol-version,mcp-session-id,last-event-id",
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let allowed = res.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "authorization",
        "content-type",
        "mcp-protocol-version",
        "mcp-session-id",
        "last-event-id",
    ] {
        assert!(allowed.contains(h), "{h} in {allowed}");
    }
    let res = stack
        .http
        .get(&stack.resource)
        .header("origin", "http://localhost:6274")
        .send()
        .await
        .unwrap();
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("www-authenticate") && exposed.contains("mcp-session-id"),
        "{exposed}"
    );
}

/// RFC 8707: a token minted for another resource is refused here.
#[tokio::test]
async fn tokens_for_another_audience_are_refused() {
    let stack = TestStack::builder()
        .authz(|c| {
            c.resource_servers
                .push(authz_server::config::ResourceServer {
                    resource: "http://127.0.0.1:9/other".into(),
                    name: None,
                    client_id: e2e::RS_CLIENT_ID.into(),
                    client_secret: oauth_protocol::secret::Secret::new(e2e::RS_CLIENT_SECRET),
                    machine_clients: true,
                    secret_digest: None,
                })
        })
        .spawn()
        .await;
    let (id, secret) = stack.register_confidential("client_secret_basic").await;
    let token = |resource: &'static str| {
        let stack = &stack;
        let (id, secret) = (id.clone(), secret.clone());
        async move {
            let res = stack
                .http
                .post(stack.url("/token"))
                .basic_auth(id, Some(secret))
                .form(&[("grant_type", "client_credentials"), ("resource", resource)])
                .send()
                .await
                .unwrap();
            res.json::<serde_json::Value>().await.unwrap()["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let foreign = token("http://127.0.0.1:9/other").await;
    let res = stack
        .http
        .get(&stack.resource)
        .bearer_auth(&foreign)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains(r#"error="invalid_token""#)
    );
}

/// MCP step-up: a read-only token calling the write tool gets 403 insufficient_scope with
/// what it needs plus what it has; after re-authorizing with both, the call succeeds.
#[tokio::test]
async fn step_up_from_read_to_write() {
    let stack = TestStack::spawn().await;
    let read = stack
        .user_token(&stack.browser, USERNAME, PASSWORD, "mcp:read")
        .await;
    let at = read["access_token"].as_str().unwrap();
    let session = stack.mcp_session(at).await;
    let denied = stack
        .call_tool(at, &session, "create_secure_note", json!({"content": "x"}))
        .await;
    assert_eq!(denied.status, 403);
    assert_eq!(
        denied.header("www-authenticate"),
        Some(
            format!(
                r#"Bearer error="insufficient_scope", error_description="this call needs mcp:write", scope="mcp:read mcp:write", resource_metadata="{}""#,
                metadata_url(&stack)
            )
            .as_str()
        )
    );
    // Reading still works with the same token.
    let profile = stack
        .call_tool(at, &session, "get_user_profile", json!({}))
        .await;
    assert_eq!(tool_json(&profile)["scopes"], json!(["mcp:read"]));

    let both = stack
        .user_token(&stack.browser, USERNAME, PASSWORD, "mcp:read mcp:write")
        .await;
    let at2 = both["access_token"].as_str().unwrap();
    let created = stack
        .call_tool(
            at2,
            &session,
            "create_secure_note",
            json!({"content": "hello"}),
        )
        .await;
    assert_eq!(created.status, 200);
    assert!(tool_json(&created)["id"].is_string());
}

/// Sessions never authenticate: another user's token on a session is refused.
#[tokio::test]
async fn sessions_are_bound_to_their_user() {
    let stack = TestStack::spawn().await;
    stack.add_user("bob", "bob password 1").await;
    let alice = stack
        .user_token(&stack.browser, USERNAME, PASSWORD, "mcp:read mcp:write")
        .await;
    let bob = stack
        .user_token(
            &new_browser(),
            "bob",
            "bob password 1",
            "mcp:read mcp:write",
        )
        .await;
    let (a, b) = (
        alice["access_token"].as_str().unwrap(),
        bob["access_token"].as_str().unwrap(),
    );
    let session = stack.mcp_session(a).await;
    let hijack = stack
        .call_tool(b, &session, "list_secure_notes", json!({}))
        .await;
    assert_eq!(hijack.status, 404);
    let own = stack
        .call_tool(a, &session, "list_secure_notes", json!({}))
        .await;
    assert_eq!(own.status, 200);
    // Without a token the session id is worth nothing.
    let none = stack
        .mcp_post(
            None,
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
        )
        .await;
    assert_eq!(none.status, 401);
}

/// One user can never see or guess another's notes; bad arguments write nothing.
#[tokio::test]
async fn notes_are_isolated_per_user_and_validated() {
    let stack = TestStack::spawn().await;
    stack.add_user("bob", "bob password 1").await;
    let alice = stack
        .user_token(&stack.browser, USERNAME, PASSWORD, "mcp:read mcp:write")
        .await;
    let bob = stack
        .user_token(
            &new_browser(),
            "bob",
            "bob password 1",
            "mcp:read mcp:write",
        )
        .await;
    let (a, b) = (
        alice["access_token"].as_str().unwrap(),
        bob["access_token"].as_str().unwrap(),
    );
    let (sa, sb) = (stack.mcp_session(a).await, stack.mcp_session(b).await);

    let created = tool_json(
        &stack
            .call_tool(
                a,
                &sa,
                "create_secure_note",
                json!({"content": "alice's secret", "title": "Mine"}),
            )
            .await,
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let untitled = tool_json(
        &stack
            .call_tool(a, &sa, "create_secure_note", json!({"content": "no title"}))
            .await,
    );
    assert_eq!(untitled["title"], "Untitled");

    let list = tool_json(
        &stack
            .call_tool(a, &sa, "list_secure_notes", json!({}))
            .await,
    );
    assert_eq!(list["count"], 2);
    let list_b = tool_json(
        &stack
            .call_tool(b, &sb, "list_secure_notes", json!({}))
            .await,
    );
    assert_eq!(list_b["count"], 0);

    let read = |token: &'static str, session: String, uri: String| {
        let stack = &stack;
        let token = if token == "a" {
            a.to_owned()
        } else {
            b.to_owned()
        };
        async move {
            stack
                .mcp_post(Some(&token), Some(&session), json!({"jsonrpc": "2.0", "id": 9, "method": "resources/read", "params": {"uri": uri}}))
                .await
        }
    };
    let own = read("a", sa.clone(), format!("user://notes/{id}")).await;
    let text = own.message.as_ref().unwrap()["result"]["contents"][0]["text"]
        .as_str()
        .unwrap();
    assert!(text.contains("alice's secret"));
    let foreign = read("b", sb.clone(), format!("user://notes/{id}")).await;
    let unknown = read("b", sb.clone(), "user://notes/does-not-exist".into()).await;
    let err = |r: &e2e::McpReply| r.message.as_ref().unwrap()["error"].clone();
    assert!(err(&foreign).is_object(), "{foreign:?}");
    assert_eq!(err(&foreign)["code"], err(&unknown)["code"]);
    assert_eq!(
        err(&foreign)["message"],
        err(&unknown)["message"],
        "foreign and unknown look the same"
    );

    // Bad arguments: an MCP error, nothing written.
    for args in [
        json!({}),
        json!({"content": "  "}),
        json!({"content": "x", "title": "t".repeat(201)}),
        json!({"content": 5}),
    ] {
        let reply = stack
            .call_tool(a, &sa, "create_secure_note", args.clone())
            .await;
        let msg = reply.message.unwrap();
        let is_error = msg.get("error").is_some() || msg["result"]["isError"] == true;
        assert!(is_error, "{args}: {msg}");
    }
    let list = tool_json(
        &stack
            .call_tool(a, &sa, "list_secure_notes", json!({}))
            .await,
    );
    assert_eq!(list["count"], 2, "nothing was written");

    let profile = read("a", sa.clone(), "user://profile".into()).await;
    let text = profile.message.as_ref().unwrap()["result"]["contents"][0]["text"]
        .as_str()
        .unwrap();
    let p: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(
        (
            p["username"].as_str(),
            p["email"].as_str(),
            p["display_name"].as_str()
        ),
        (Some("alice"), Some("alice@example.com"), Some("Alice"))
    );

    let usage = tool_json(&stack.call_tool(a, &sa, "get_api_usage", json!({})).await);
    assert_eq!(usage["by_name"]["create_secure_note"], 6);
    assert!(usage["total"].as_i64().unwrap() >= 10);
}

/// When the authorization server is down: cached tokens keep working, an uncached one gets
/// 503 + Retry-After (never 401), and it recovers by itself.
#[tokio::test]
async fn authorization_server_outage_is_503_not_401() {
    let mut stack = TestStack::spawn().await;
    let t1 = stack
        .user_token(&stack.browser, USERNAME, PASSWORD, "mcp:read")
        .await;
    let t2 = stack
        .user_token(&stack.browser, USERNAME, PASSWORD, "mcp:read")
        .await;
    let (t1, t2) = (
        t1["access_token"].as_str().unwrap().to_owned(),
        t2["access_token"].as_str().unwrap().to_owned(),
    );
    let session = stack.mcp_session(&t1).await;
    stack.stop_authorization_server().await;

    let cached = stack
        .call_tool(&t1, &session, "get_user_profile", json!({}))
        .await;
    assert_eq!(cached.status, 200, "a cached token keeps working");
    let fresh = stack
        .call_tool(&t2, &session, "get_user_profile", json!({}))
        .await;
    assert_eq!(fresh.status, 503);
    assert_eq!(fresh.header("retry-after"), Some("5"));
    assert!(fresh.header("www-authenticate").is_none());

    stack.start_authorization_server().await;
    let recovered = stack
        .call_tool(&t2, &session, "get_user_profile", json!({}))
        .await;
    assert_eq!(
        recovered.status, 200,
        "recovers once the authorization server is back"
    );
}

/// Single flight: 50 concurrent requests with one new token make one introspection call.
#[tokio::test]
async fn concurrent_requests_with_one_new_token_make_one_introspection_call() {
    let stack = TestStack::spawn().await;
    let token = stack
        .user_token(&stack.browser, USERNAME, PASSWORD, "mcp:read")
        .await;
    let at = token["access_token"].as_str().unwrap();
    let before = stack.rs_stats.calls.load(Ordering::SeqCst);
    let requests = (0..50).map(|i| {
        stack.mcp_post(Some(at), None, json!({"jsonrpc": "2.0", "id": i, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}}))
    });
    let replies = futures::future::join_all(requests).await;
    assert!(
        replies.iter().all(|r| r.status == 200),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(stack.rs_stats.calls.load(Ordering::SeqCst) - before, 1);
}

/// Without the revocation feed, revocation reaches the resource server once the cache entry
/// ends.
#[tokio::test]
async fn revocation_is_seen_after_the_cache_ttl() {
    let stack = TestStack::builder()
        .resource_server(|rs| {
            rs.cache_ttl = 1;
            rs.revocation_poll = 0;
        })
        .spawn()
        .await;
    let token = stack
        .user_token(&stack.browser, USERNAME, PASSWORD, "mcp:read")
        .await;
    let at = token["access_token"].as_str().unwrap();
    let ok = stack
        .http
        .get(&stack.resource)
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_ne!(ok.status(), 401);
    let res = stack
        .http
        .post(stack.url("/revoke"))
        .form(&[
            ("token", token["refresh_token"].as_str().unwrap()),
            ("client_id", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "revocation needs the owning client");
    let info: serde_json::Value = stack
        .http
        .post(stack.url("/introspect"))
        .basic_auth(e2e::RS_CLIENT_ID, Some(e2e::RS_CLIENT_SECRET))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = info["client_id"].as_str().unwrap();
    let res = stack
        .http
        .post(stack.url("/revoke"))
        .form(&[("token", at), ("client_id", client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    stack.clock.advance(2);
    let gone = stack
        .http
        .get(&stack.resource)
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 401);
}

/// A keep-alive client that sends its body after the headers must get the 401 and then an
/// answer to its next request on the same connection (RFC 9112 §9.3, §9.6).
#[tokio::test]
async fn early_401_keeps_the_connection_usable() {
    let stack = TestStack::spawn().await;
    let replies = refused_then_next(&stack, String::new()).await;
    assert!(replies.starts_with("HTTP/1.1 401"), "{replies}");
    assert!(
        replies.contains("HTTP/1.1 200"),
        "the second request on the connection is answered: {replies}"
    );
}

/// The same for a session refused to another user's token: its body is read before the 404.
#[tokio::test]
async fn refused_session_keeps_the_connection_usable() {
    let stack = TestStack::spawn().await;
    stack.add_user("bob", "bob password 1").await;
    let alice = stack
        .user_token(&stack.browser, USERNAME, PASSWORD, "mcp:read")
        .await;
    let bob = stack
        .user_token(&new_browser(), "bob", "bob password 1", "mcp:read")
        .await;
    let session = stack
        .mcp_session(alice["access_token"].as_str().unwrap())
        .await;
    let headers = format!(
        "Authorization: Bearer {}\r\nMcp-Session-Id: {session}\r\n",
        bob["access_token"].as_str().unwrap()
    );
    let replies = refused_then_next(&stack, headers).await;
    assert!(replies.starts_with("HTTP/1.1 404"), "{replies}");
    assert!(
        replies.contains("HTTP/1.1 200"),
        "the second request on the connection is answered: {replies}"
    );
}

/// Sends an MCP POST with `headers` whose body follows its headers a moment later, then a
/// second request on the same connection; returns everything the server wrote back.
async fn refused_then_next(stack: &TestStack, headers: String) -> String {
    let url = url::Url::parse(&stack.resource).unwrap();
    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        write!(
            s,
            "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{headers}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        s.write_all(body.as_bytes()).unwrap();
        write!(s, "GET /.well-known/oauth-protected-resource/mcp HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    })
    .await
    .unwrap()
}
