//! The revocation feed: every kind of revocation (a token, a grant, a client-credentials
//! token, a client, a user) ends the resource server's cached answer within seconds, long
//! before its cache TTL; what is not revoked stays cached; the feed answers only resource
//! servers, only about their resource, and tells a reader that lost its place to forget all.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use authz_server::admin;
use authz_server::store::{NewTokens, Store};
use e2e::{PASSWORD, RS_CLIENT_ID, RS_CLIENT_SECRET, TestStack, USERNAME};
use oauth_protocol::revocations::FeedAnswer;

/// The longest a revocation may take to reach the resource server.
const WITHIN: Duration = Duration::from_secs(5);

async fn rs_status(stack: &TestStack, token: &str) -> u16 {
    stack
        .http
        .get(&stack.resource)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// How long the resource server took to refuse `token`, from `since`; panics past `WITHIN`.
async fn refused_after(stack: &TestStack, token: &str, since: Instant, what: &str) -> Duration {
    loop {
        if rs_status(stack, token).await == 401 {
            let took = since.elapsed();
            eprintln!("{what}: refused by the resource server after {took:?}");
            return took;
        }
        assert!(
            since.elapsed() < WITHIN,
            "{what}: still accepted after {WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn user_token(stack: &TestStack) -> (String, String, String) {
    let t = stack
        .user_token(&stack.browser, USERNAME, PASSWORD, "mcp:read")
        .await;
    let at = t["access_token"].as_str().unwrap().to_owned();
    let client_id = stack.introspect(&at).await["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (
        at,
        t["refresh_token"].as_str().unwrap().to_owned(),
        client_id,
    )
}

#[tokio::test]
async fn every_kind_of_revocation_reaches_the_resource_server_within_seconds() {
    let stack = TestStack::builder()
        .resource_server(|rs| {
            rs.cache_ttl = 3600;
            rs.accept_machine_clients = true;
        })
        .spawn()
        .await;
    let (token, _, token_client) = user_token(&stack).await;
    let (by_grant, grant_refresh, grant_client) = user_token(&stack).await;
    let (by_client, _, doomed_client) = user_token(&stack).await;
    let (bystander, _, _) = user_token(&stack).await;
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
    let (machine_id, machine_secret) = (added.client_id.clone(), added.client_secret.unwrap());
    let (status, body) = stack
        .token(
            &[("grant_type", "client_credentials")],
            Some((&machine_id, &machine_secret)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let machine = body["access_token"].as_str().unwrap().to_owned();
    for t in [&token, &by_grant, &by_client, &bystander, &machine] {
        assert_ne!(rs_status(&stack, t).await, 401, "accepted before");
    }
    let calls = || stack.rs_stats.calls.load(Ordering::SeqCst);
    let before = calls();

    // RFC 7009, one access token.
    let t0 = Instant::now();
    assert_eq!(
        stack
            .revoke(&[("token", &token), ("client_id", &token_client)], None)
            .await,
        200
    );
    let mut worst = refused_after(&stack, &token, t0, "access token revoked").await;

    // A refresh token: its whole grant.
    let t0 = Instant::now();
    assert_eq!(
        stack
            .revoke(
                &[("token", &grant_refresh), ("client_id", &grant_client)],
                None
            )
            .await,
        200
    );
    worst = worst.max(refused_after(&stack, &by_grant, t0, "grant revoked").await);

    // A client-credentials token, which has no row.
    let t0 = Instant::now();
    assert_eq!(
        stack
            .revoke(&[("token", &machine)], Some((&machine_id, &machine_secret)))
            .await,
        200
    );
    worst = worst.max(refused_after(&stack, &machine, t0, "machine token revoked").await);

    // A client removed by the administrator.
    let t0 = Instant::now();
    assert!(
        stack
            .store
            .delete_client(&doomed_client, authz_server::state::now())
            .await
            .unwrap()
    );
    worst = worst.max(refused_after(&stack, &by_client, t0, "client removed").await);

    // Nothing else was forgotten: the bystander is still answered from the cache (one
    // introspection per refused token, none for it).
    assert_ne!(rs_status(&stack, &bystander).await, 401);
    assert_eq!(
        calls() - before,
        4,
        "only the revoked tokens were asked about again"
    );

    // A user disabled: every token of theirs.
    let t0 = Instant::now();
    assert!(
        stack
            .store
            .set_disabled(USERNAME, true, authz_server::state::now())
            .await
            .unwrap()
    );
    worst = worst.max(refused_after(&stack, &bystander, t0, "user disabled").await);
    assert!(stack.rs_stats.revocations.load(Ordering::SeqCst) >= 5);
    eprintln!("slowest revocation seen after {worst:?}");
}

/// Without the feed the resource server still ends a revoked token's answer at `cache_ttl`,
/// and a feed it cannot read changes nothing else: cached tokens keep working.
#[tokio::test]
async fn an_unreadable_feed_leaves_the_cache_ttl_as_the_bound() {
    let stack = TestStack::builder()
        .resource_server(|rs| {
            rs.cache_ttl = 3600;
            rs.revocation_feed = Some("http://127.0.0.1:9/revocations".into());
        })
        .spawn()
        .await;
    let (token, _, client) = user_token(&stack).await;
    assert_ne!(rs_status(&stack, &token).await, 401);
    assert_eq!(
        stack
            .revoke(&[("token", &token), ("client_id", &client)], None)
            .await,
        200
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_ne!(
        rs_status(&stack, &token).await,
        401,
        "still cached: nothing told this server"
    );
    assert!(stack.rs_stats.feed_errors.load(Ordering::SeqCst) >= 1);
}

async fn read(stack: &TestStack, fields: &[(&str, &str)]) -> (u16, serde_json::Value) {
    stack
        .post_form(
            "/revocations",
            fields,
            Some((RS_CLIENT_ID, RS_CLIENT_SECRET)),
        )
        .await
}

#[tokio::test]
async fn the_feed_answers_only_resource_servers_and_names_what_ended() {
    let stack = TestStack::spawn().await;
    let (status, body) = stack.post_form("/revocations", &[], None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (id, secret) = stack.register_confidential("client_secret_basic").await;
    let (status, body) = stack
        .post_form("/revocations", &[], Some((&id, &secret)))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );
    let (status, body) = stack
        .post_form("/revocations", &[], Some((RS_CLIENT_ID, "wrong")))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    for bad in ["x", "-1", "1.5"] {
        let (status, body) = read(&stack, &[("after", bad)]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request")),
            "after={bad:?}"
        );
    }

    let (status, start) = read(&stack, &[]).await;
    assert_eq!(status, 200);
    let start: FeedAnswer = serde_json::from_value(start).unwrap();
    assert!(start.events.is_empty() && !start.reset);
    let (token, _, client) = user_token(&stack).await;
    assert_eq!(
        stack
            .revoke(&[("token", &token), ("client_id", &client)], None)
            .await,
        200
    );
    let jti = {
        let claims = token.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims)
                .unwrap(),
        )
        .unwrap();
        claims["jti"].as_str().unwrap().to_owned()
    };
    let (_, body) = read(&stack, &[("after", &start.cursor.to_string())]).await;
    let answer: FeedAnswer = serde_json::from_value(body.clone()).unwrap();
    assert!(answer.cursor > start.cursor);
    let fresh: Vec<_> = answer
        .events
        .iter()
        .filter(|e| e.id > start.cursor)
        .collect();
    assert_eq!(fresh.len(), 1, "{body}");
    assert_eq!(fresh[0].jti.as_deref(), Some(jti.as_str()));
    assert!(!body.to_string().contains(&token), "never the token itself");

    // A cursor from another database (past the head).
    let (_, body) = read(&stack, &[("after", &(answer.cursor + 1000).to_string())]).await;
    assert_eq!(body["reset"], true, "{body}");
}

fn grant(id: &str, resource: &str, jti: &str) -> NewTokens {
    NewTokens {
        grant: Some(authz_server::store::GrantRow {
            id: id.into(),
            user_id: Some("u1".into()),
            client_id: "c".into(),
            resource: resource.into(),
            scope: "mcp:read".into(),
            created_at: 0,
            last_used_at: 0,
            revoked_at: None,
        }),
        access: authz_server::store::AccessTokenRow {
            jti: jti.into(),
            grant_id: Some(id.into()),
            client_id: "c".into(),
            user_id: Some("u1".into()),
            resource: resource.into(),
            scope: "mcp:read".into(),
            issued_at: 0,
            expires_at: i64::MAX / 2,
            revoked_at: None,
        },
        refresh: None,
    }
}

/// On both backends: the triggers write one event per ended grant, token or user, each
/// resource reads only its own and the global ones, and a purge tells a reader left behind.
#[tokio::test]
async fn the_feed_is_written_by_the_database_and_purged_safely() {
    let db = e2e::TestDatabase::new().await;
    let store = Store::connect(&db.url).await.unwrap();
    store
        .insert_user(&authz_server::store::User {
            id: "u1".into(),
            username: "u1".into(),
            password_hash: "x".into(),
            email: None,
            display_name: None,
            disabled: 0,
            created_at: 0,
        })
        .await
        .unwrap();
    let (a, b) = ("http://a.example/mcp", "http://b.example/mcp");
    for (id, resource, jti) in [("ga", a, "ja"), ("gb", b, "jb")] {
        let code = authz_server::store::CodeRow {
            code_hash: id.into(),
            client_id: "c".into(),
            user_id: "u1".into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            code_challenge: "x".into(),
            resource: resource.into(),
            scope: "mcp:read".into(),
            expires_at: 1_000,
            consumed_at: None,
            grant_id: None,
            redirect_uri_sent: 1,
        };
        store.insert_code(&code, None).await.unwrap();
        let issued = store
            .redeem_code(id, id, 10, |_| Ok::<_, ()>(grant(id, resource, jti)))
            .await
            .unwrap();
        assert!(matches!(issued, authz_server::store::Exchange::Issued));
    }
    let start = store.revocation_feed(None, a).await.unwrap().cursor;
    store.revoke_grant("gb", 5).await.unwrap();
    store.revoke_grant("ga", 5).await.unwrap();
    // Revoking again ends nothing new.
    store.revoke_grant("ga", 6).await.unwrap();
    let seen = |answer: FeedAnswer| -> Vec<(Option<String>, Option<String>, Option<String>)> {
        answer
            .events
            .into_iter()
            .filter(|e| e.id > start)
            .map(|e| (e.jti, e.sub, e.client_id))
            .collect()
    };
    let for_a = seen(store.revocation_feed(Some(start), a).await.unwrap());
    assert!(
        for_a.contains(&(None, Some("u1".into()), Some("c".into()))),
        "{for_a:?}"
    );
    assert!(
        !for_a.iter().any(|e| e.0.as_deref() == Some("jb")),
        "{for_a:?}"
    );
    let grant_events = for_a.iter().filter(|e| e.0.is_none()).count();
    assert_eq!(grant_events, 1, "one event for a's grant: {for_a:?}");
    store.set_disabled("u1", true, 7).await.unwrap();
    let head = store.revocation_feed(None, a).await.unwrap().cursor;
    let for_b = seen(store.revocation_feed(Some(start), b).await.unwrap());
    assert!(
        for_b.contains(&(None, Some("u1".into()), None)),
        "{for_b:?}"
    );

    // Purged a day later: a reader at the head goes on; one behind must forget everything.
    let later = authz_server::state::now() + 2 * authz_server::store::FEED_RETENTION_SECS;
    store.purge_expired(later, None, 0).await.unwrap();
    let at_head = store.revocation_feed(Some(head), a).await.unwrap();
    assert!(!at_head.reset && at_head.cursor == head, "{at_head:?}");
    assert!(store.revocation_feed(Some(start), a).await.unwrap().reset);
    store.close().await;
}
