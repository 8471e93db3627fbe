//! RFC 7591 dynamic client registration.

use authz_server::store::Table;
use e2e::TestStack;
use serde_json::json;

#[tokio::test]
async fn registration_echoes_every_field_and_issues_secrets_to_confidential_clients() {
    let stack = TestStack::spawn().await;
    let res = stack
        .http
        .post(stack.url("/register"))
        .json(&json!({
            "client_name": "Inspector",
            "redirect_uris": ["http://localhost:6274/oauth/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_post",
            "scope": "mcp:read",
            "application_type": "native",
            "software_statement_extra": {"ignored": true}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let info: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        info["redirect_uris"],
        json!(["http://localhost:6274/oauth/callback"])
    );
    assert_eq!(info["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(
        info["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(info["response_types"], json!(["code"]));
    assert_eq!(info["client_name"], "Inspector");
    assert_eq!(info["scope"], "mcp:read");
    assert_eq!(info["application_type"], "native");
    assert!(info["client_id_issued_at"].is_i64());
    assert_eq!(info["client_secret_expires_at"], 0);
    let unreserved = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
    };
    assert!(unreserved(info["client_id"].as_str().unwrap()));
    assert!(unreserved(info["client_secret"].as_str().unwrap()));

    // A public client gets no secret; empty scope is treated as absent; the default
    // method is echoed explicitly.
    let public = stack
        .register(json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none", "scope": ""}))
        .await;
    assert!(public.get("client_secret").is_none());
    assert!(public.get("scope").is_none());
    let default = stack
        .register(json!({"redirect_uris": ["https://app.example.com/cb"]}))
        .await;
    assert_eq!(default["token_endpoint_auth_method"], "client_secret_basic");
    assert!(default["client_secret"].is_string());
}

/// RFC 7591 §3.2.2: each bad request gets its error code and writes nothing.
#[tokio::test]
async fn registration_refuses_bad_metadata_without_writing() {
    let stack = TestStack::spawn().await;
    let cases: Vec<(&str, String, &str)> = vec![
        ("non-loopback http", json!({"redirect_uris": ["http://app.example.com/cb"]}).to_string(), "invalid_redirect_uri"),
        ("fragment", json!({"redirect_uris": ["https://app.example.com/cb#x"]}).to_string(), "invalid_redirect_uri"),
        ("javascript", json!({"redirect_uris": ["javascript:alert(1)"]}).to_string(), "invalid_redirect_uri"),
        ("no redirect_uris", json!({"client_name": "x"}).to_string(), "invalid_redirect_uri"),
        ("malformed JSON", "{\"redirect_uris\": [".to_string(), "invalid_client_metadata"),
        ("unknown method", json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}).to_string(), "invalid_client_metadata"),
        ("implicit grant", json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}).to_string(), "invalid_client_metadata"),
        ("unknown scope", json!({"redirect_uris": ["https://a.example/cb"], "scope": "admin"}).to_string(), "invalid_client_metadata"),
        ("redirect_uris not array", json!({"redirect_uris": "https://a.example/cb"}).to_string(), "invalid_client_metadata"),
    ];
    for (why, body, code) in cases {
        let res = stack
            .http
            .post(stack.url("/register"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{why}");
        let err: serde_json::Value = res.json().await.unwrap();
        assert_eq!(err["error"], code, "{why}");
        assert!(err["error_description"].is_string(), "{why}");
    }
    let res = stack
        .http
        .post(stack.url("/register"))
        .body("x=1")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(stack.count(Table::Clients).await, 0, "nothing was written");
}

/// The retired out-of-band redirect ("paste the code back") is refused with an error that
/// points at the device flow, and nothing is stored.
#[tokio::test]
async fn the_out_of_band_redirect_is_refused_in_favour_of_the_device_flow() {
    let stack = TestStack::spawn().await;
    let before = stack.count(Table::Clients).await;
    let res = stack
        .http
        .post(stack.url("/register"))
        .json(&json!({
            "client_name": "Old CLI",
            "redirect_uris": ["urn:ietf:wg:oauth:2.0:oob"],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_redirect_uri");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.contains("device flow")
            && description.contains("device_authorization_endpoint"),
        "{description}"
    );
    assert_eq!(stack.count(Table::Clients).await, before);
}
