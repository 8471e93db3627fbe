//! The HTML pages through the router alone (`oneshot`, no socket): their security headers
//! and the rejections the page extractors own.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

async fn router() -> axum::Router {
    let mut config = authz_server::Config {
        database_url: e2e::fresh_database_url().await,
        ..authz_server::Config::default()
    };
    config.bind = "127.0.0.1:0".parse().unwrap();
    let store = authz_server::store::Store::connect(&config.database_url)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind(config.bind).await.unwrap();
    authz_server::Application::with_parts(config, store, listener)
        .await
        .unwrap()
        .router()
}

async fn text(res: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn pages_cannot_be_framed_and_post_only_to_this_server() {
    let res = router()
        .await
        .oneshot(Request::get("/account").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers();
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self'"),
        "{csp}"
    );
    assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
    let cookie = h[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with("authz_csrf=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    assert!(text(res).await.contains("id=\"login-form\""));
}

#[tokio::test]
async fn page_forms_refuse_other_content_types_and_repeated_fields() {
    let app = router().await;
    for (content_type, body) in [
        ("application/json", r#"{"username":"a"}"#),
        (
            "application/x-www-form-urlencoded",
            "username=a&username=b&password=x",
        ),
    ] {
        for path in ["/login", "/consent", "/logout", "/account/grants/revoke"] {
            let res = app
                .clone()
                .oneshot(
                    Request::post(path)
                        .header(header::CONTENT_TYPE, content_type)
                        .body(Body::from(body))
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(
                res.status(),
                StatusCode::BAD_REQUEST,
                "{path} {content_type}"
            );
            assert!(text(res).await.contains("Invalid request"), "{path}");
        }
    }
}

#[tokio::test]
async fn an_authorization_request_without_client_is_shown_never_redirected() {
    let res = router()
        .await
        .oneshot(
            Request::get(
                "/authorize?response_type=code&redirect_uri=https%3A%2F%2Fevil.example%2F",
            )
            .body(Body::empty())
            .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get(header::LOCATION).is_none());
    assert!(text(res).await.contains("no client_id"));
}
