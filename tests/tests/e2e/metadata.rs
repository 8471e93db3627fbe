//! RFC 8414 metadata, the JWKS, and discovery hygiene.

use e2e::TestStack;

#[tokio::test]
async fn metadata_document_has_every_field_clients_need() {
    let stack = TestStack::spawn().await;
    let res = stack
        .http
        .get(stack.url("/.well-known/oauth-authorization-server"))
        .header("Origin", "http://inspector.local")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let m: serde_json::Value = res.json().await.unwrap();
    let iss = stack.issuer.as_str();
    assert_eq!(m["issuer"], iss);
    assert!(!iss.ends_with('/'));
    for (field, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("registration_endpoint", "/register"),
        ("revocation_endpoint", "/revoke"),
        ("introspection_endpoint", "/introspect"),
        ("jwks_uri", "/jwks.json"),
        ("device_authorization_endpoint", "/device_authorization"),
    ] {
        assert_eq!(m[field], format!("{iss}{path}"), "{field}");
    }
    assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(
        m["scopes_supported"],
        serde_json::json!(["mcp:read", "mcp:write"])
    );
    assert_eq!(m["client_id_metadata_document_supported"], true);
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    assert!(m["response_modes_supported"].is_array());

    let jwks: serde_json::Value = stack
        .http
        .get(stack.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("ES256"))
    );
    assert!(
        key["kid"].is_string() && key.get("d").is_none(),
        "public half only"
    );
}

/// Discovery clients move on after a 4xx and abort on anything else.
#[tokio::test]
async fn unknown_well_known_paths_are_json_404() {
    let stack = TestStack::spawn().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server/extra",
        "/.well-known/oauth-protected-resource",
        "/nothing-here",
    ] {
        let res = stack.http.get(stack.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn cors_preflight_on_back_channel_endpoints() {
    let stack = TestStack::spawn().await;
    for path in [
        "/token",
        "/register",
        "/revoke",
        "/.well-known/oauth-authorization-server",
    ] {
        let res = stack
            .http
            .request(reqwest::Method::OPTIONS, stack.url(path))
            .header("Origin", "http://localhost:6274")
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "content-type,mcp-protocol-version",
            )
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        assert_eq!(res.headers()["access-control-allow-origin"], "*", "{path}");
    }
}

/// Key rotation: new tokens use the new key, old tokens still verify, and the old key
/// leaves the JWKS once its last token has expired.
#[tokio::test]
async fn signing_key_rotation_keeps_old_tokens_valid_until_they_expire() {
    let stack = e2e::TestStack::builder()
        .authz(|c| c.access_token_ttl = 2)
        .spawn()
        .await;
    let (id, secret) = stack.register_confidential("client_secret_basic").await;
    let token = || async {
        let res = stack
            .http
            .post(stack.url("/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        res.json::<serde_json::Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let kid = |jwt: &str| {
        use base64::Engine;
        let h = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().unwrap())
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&h).unwrap()["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let jwks = || async {
        stack
            .http
            .get(stack.url("/jwks.json"))
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    let stack = &stack;
    let introspect = |t: String| async move {
        let res = stack
            .http
            .post(stack.url("/introspect"))
            .basic_auth(e2e::RS_CLIENT_ID, Some(e2e::RS_CLIENT_SECRET))
            .form(&[("token", t)])
            .send()
            .await
            .unwrap();
        res.json::<serde_json::Value>().await.unwrap()["active"]
            .as_bool()
            .unwrap()
    };
    let old = token().await;
    use oauth_protocol::clock::Clock;
    authz_server::signing_keys::Keys::rotate(&stack.store, stack.clock.now())
        .await
        .unwrap();
    stack.keys.reload(&stack.store).await.unwrap();
    let new = token().await;
    assert_ne!(
        kid(&old),
        kid(&new),
        "new tokens are signed with the new key"
    );
    assert_eq!(jwks().await["keys"].as_array().unwrap().len(), 2);
    assert!(introspect(old.clone()).await, "old token still verifies");
    assert!(introspect(new).await);
    stack.clock.advance(3);
    let keys = jwks().await;
    assert_eq!(
        keys["keys"].as_array().unwrap().len(),
        1,
        "old key retired from the JWKS"
    );
    assert_ne!(keys["keys"][0]["kid"].as_str().unwrap(), kid(&old));
}
