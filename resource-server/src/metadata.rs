//! RFC 9728 protected resource metadata, at the path-inserted well-known URL and at the root.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use oauth_protocol::metadata::ProtectedResourceMetadata;
use oauth_protocol::paths::PROTECTED_RESOURCE_METADATA;

use crate::state::AppState;

pub fn router(mcp_path: &str) -> Router<AppState> {
    let inserted = format!("{PROTECTED_RESOURCE_METADATA}{mcp_path}");
    Router::new()
        .route(&inserted, get(metadata))
        .route(PROTECTED_RESOURCE_METADATA, get(metadata))
}

/// Only the path-inserted document: a gateway endpoint beside this server's own.
pub fn endpoint_router(mcp_path: &str) -> Router<AppState> {
    Router::new().route(
        &format!("{PROTECTED_RESOURCE_METADATA}{mcp_path}"),
        get(metadata),
    )
}

pub fn document(state: &AppState) -> ProtectedResourceMetadata {
    let c = &state.config;
    ProtectedResourceMetadata {
        resource: c.resource.clone(),
        authorization_servers: vec![c.issuer.clone()],
        scopes_supported: c.scopes_supported.clone(),
        bearer_methods_supported: vec!["header".into()],
        resource_name: Some(c.resource_name.clone()),
    }
}

async fn metadata(State(state): State<AppState>) -> Response {
    let mut res = Json(document(&state)).into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}
