//! Client ID metadata documents: an https URL as `client_id` (loopback http allowed here by
//! the test-only switch), served by a real HTTP server.

use axum::Router;
use axum::http::header;
use axum::routing::get;
use e2e::{TestStack, query};
use oauth_protocol::pkce::s256_challenge;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// Serves `doc` (with `{id}` replaced by the document's URL) and counts fetches.
async fn serve_document(doc: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/client.json", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let (u, h) = (url.clone(), hits.clone());
    let app = Router::new().route(
        "/client.json",
        get(move || {
            h.fetch_add(1, Ordering::SeqCst);
            let body = doc.replace("{id}", &u);
            async move {
                (
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::CACHE_CONTROL, "max-age=600"),
                    ],
                    body,
                )
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits)
}

fn authorize_url(stack: &TestStack, client_id: &str, redirect: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "{}?response_type=code&client_id={}&redirect_uri={}&code_challenge={}&code_challenge_method=S256&state=s",
        stack.url("/authorize"),
        enc(client_id),
        enc(redirect),
        s256_challenge(VERIFIER)
    )
}

#[tokio::test]
async fn metadata_document_client_completes_the_flow_and_is_cached() {
    let stack = TestStack::builder()
        .authz(|c| c.cimd_allow_loopback = true)
        .spawn()
        .await;
    let (client_id, hits) = serve_document(
        r#"{"client_id":"{id}","client_name":"Document Client","redirect_uris":["http://127.0.0.1:3000/callback"],
            "grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"none"}"#,
    )
    .await;
    let callback = stack
        .browser_authorize(&authorize_url(
            &stack,
            &client_id,
            "http://127.0.0.1:3000/callback",
        ))
        .await;
    let code = query(&callback)["code"].clone();
    let res = stack
        .http
        .post(stack.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("client_id", &client_id),
            ("redirect_uri", "http://127.0.0.1:3000/callback"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "fetched once, then served from cache"
    );
}

#[tokio::test]
async fn invalid_metadata_documents_are_refused() {
    let stack = TestStack::builder()
        .authz(|c| c.cimd_allow_loopback = true)
        .spawn()
        .await;
    for doc in [
        r#"{"client_id":"https://elsewhere.example/c.json","client_name":"X","redirect_uris":["http://127.0.0.1:3000/callback"]}"#,
        r#"{"client_id":"{id}","redirect_uris":["http://127.0.0.1:3000/callback"]}"#,
        r#"{"client_id":"{id}","client_name":"X","redirect_uris":["http://127.0.0.1:3000/callback"],"token_endpoint_auth_method":"client_secret_basic"}"#,
    ] {
        let (client_id, _) = serve_document(doc).await;
        let res = stack
            .browser
            .get(authorize_url(
                &stack,
                &client_id,
                "http://127.0.0.1:3000/callback",
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{doc}");
        assert!(res.headers().get("location").is_none());
    }
    // Without the loopback switch, a loopback document is never fetched.
    let strict = TestStack::spawn().await;
    let (client_id, hits) = serve_document(r#"{"client_id":"{id}","client_name":"X","redirect_uris":["http://127.0.0.1:3000/callback"]}"#).await;
    let res = strict
        .browser
        .get(authorize_url(
            &strict,
            &client_id,
            "http://127.0.0.1:3000/callback",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}
