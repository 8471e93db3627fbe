//! The token, introspection and revocation endpoints: every refusal, single use, rotation,
//! and concurrency.

use authz_server::store::Table;
use base64::Engine;
use e2e::{REDIRECT_URI, RS_CLIENT_ID, RS_CLIENT_SECRET, TestStack, query};
use oauth_protocol::pkce::s256_challenge;
use serde_json::Value;

/// (why, form, status, error code)
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, u16, &'a str);

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

async fn code_for(stack: &TestStack, client_id: &str) -> String {
    let url = format!(
        "{}?response_type=code&client_id={client_id}&redirect_uri={}&code_challenge={}&code_challenge_method=S256&state=s",
        stack.url("/authorize"),
        urlencode(REDIRECT_URI),
        s256_challenge(VERIFIER)
    );
    query(&stack.browser_authorize(&url).await)["code"].clone()
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn post(
    stack: &TestStack,
    path: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = stack.http.post(stack.url(path)).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        headers,
    )
}

async fn exchange(stack: &TestStack, client_id: &str, code: &str) -> (u16, Value) {
    let (s, b, _) = post(
        stack,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT_URI),
            ("client_id", client_id),
        ],
        None,
    )
    .await;
    (s, b)
}

async fn introspect(stack: &TestStack, token: &str) -> Value {
    let (s, b, _) = post(
        stack,
        "/introspect",
        &[("token", token)],
        Some((RS_CLIENT_ID, RS_CLIENT_SECRET)),
    )
    .await;
    assert_eq!(s, 200);
    b
}

/// RFC 6749 §5.2: each refusal has its code, JSON, no-store, and writes nothing.
#[tokio::test]
async fn token_request_refusals_follow_rfc6749_section_5_2() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    let code = code_for(&stack, &client_id).await;
    let other = stack.register_public().await;
    let v = VERIFIER;
    let wrong_verifier = "a".repeat(43);
    let cases: Vec<Case> = vec![
        (
            "missing grant_type",
            vec![("code", &code), ("client_id", &client_id)],
            400,
            "invalid_request",
        ),
        (
            "unknown grant_type",
            vec![("grant_type", "password"), ("client_id", &client_id)],
            400,
            "unsupported_grant_type",
        ),
        (
            "client not allowed client_credentials",
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
            ],
            400,
            "unauthorized_client",
        ),
        (
            "unknown client",
            vec![
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", v),
                ("client_id", "nope"),
            ],
            401,
            "invalid_client",
        ),
        (
            "no client",
            vec![
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", v),
            ],
            401,
            "invalid_client",
        ),
        (
            "missing code",
            vec![
                ("grant_type", "authorization_code"),
                ("code_verifier", v),
                ("client_id", &client_id),
            ],
            400,
            "invalid_request",
        ),
        (
            "missing verifier",
            vec![
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", &client_id),
            ],
            400,
            "invalid_request",
        ),
        (
            "wrong verifier",
            vec![
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &wrong_verifier),
                ("client_id", &client_id),
            ],
            400,
            "invalid_grant",
        ),
        (
            "other client",
            vec![
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", v),
                ("client_id", &other),
            ],
            400,
            "invalid_grant",
        ),
        (
            "other redirect",
            vec![
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", v),
                ("redirect_uri", "http://127.0.0.1:3000/other"),
                ("client_id", &client_id),
            ],
            400,
            "invalid_grant",
        ),
        (
            "other resource",
            vec![
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", v),
                ("resource", "https://other.example/mcp"),
                ("client_id", &client_id),
            ],
            400,
            "invalid_target",
        ),
        (
            "unknown code",
            vec![
                ("grant_type", "authorization_code"),
                ("code", "nope"),
                ("code_verifier", v),
                ("client_id", &client_id),
            ],
            400,
            "invalid_grant",
        ),
        (
            "repeated parameter",
            vec![
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code", &code),
                ("code_verifier", v),
                ("client_id", &client_id),
            ],
            400,
            "invalid_request",
        ),
        (
            "dead refresh token",
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", "nope"),
                ("client_id", &client_id),
            ],
            400,
            "invalid_grant",
        ),
    ];
    for (why, form, status, code_) in cases {
        let (s, body, headers) = post(&stack, "/token", &form, None).await;
        assert_eq!(
            (s, body["error"].as_str()),
            (status, Some(code_)),
            "{why}: {body}"
        );
        assert_eq!(headers["cache-control"], "no-store", "{why}");
        if status == 401 {
            assert!(
                headers["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Basic"),
                "{why}"
            );
        }
    }
    assert_eq!(
        stack.count(Table::AccessTokens).await,
        0,
        "nothing was issued"
    );
    assert_eq!(stack.count(Table::Grants).await, 0);
    // The refused attempts did not burn the code.
    let (s, _) = exchange(&stack, &client_id, &code).await;
    assert_eq!(s, 200);

    let res = stack
        .http
        .post(stack.url("/token"))
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "JSON bodies are refused");
}

