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
        serde_json::json!(["authorization_code", "refresh_token", "client_credentials"])
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
