//! HTTP routes: each module extracts a request, calls `crate::oauth` and maps the answer
//! to a response. No route touches the store.

use axum::Router;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::cors::{Any, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::state::AppState;

pub mod account;
pub mod authorize;
pub mod consent;
pub mod device;
pub mod federation;
pub mod introspect;
pub mod login;
pub mod metadata;
pub mod pages;
pub mod register;
pub mod revocations;
pub mod revoke;
pub mod session;
pub mod token;

/// All routes. Back-channel and discovery endpoints are readable cross-origin (browser
/// clients such as MCP Inspector); the HTML pages are not, and cannot be framed.
pub fn router(state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static("mcp-protocol-version"),
        ])
        .expose_headers([header::WWW_AUTHENTICATE])
        .max_age(std::time::Duration::from_secs(3600));
    let api = Router::new()
        .merge(metadata::router())
        .merge(register::router())
        .merge(token::router())
        .merge(introspect::router())
        .merge(revoke::router())
        .merge(revocations::router())
        .merge(device::api())
        .layer(cors);
    let pages = Router::new()
        .merge(authorize::router())
        .merge(login::router())
        .merge(consent::router())
        .merge(device::router())
        .merge(federation::router())
        .merge(account::router())
        .merge(pages::router())
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            page_csp(None),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ));
    Router::new()
        .merge(api)
        .merge(pages)
        .fallback(not_found)
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .with_state(state)
}

/// The pages' Content-Security-Policy. Forms post only to this server, and may be followed
/// by a redirect to `form_target` (browsers apply `form-action` to the redirects too).
pub fn page_csp(form_target: Option<&str>) -> HeaderValue {
    let target = form_target
        .and_then(|uri| url::Url::parse(uri).ok())
        .map(|u| match u.scheme() {
            "http" | "https" => u.origin().ascii_serialization(),
            scheme => format!("{scheme}:"),
        })
        // Only characters a CSP source expression can hold.
        .filter(|t| {
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.:/[]".contains(&b))
        });
    let form_action = match target {
        Some(t) => format!("'self' {t}"),
        None => "'self'".into(),
    };
    HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    ))
    .expect("CSP is ASCII")
}

/// The TCP peer of the request (absent when the router is called directly, as in tests).
pub struct Peer(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// The per-address quota of the back-channel endpoints (`throttle::RateLimits`).
pub async fn limit_address(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    peer: &Peer,
) -> Result<(), crate::error::OAuthError> {
    let ip = state.client_address(headers, peer.0);
    state.rate_limits.address(ip).await.map_err(|wait| {
        tracing::debug!(?ip, "request quota per address reached");
        crate::error::OAuthError::too_many(wait, "address")
    })
}

/// The per-client quota, for confidential clients: a public client's id is no one's
/// credential (a client ID metadata document's is shared by all its users), so only the
/// address quota holds for it.
pub async fn limit_client(
    state: &AppState,
    client: &crate::clients::Client,
) -> Result<(), crate::error::OAuthError> {
    if !client.is_confidential() {
        return Ok(());
    }
    limit_client_id(state, &client.client_id).await
}

/// The per-client quota for a client already known to be confidential.
pub async fn limit_client_id(
    state: &AppState,
    client_id: &str,
) -> Result<(), crate::error::OAuthError> {
    state.rate_limits.client(client_id).await.map_err(|wait| {
        tracing::debug!(%client_id, "request quota per client reached");
        crate::error::OAuthError::too_many(wait, "client")
    })
}

/// 429 with `Retry-After` in whole seconds.
pub fn too_many(retry_after: std::time::Duration, body: Response) -> Response {
    let mut res = body;
    *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    res.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after.as_secs().max(1)),
    );
    res
}

/// Unknown paths, well-known ones included, are a JSON 404: discovery clients move on to
/// their next candidate URL on a 4xx but abort on anything else.
async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": "not_found"})),
    )
}