#[tokio::test]
async fn invalid_client_over_basic_is_401_with_a_challenge_and_basic_needs_no_body_client_id() {
    let stack = TestStack::spawn().await;
    let (id, secret) = stack.register_confidential("client_secret_basic").await;
    let (s, body, headers) = post(
        &stack,
        "/token",
        &[("grant_type", "client_credentials")],
        Some((&id, "wrong")),
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (401, Some("invalid_client")));
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    // RFC 6749 §2.3.1: Basic alone identifies the client.
    let (s, body, _) = post(
        &stack,
        "/token",
        &[("grant_type", "client_credentials")],
        Some((&id, &secret)),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    // A confidential client cannot skip its secret.
    let (s, _, _) = post(
        &stack,
        "/token",
        &[("grant_type", "client_credentials"), ("client_id", &id)],
        None,
    )
    .await;
    assert_eq!(s, 401);
    // Two methods at once.
    let (s, body, _) = post(
        &stack,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_secret", &secret),
        ],
        Some((&id, &secret)),
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_request")));
    // Scope beyond what the client registered, and an unknown resource.
    let (s, body, _) = post(
        &stack,
        "/token",
        &[("grant_type", "client_credentials"), ("scope", "admin")],
        Some((&id, &secret)),
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_scope")));
    let (s, body, _) = post(
        &stack,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://x.example/mcp"),
        ],
        Some((&id, &secret)),
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_target")));
}

/// OAuth 2.1 §4.1.3: a replayed code fails and revokes what the first redemption issued.
#[tokio::test]
async fn replayed_code_fails_and_revokes_the_first_tokens() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    let code = code_for(&stack, &client_id).await;
    let (s, first) = exchange(&stack, &client_id, &code).await;
    assert_eq!(s, 200);
    let at = first["access_token"].as_str().unwrap();
    assert_eq!(introspect(&stack, at).await["active"], true);
    let (s, body) = exchange(&stack, &client_id, &code).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(
        introspect(&stack, at).await,
        serde_json::json!({"active": false})
    );
    let (s, body, _) = post(
        &stack,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
        ],
        None,
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn the_same_code_redeemed_twenty_times_at_once_yields_one_token() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    let code = code_for(&stack, &client_id).await;
    let attempts = (0..20).map(|_| exchange(&stack, &client_id, &code));
    let results = futures::future::join_all(attempts).await;
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(
        results
            .iter()
            .filter(|(s, _)| *s != 200)
            .all(|(s, b)| *s == 400 && b["error"] == "invalid_grant")
    );
    assert_eq!(stack.count(Table::AccessTokens).await, 1);
    assert_eq!(stack.count(Table::Grants).await, 1);
}

/// OAuth 2.1 §4.3.1 rotation: the previous token works within the grace window; after
/// it, a replay revokes the whole grant.
#[tokio::test]
async fn refresh_rotation_with_grace_window_then_family_revocation() {
    let stack = TestStack::builder()
        .authz(|c| c.refresh_grace = 1)
        .spawn()
        .await;
    let client_id = stack.register_public().await;
    let code = code_for(&stack, &client_id).await;
    let (_, first) = exchange(&stack, &client_id, &code).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |rt: String, scope: Option<&'static str>| {
        let stack = &stack;
        let client_id = client_id.clone();
        async move {
            let mut form = vec![
                ("grant_type", "refresh_token".to_owned()),
                ("refresh_token", rt),
                ("client_id", client_id),
            ];
            if let Some(s) = scope {
                form.push(("scope", s.to_owned()));
            }
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (s, b, _) = post(stack, "/token", &form, None).await;
            (s, b)
        }
    };
    let (s, second) = refresh(rt1.clone(), None).await;
    assert_eq!(s, 200);
    let rt2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt1, rt2);
    // Concurrent use of the old token, within the window: still fine.
    let (s, _) = refresh(rt1.clone(), None).await;
    assert_eq!(s, 200);
    // Widening is refused and writes nothing.
    let tokens_before = stack.count(Table::AccessTokens).await;
    let (s, b) = refresh(rt2.clone(), Some("mcp:read mcp:write admin")).await;
    assert_eq!((s, b["error"].as_str()), (400, Some("invalid_scope")));
    assert_eq!(stack.count(Table::AccessTokens).await, tokens_before);

    stack.clock.advance(2);
    let (s, b) = refresh(rt1, None).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_grant")),
        "replay after the window"
    );
    let (s, b) = refresh(rt2, None).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (400, Some("invalid_grant")),
        "the whole grant is revoked"
    );
    assert_eq!(
        introspect(&stack, second["access_token"].as_str().unwrap()).await["active"],
        false
    );
}

