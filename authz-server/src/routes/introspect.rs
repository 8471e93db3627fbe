//! `POST /introspect` (RFC 7662): an authenticated caller asks about one token;
//! `oauth::introspect` decides what it may learn.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use oauth_protocol::paths;

use crate::error::{OAuthError, no_store_json};
use crate::extract::OAuthForm;
use crate::oauth::introspect::{Caller, authenticate_caller, introspect};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(paths::INTROSPECT, post(handle))
}

#[tracing::instrument(skip_all)]
async fn handle(
    State(state): State<AppState>,
    peer: super::Peer,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, OAuthError> {
    // Configured resource servers introspect on every cache miss: no quota for them (their
    // secrets are the operator's, and a wrong one is refused below at once).
    let resource_server = form
        .credentials
        .as_ref()
        .is_some_and(|c| state.is_resource_server(&c.client_id));
    if !resource_server {
        super::limit_address(&state, &headers, &peer).await?;
    }
    let caller = authenticate_caller(&state, form.credentials).await?;
    if let Caller::Client { client_id } = &caller {
        super::limit_client_id(&state, client_id).await?;
    }
    let token = form
        .params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let answer = introspect(&state, &caller, token, state.now()).await?;
    Ok(no_store_json(StatusCode::OK, &answer))
}
