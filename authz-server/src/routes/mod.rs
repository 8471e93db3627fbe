//! HTTP routes. Each module maps requests to protocol decisions and back; storage and
//! cryptography live elsewhere.

use axum::Router;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::IntoResponse;
use tower_http::cors::{Any, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::state::AppState;

pub mod account;
pub mod authorize;
pub mod introspect;
pub mod metadata;
pub mod register;
pub mod revoke;
pub mod token;
pub mod web;

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
        .layer(cors);
    let pages = web::router().layer(SetResponseHeaderLayer::overriding(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    ))
    .layer(SetResponseHeaderLayer::overriding(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"),
    ))
    .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")));
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

/// Unknown paths, well-known ones included, are a JSON 404: discovery clients move on to
/// their next candidate URL on a 4xx but abort on anything else.
async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": "not_found"})),
    )
}