/// RFC 7662 §2.1, §2.2: authenticated callers only; foreign or dead tokens are
/// exactly `{"active":false}`.
#[tokio::test]
async fn introspection_requires_authentication_and_hides_foreign_tokens() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    let (_, tokens) = exchange(&stack, &client_id, &code_for(&stack, &client_id).await).await;
    let at = tokens["access_token"].as_str().unwrap();
    let (s, body, _) = post(&stack, "/introspect", &[("token", at)], None).await;
    assert_eq!((s, body["error"].as_str()), (401, Some("invalid_client")));
    let (s, _, _) = post(
        &stack,
        "/introspect",
        &[("token", at)],
        Some((RS_CLIENT_ID, "wrong-secret-wrong-secret")),
    )
    .await;
    assert_eq!(s, 401);
    let (s, _, _) = post(
        &stack,
        "/introspect",
        &[("token", at), ("client_id", &client_id)],
        None,
    )
    .await;
    assert_eq!(s, 401, "public clients cannot introspect");

    let active = introspect(&stack, at).await;
    for k in [
        "scope",
        "client_id",
        "username",
        "sub",
        "aud",
        "iss",
        "exp",
        "iat",
        "token_type",
        "jti",
    ] {
        assert!(active.get(k).is_some(), "{k} in {active}");
    }
    // Refresh tokens are visible too, to the resource server of their grant.
    let rt = introspect(&stack, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(rt["active"], true);

    // A confidential client sees its own tokens only.
    let (cid, secret) = stack.register_confidential("client_secret_basic").await;
    let (_, body, _) = post(
        &stack,
        "/introspect",
        &[("token", at)],
        Some((&cid, &secret)),
    )
    .await;
    assert_eq!(body, serde_json::json!({"active": false}));

    let forged = {
        let mut parts: Vec<String> = at.split('.').map(str::to_owned).collect();
        let mut claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(&parts[1])
                .unwrap(),
        )
        .unwrap();
        claims["scope"] = "admin".into();
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
        parts.join(".")
    };
    for token in ["garbage", "a.b.c", forged.as_str()] {
        assert_eq!(
            introspect(&stack, token).await,
            serde_json::json!({"active": false}),
            "{token}"
        );
    }
}

