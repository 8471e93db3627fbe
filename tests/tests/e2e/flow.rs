//! The whole flow through the `oauth2` crate: registration, login, consent, code + PKCE,
//! token, refresh, introspection, revocation.

use e2e::{REDIRECT_URI, RS_CLIENT_ID, RS_CLIENT_SECRET, TestStack, oauth_http, query};
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IntrospectionUrl,
    PkceCodeChallenge, RedirectUrl, Scope, TokenIntrospectionResponse, TokenResponse, TokenUrl,
};

#[tokio::test]
async fn full_flow_with_the_oauth2_crate() {
    let stack = TestStack::spawn().await;
    let http = oauth_http();
    let client_id = stack.register_public().await;
    let client = BasicClient::new(ClientId::new(client_id.clone()))
        .set_auth_uri(AuthUrl::new(stack.url("/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(stack.url("/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.into()).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("mcp:read".into()))
        .add_scope(Scope::new("mcp:write".into()))
        .add_extra_param("resource", &stack.resource)
        .set_pkce_challenge(challenge)
        .url();
    let callback = stack.browser_authorize(auth_url.as_str()).await;
    let q = query(&callback);
    assert!(callback.as_str().starts_with(REDIRECT_URI));
    assert_eq!(q.get("state"), Some(csrf.secret()));
    assert_eq!(q.get("iss"), Some(&stack.issuer), "RFC 9207 iss");

    let token = client
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .set_pkce_verifier(verifier)
        .add_extra_param("resource", &stack.resource)
        .request_async(&http)
        .await
        .expect("code exchange");
    assert_eq!(token.token_type().as_ref(), "bearer");
    let scopes: Vec<String> = token
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, ["mcp:read", "mcp:write"]);
    let refresh = token.refresh_token().expect("refresh token").clone();

    // The access token is an RFC 9068 JWT.
    let header = token.access_token().secret().split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(&base64_url(header)).unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");

    // The resource server introspects it with its own credentials.
    let rs = BasicClient::new(ClientId::new(RS_CLIENT_ID.into()))
        .set_client_secret(ClientSecret::new(RS_CLIENT_SECRET.into()))
        .set_introspection_url(IntrospectionUrl::new(stack.url("/introspect")).unwrap());
    let info = rs
        .introspect(token.access_token())
        .request_async(&http)
        .await
        .unwrap();
    assert!(info.active());
    assert_eq!(
        info.client_id().map(|c| c.as_str()),
        Some(client_id.as_str())
    );
    assert_eq!(info.username(), Some("alice"));
    assert_eq!(info.sub(), Some(stack.user_id.as_str()));
    assert_eq!(info.iss(), Some(stack.issuer.as_str()));
    assert_eq!(
        info.aud().map(|a| a.as_slice()),
        Some(&[stack.resource.clone()][..])
    );
    assert!(info.jti().is_some() && info.exp().is_some() && info.iat().is_some());

    // Refresh: a new pair; narrowing the scope is allowed.
    let refreshed = client
        .exchange_refresh_token(&refresh)
        .add_scope(Scope::new("mcp:read".into()))
        .request_async(&http)
        .await
        .expect("refresh");
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        refresh.secret()
    );
    assert_eq!(refreshed.scopes().unwrap().len(), 1);
    let info = rs
        .introspect(refreshed.access_token())
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.scopes().unwrap().len(), 1);

    // Revoking the refresh token ends the grant: every access token of it goes inactive.
    // (The oauth2 crate refuses a non-https revocation URL, so this one request is sent directly.)
    let res = stack
        .http
        .post(stack.url("/revoke"))
        .form(&[
            (
                "token",
                refreshed.refresh_token().unwrap().secret().as_str(),
            ),
            ("client_id", &client_id),
            ("token_type_hint", "refresh_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    for at in [token.access_token(), refreshed.access_token()] {
        let info = rs.introspect(at).request_async(&http).await.unwrap();
        assert!(!info.active(), "access token still active after revocation");
    }
    let again = client
        .exchange_refresh_token(refreshed.refresh_token().unwrap())
        .request_async(&http)
        .await;
    assert!(
        matches!(again, Err(oauth2::RequestTokenError::ServerResponse(e)) if e.error().as_ref() == "invalid_grant")
    );
}

#[tokio::test]
async fn confidential_clients_authenticate_by_basic_and_by_post() {
    let stack = TestStack::spawn().await;
    let http = oauth_http();
    for (method, auth_type) in [
        ("client_secret_basic", oauth2::AuthType::BasicAuth),
        ("client_secret_post", oauth2::AuthType::RequestBody),
    ] {
        let (id, secret) = stack.register_confidential(method).await;
        let client = BasicClient::new(ClientId::new(id))
            .set_client_secret(ClientSecret::new(secret))
            .set_auth_type(auth_type)
            .set_auth_uri(AuthUrl::new(stack.url("/authorize")).unwrap())
            .set_token_uri(TokenUrl::new(stack.url("/token")).unwrap())
            .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.into()).unwrap());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, _) = client
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge)
            .url();
        let q = query(&stack.browser_authorize(url.as_str()).await);
        let token = client
            .exchange_code(AuthorizationCode::new(q["code"].clone()))
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await
            .unwrap_or_else(|e| panic!("{method}: {e:?}"));
        assert!(token.refresh_token().is_some());
        // Client credentials: no refresh token, the client is the subject.
        let cc = client
            .exchange_client_credentials()
            .request_async(&http)
            .await
            .unwrap();
        assert!(cc.refresh_token().is_none());
    }
}

fn base64_url(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}
