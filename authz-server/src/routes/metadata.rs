//! RFC 8414 authorization server metadata and the JWKS (RFC 7517) it points at.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use oauth_protocol::metadata::AuthorizationServerMetadata;
use oauth_protocol::paths;
use oauth_protocol::register::GRANT_DEVICE_CODE;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::AS_METADATA, get(metadata))
        .route(paths::JWKS, get(jwks))
}

pub fn document(state: &AppState) -> AuthorizationServerMetadata {
    let c = &state.config;
    let auth_methods = || {
        vec![
            "client_secret_basic".to_owned(),
            "client_secret_post".to_owned(),
            "none".to_owned(),
        ]
    };
    AuthorizationServerMetadata {
        issuer: c.issuer.clone(),
        authorization_endpoint: c.endpoint(paths::AUTHORIZE),
        token_endpoint: c.endpoint(paths::TOKEN),
        device_authorization_endpoint: Some(c.endpoint(paths::DEVICE_AUTHORIZATION)),
        registration_endpoint: Some(c.endpoint(paths::REGISTER)),
        jwks_uri: c.endpoint(paths::JWKS),
        scopes_supported: c.scopes.clone(),
        response_types_supported: vec!["code".into()],
        response_modes_supported: vec!["query".into()],
        grant_types_supported: vec![
            "authorization_code".into(),
            "refresh_token".into(),
            "client_credentials".into(),
            GRANT_DEVICE_CODE.into(),
        ],
        token_endpoint_auth_methods_supported: auth_methods(),
        revocation_endpoint: c.endpoint(paths::REVOKE),
        revocation_endpoint_auth_methods_supported: auth_methods(),
        introspection_endpoint: c.endpoint(paths::INTROSPECT),
        // Introspection callers are resource servers and confidential clients.
        introspection_endpoint_auth_methods_supported: vec![
            "client_secret_basic".into(),
            "client_secret_post".into(),
        ],
        code_challenge_methods_supported: vec!["S256".into()],
        authorization_response_iss_parameter_supported: true,
        client_id_metadata_document_supported: true,
        service_documentation: None,
    }
}

/// Both documents change rarely and are asked for often: they are served from bytes
/// encoded once (the JWKS again after a rotation).
async fn metadata(State(state): State<AppState>) -> Response {
    cacheable_json(body(&state))
}

/// The metadata document, encoded once.
pub fn body(state: &AppState) -> axum::body::Bytes {
    state
        .metadata_body
        .get_or_init(|| {
            serde_json::to_vec(&document(state))
                .expect("metadata serialises")
                .into()
        })
        .clone()
}

async fn jwks(State(state): State<AppState>) -> Response {
    cacheable_json(state.keys.jwks_body(state.now()))
}

fn cacheable_json(body: axum::body::Bytes) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body,
    )
        .into_response()
}
