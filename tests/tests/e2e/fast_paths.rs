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
