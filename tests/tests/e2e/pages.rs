//! The HTML pages through the router alone (`oneshot`, no socket): their security headers
//! and the rejections the page extractors own.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

/// The router and its database, which is removed when the pair is dropped.
async fn router() -> (axum::Router, e2e::TestDatabase) {
    router_for("http://127.0.0.1:8001").await
}

async fn router_for(issuer: &str) -> (axum::Router, e2e::TestDatabase) {
    let db = e2e::TestDatabase::new().await;
    let mut config = authz_server::Config {
        database_url: db.url.clone(),
        issuer: issuer.into(),
        ..authz_server::Config::default()
    };
    config.bind = "127.0.0.1:0".parse().unwrap();
    let store = authz_server::store::Store::connect(&config.database_url)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind(config.bind).await.unwrap();
    let app = authz_server::Application::with_parts(config, store, listener)
        .await
        .unwrap();
    (app.router(), db)
}

async fn text(res: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn pages_cannot_be_framed_and_post_only_to_this_server() {
    let (app, _db) = router().await;
    let res = app
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
    let html = text(res).await;
    assert!(html.contains("id=\"login-form\""));
    // The account page's own sign-in names the product, not a host to be returned to.
    assert!(
        html.contains("Sign in to <span class=\"client-name\">MCP Identity</span>")
            && !html.contains("You will be returned to"),
        "{html}"
    );
}

/// Under an https issuer the sign-in cookie is Secure: a form posted from the page opened
/// over plain http on this machine says why it failed and where to go instead.
#[tokio::test]
async fn a_secure_cookie_over_plain_http_on_loopback_explains_itself() {
    let (app, _db) = router_for("https://auth.example.com").await;
    let post = |host: &'static str| {
        Request::post("/login")
            .header(header::HOST, host)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(
                "username=alice&password=x&csrf_token=t&request=",
            ))
            .unwrap()
    };
    let res = app.clone().oneshot(post("127.0.0.1:8001")).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let html = text(res).await;
    assert!(
        html.contains("opened at http://127.0.0.1:8001")
            && html.contains("Secure")
            && html.contains("https://auth.example.com/account"),
        "{html}"
    );
    // At the public name the usual message stays: the cause is not visible there.
    let res = app.oneshot(post("auth.example.com")).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(text(res).await.contains("This form expired"));
}

#[tokio::test]
async fn page_forms_refuse_other_content_types_and_repeated_fields() {
    let (app, _db) = router().await;
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
    let (app, _db) = router().await;
    let res = app
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