/// A resource server sees only tokens minted for its own resource.
#[tokio::test]
async fn introspection_is_audience_scoped_per_resource_server() {
    let stack = TestStack::builder()
        .authz(|c| {
            c.resource_servers
                .push(authz_server::config::ResourceServer {
                    resource: "http://127.0.0.1:9999/mcp".into(),
                    name: None,
                    client_id: "other-rs".into(),
                    client_secret: oauth_protocol::secret::Secret::new(
                        "other-rs-secret-0123456789",
                    ),
                    machine_clients: true,
                    secret_digest: None,
                })
        })
        .spawn()
        .await;
    let (id, secret) = stack.register_confidential("client_secret_basic").await;
    let (_, body, _) = post(
        &stack,
        "/token",
        &[
            ("grant_type", "client_credentials"),
            ("resource", &stack.resource),
        ],
        Some((&id, &secret)),
    )
    .await;
    let at = body["access_token"].as_str().unwrap();
    assert_eq!(introspect(&stack, at).await["active"], true);
    let (_, other, _) = post(
        &stack,
        "/introspect",
        &[("token", at)],
        Some(("other-rs", "other-rs-secret-0123456789")),
    )
    .await;
    assert_eq!(other, serde_json::json!({"active": false}));
}

/// RFC 7009: 200 for unknown tokens, other clients' tokens untouched, confidential
/// clients must authenticate.
#[tokio::test]
async fn revocation_rules() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    let (_, tokens) = exchange(&stack, &client_id, &code_for(&stack, &client_id).await).await;
    let at = tokens["access_token"].as_str().unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();
    let (s, _, _) = post(
        &stack,
        "/revoke",
        &[("token", "unknown"), ("client_id", &client_id)],
        None,
    )
    .await;
    assert_eq!(s, 200);
    let other = stack.register_public().await;
    let (s, _, _) = post(
        &stack,
        "/revoke",
        &[("token", rt), ("client_id", &other)],
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        introspect(&stack, at).await["active"],
        true,
        "another client cannot revoke"
    );
    let (cid, _) = stack.register_confidential("client_secret_basic").await;
    let (s, body, _) = post(
        &stack,
        "/revoke",
        &[("token", rt), ("client_id", &cid)],
        None,
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (401, Some("invalid_client")));
    let (s, body, _) = post(&stack, "/revoke", &[("client_id", &client_id)], None).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_request")));
    // Revoking the access token alone leaves the refresh token working.
    let (s, _, _) = post(
        &stack,
        "/revoke",
        &[
            ("token", at),
            ("client_id", &client_id),
            ("token_type_hint", "access_token"),
        ],
        None,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(introspect(&stack, at).await["active"], false);
    assert_eq!(introspect(&stack, rt).await["active"], true);
}

#[tokio::test]
async fn expired_rows_are_purged_and_live_ones_kept() {
    let stack = TestStack::spawn().await;
    let client_id = stack.register_public().await;
    let (_, tokens) = exchange(&stack, &client_id, &code_for(&stack, &client_id).await).await;
    let now = authz_server::state::now();
    assert_eq!(
        stack
            .store
            .purge_expired(now, None, now - 86_400)
            .await
            .unwrap(),
        0,
        "nothing live is removed"
    );
    assert_eq!(
        introspect(&stack, tokens["access_token"].as_str().unwrap()).await["active"],
        true
    );
    // Far in the future everything has expired: session, tokens and (a day later) the code.
    let removed = stack
        .store
        .purge_expired(now + 400 * 24 * 3600, None, now - 86_400)
        .await
        .unwrap();
    assert_eq!(removed, 4, "session, refresh token, access token, code");
    assert_eq!(
        stack.count(Table::Sessions).await
            + stack.count(Table::Codes).await
            + stack.count(Table::RefreshTokens).await,
        0
    );
}
