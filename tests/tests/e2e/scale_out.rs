//! Two instances of each server on one database (each server its own), as behind a load
//! balancer: a sign-in started on one authorization server finishes on the other, a token
//! issued by one is refreshed, introspected and revoked through the other, a key rotated by
//! one is honoured by the other, and either resource server serves the stateless wire with
//! what the other stored. Runs on SQLite and on PostgreSQL (`DATABASE_URL`).

use std::time::{Duration, Instant};

use e2e::{PASSWORD, REDIRECT_URI, RS_CLIENT_ID, RS_CLIENT_SECRET, TestStack, USERNAME, VERIFIER};
use serde_json::{Value, json};

async fn introspect(http: &reqwest::Client, base: &str, token: &str) -> Value {
    http.post(format!("{base}/introspect"))
        .basic_auth(RS_CLIENT_ID, Some(RS_CLIENT_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn token(http: &reqwest::Client, base: &str, fields: &[(&str, &str)]) -> (u16, Value) {
    let res = http
        .post(format!("{base}/token"))
        .form(fields)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Polls `check` until it holds or `within` has passed; how long it took.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            eprintln!("{what}: after {:?}", start.elapsed());
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn two_authorization_servers_on_one_database_act_as_one() {
    let stack = TestStack::spawn().await;
    let b = stack.another_authorization_server().await;
    let a = stack.issuer.clone();
    let http = &stack.http;

    // Registered on A; the authorization page comes from A, the sign-in and consent forms
    // are posted to B, and the code B issued is redeemed at A.
    let client_id = stack.register_public().await;
    let url = stack.authorize_url(
        &client_id,
        &[
            ("redirect_uri", REDIRECT_URI),
            ("scope", "mcp:read mcp:write"),
            ("resource", &stack.resource),
        ],
    );
    let callback =
        e2e::walk_authorization(&stack.browser, &b.url, USERNAME, PASSWORD, &url, "approve").await;
    let code = e2e::query(&callback)["code"].clone();
    let (status, tokens) = token(
        http,
        &a,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", &client_id),
            ("resource", &stack.resource),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let at = tokens["access_token"].as_str().unwrap();
    assert_eq!(introspect(http, &b.url, at).await["active"], true);

    // Refreshed at B; the rotated token is spent at A too.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, refreshed) = token(
        http,
        &b.url,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    let at2 = refreshed["access_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect(http, &a, &at2).await["active"], true);

    // Revoked through B: A stops honouring it within its one-second poll.
    let res = http
        .post(format!("{}/revoke", b.url))
        .form(&[("token", at2.as_str()), ("client_id", &client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    eventually(
        Duration::from_secs(5),
        "revocation at B seen by A",
        || async { introspect(http, &a, &at2).await["active"] == false },
    )
    .await;

    // A key rotated through the database (the admin command) and taken up by B, which signs
    // with it; A verifies B's tokens (an unknown kid makes it read the keys again).
    let kid = authz_server::signing_keys::Keys::rotate(&b.state.store, authz_server::state::now())
        .await
        .unwrap();
    b.state.keys.reload(&b.state.store).await.unwrap();
    assert_eq!(b.state.keys.active_kid(), kid);
    let (id, secret) = stack.register_confidential("client_secret_basic").await;
    let res = http
        .post(format!("{}/token", b.url))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    let machine = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        oauth_protocol::jose::header_kid(&machine).as_deref(),
        Some(kid.as_str()),
        "signed with the new key"
    );
    // A reads the keys again for an unknown kid at most every 10 s (by the clock it judges
    // tokens with, which this test moves), and every minute in any case.
    stack.clock.advance(11);
    eventually(
        Duration::from_secs(60),
        "key rotated at B honoured by A",
        || async { introspect(http, &a, &machine).await["active"] == true },
    )
    .await;
    let jwks: Value = http
        .get(format!("{a}/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(jwks.to_string().contains(&kid), "A publishes the new key");
    b.stop().await;
}

/// One stateless 2026-07-28 tool call to the MCP endpoint at `url`.
async fn call(http: &reqwest::Client, url: &str, token: &str, tool: &str, args: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": tool, "arguments": args, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "e2e", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}}}});
    let res = http
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{url}");
    let text = res.text().await.unwrap();
    text.lines()
        .map(|l| l.strip_prefix("data:").unwrap_or(l).trim())
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|m| m.get("id").is_some())
        .unwrap_or_else(|| panic!("no answer in {text}"))
}

#[tokio::test]
async fn either_resource_server_serves_the_stateless_wire() {
    let stack = TestStack::spawn().await;
    let other = stack.another_resource_server().await;
    let tokens = stack
        .user_token(&stack.browser, USERNAME, PASSWORD, "mcp:read mcp:write")
        .await;
    let at = tokens["access_token"].as_str().unwrap();
    let title = format!(
        "written on one, read on the other {}",
        authz_server::ids::new_id()
    );
    let created = call(
        &stack.http,
        &stack.resource,
        at,
        "create_secure_note",
        json!({"title": title, "content": "x"}),
    )
    .await;
    assert!(created["result"].to_string().contains(&title), "{created}");
    let listed = call(&stack.http, &other.url, at, "list_secure_notes", json!({})).await;
    assert!(listed["result"].to_string().contains(&title), "{listed}");

    // A 2025-11-25 session lives on the instance that created it: elsewhere it is unknown
    // (404, so the client starts a new one), as the README tells load balancers.
    let sid = stack.mcp_session(at).await;
    let res = stack
        .http
        .post(&other.url)
        .bearer_auth(at)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", &sid)
        .body(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "a session of the other instance");

    // A revocation reaches both through the feed.
    let client_id = stack.introspect(at).await["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        stack
            .revoke(&[("token", at), ("client_id", &client_id)], None)
            .await,
        200
    );
    for url in [stack.resource.clone(), other.url.clone()] {
        eventually(Duration::from_secs(5), "revocation at both", || async {
            stack
                .http
                .get(&url)
                .bearer_auth(at)
                .send()
                .await
                .unwrap()
                .status()
                == 401
        })
        .await;
    }
    other.stop().await;
}

/// Two instances started at the same moment on a new database make one signing key between
/// them, and both sign with it.
#[tokio::test]
async fn instances_starting_together_agree_on_one_signing_key() {
    use authz_server::signing_keys::Keys;
    use authz_server::store::Store;
    for _ in 0..5 {
        let db = e2e::TestDatabase::new().await;
        let a = Store::connect(&db.url).await.unwrap();
        let b = Store::connect(&db.url).await.unwrap();
        let now = authz_server::state::now();
        let (ka, kb) = tokio::join!(Keys::load(&a, 3600, now), Keys::load(&b, 3600, now));
        let (ka, kb) = (ka.unwrap(), kb.unwrap());
        assert_eq!(ka.active_kid(), kb.active_kid());
        let keys = a.signing_keys().await.unwrap();
        assert_eq!(keys.len(), 1, "one key, not {}", keys.len());
        a.close().await;
        b.close().await;
    }
}
