//! What the fast paths keep: a client-credentials token lives without a row and dies with its
//! revocation or its client; what introspection remembers is forgotten at once after this
//! instance's revocations and within a poll after another process's; the audit trail and the
//! resource server's counts, written off the request path, survive a clean shutdown.

use std::time::{Duration, Instant};

use authz_server::admin;
use authz_server::store::{AuditEvent, Store, Table};
use e2e::TestStack;
use serde_json::json;

async fn machine_client(stack: &TestStack) -> (String, String) {
    let added = admin::client_add(
        &stack.store,
        &stack.config,
        "Machine",
        true,
        &[],
        Some("mcp:read"),
    )
    .await
    .unwrap();
    (added.client_id.clone(), added.client_secret.unwrap())
}

async fn machine_token(stack: &TestStack, id: &str, secret: &str) -> String {
    let (status, body) = stack
        .post_form(
            "/token",
            &[("grant_type", "client_credentials")],
            Some((id, secret)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_client_credentials_token_has_no_row_and_dies_with_its_revocation_or_its_client() {
    let stack = TestStack::spawn().await;
    let (id, secret) = machine_client(&stack).await;
    let first = machine_token(&stack, &id, &secret).await;
    let second = machine_token(&stack, &id, &secret).await;
    assert_eq!(
        stack.count(Table::AccessTokens).await,
        0,
        "no row per token"
    );
    let active = stack.introspect(&first).await;
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["sub"], id.as_str());
    assert_eq!(active["client_id"], id.as_str());
    assert_eq!(active["scope"], "mcp:read");

    // RFC 7009 by its client: that token, at once, and only that one.
    assert_eq!(
        stack
            .revoke(
                &[
                    ("token", first.as_str()),
                    ("token_type_hint", "access_token")
                ],
                Some((&id, &secret))
            )
            .await,
        200
    );
    assert_eq!(stack.introspect(&first).await, json!({"active": false}));
    assert_eq!(stack.introspect(&second).await["active"], true);

    // Its client removed: every token it holds is dead.
    admin::client_remove(&stack.store, &id).await.unwrap();
    assert_eq!(stack.introspect(&second).await, json!({"active": false}));
}

#[tokio::test]
async fn another_process_s_revocation_is_noticed_within_a_poll() {
    let stack = TestStack::spawn().await;
    let token = stack
        .user_token(&stack.browser, e2e::USERNAME, e2e::PASSWORD, "mcp:read")
        .await;
    let at = token["access_token"].as_str().unwrap();
    assert_eq!(stack.introspect(at).await["active"], true, "remembered now");
    // Revoked beside this server, as another instance or the admin command would: the
    // database's triggers move the counter the server polls.
    sqlx::query("UPDATE grants SET revoked_at = 1")
        .execute(stack.store.pool())
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        if stack.introspect(at).await == json!({"active": false}) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "still active {:?} after the revocation",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn queued_audit_events_and_request_counts_survive_a_clean_shutdown() {
    let db = e2e::TestDatabase::new().await;
    let store = Store::connect(&db.url).await.unwrap();
    for i in 0..250 {
        store.audit_soon(AuditEvent {
            id: format!("e{i}"),
            at: 1_000 + i,
            kind: "token_issued".into(),
            user_id: None,
            client_id: Some("c".into()),
            detail: "client_credentials".into(),
        });
    }
    store.close().await;
    let store = Store::connect(&db.url).await.unwrap();
    let events = store.audit_events(1_000).await.unwrap();
    assert_eq!(events.len(), 250);
    assert_eq!(events[0].id, "e249", "in the order they happened");
    store.close().await;

    let rs_db = e2e::TestDatabase::new().await;
    let rs = resource_server::store::Store::connect(&rs_db.url)
        .await
        .unwrap();
    for _ in 0..7 {
        rs.count_request("u1", "get_user_profile");
    }
    rs.count_request("u1", "get_api_usage");
    assert_eq!(
        rs.usage("u1").await.unwrap(),
        vec![
            ("get_api_usage".to_owned(), 1),
            ("get_user_profile".to_owned(), 7)
        ],
        "counted before they are written"
    );
    rs.close().await;
    let rs = resource_server::store::Store::connect(&rs_db.url)
        .await
        .unwrap();
    assert_eq!(
        rs.usage("u1").await.unwrap(),
        vec![
            ("get_api_usage".to_owned(), 1),
            ("get_user_profile".to_owned(), 7)
        ]
    );
    rs.close().await;
}

/// The discovery documents are answered before the router: with the status, headers and
/// body the router answers (a request with a query or an `Origin` goes through it), a
/// request id echoed or made up, counted in the metrics, and the JWKS as it is after a key
/// rotation.
#[tokio::test]
async fn documents_answered_before_the_router_are_the_routers_answers() {
    use oauth_protocol::clock::Clock;
    use oauth_protocol::paths;
    let stack = TestStack::spawn().await;
    let rs_origin = stack.resource.trim_end_matches("/mcp").to_owned();
    let urls = [
        stack.url(paths::AS_METADATA),
        stack.url(paths::JWKS),
        format!("{rs_origin}{}/mcp", paths::PROTECTED_RESOURCE_METADATA),
        format!("{rs_origin}{}", paths::PROTECTED_RESOURCE_METADATA),
    ];
    let get = |url: String, header: Option<(&'static str, &'static str)>| {
        let http = stack.http.clone();
        async move {
            let mut req = http.get(url);
            if let Some((k, v)) = header {
                req = req.header(k, v);
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let mut headers: Vec<(String, String)> = res
                .headers()
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "date" | "x-request-id"))
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
            headers.sort();
            let id = res.headers().get("x-request-id").cloned();
            (status, headers, id, res.bytes().await.unwrap())
        }
    };
    let check = |urls: Vec<String>| async {
        for url in urls {
            let fast = get(url.clone(), None).await;
            let routed = get(format!("{url}?through=router"), None).await;
            assert_eq!(fast.0, 200, "{url}");
            assert_eq!(fast.1, routed.1, "{url}: the same headers");
            assert_eq!(fast.3, routed.3, "{url}: the same body");
            assert!(fast.2.is_some(), "{url}: a request id is made up");
            let echoed = get(url.clone(), Some(("x-request-id", "caller-id.7"))).await;
            assert_eq!(echoed.2.unwrap(), "caller-id.7", "{url}");
            let cross = get(url.clone(), Some(("origin", "http://127.0.0.1:6274"))).await;
            assert_eq!(cross.0, 200, "{url}");
            assert!(
                cross
                    .1
                    .iter()
                    .any(|(k, _)| k == "access-control-allow-origin"),
                "{url}: a cross-origin request is answered by the router, with CORS"
            );
        }
    };
    check(urls.to_vec()).await;

    let series = "http_requests_total{route=\"/.well-known/oauth-authorization-server\",method=\"GET\",status=\"200\"} ";
    let count = || async {
        let text = stack
            .http
            .get(stack.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series).map(|v| v.parse::<u64>().unwrap()))
            .unwrap_or(0)
    };
    let before = count().await;
    for _ in 0..3 {
        get(urls[0].clone(), None).await;
    }
    assert_eq!(count().await, before + 3, "answered requests are counted");

    authz_server::signing_keys::Keys::rotate(&stack.store, stack.clock.now())
        .await
        .unwrap();
    stack.keys.reload(&stack.store).await.unwrap();
    let jwks = get(urls[1].clone(), None).await;
    let keys: serde_json::Value = serde_json::from_slice(&jwks.3).unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 2, "{keys}");
    check(vec![urls[1].clone()]).await;
}
