//! `POST /introspect` (RFC 7662): an authenticated caller asks about one token;
//! `oauth::introspect` decides what it may learn.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use oauth_protocol::paths;

use crate::error::{OAuthError, no_store_json};
use crate::extract::OAuthForm;
use crate::oauth::introspect::{authenticate_caller, introspect};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(paths::INTROSPECT, post(handle))
}

#[tracing::instrument(skip_all)]
async fn handle(State(state): State<AppState>, form: OAuthForm) -> Result<Response, OAuthError> {
    let caller = authenticate_caller(&state, form.credentials).await?;
    let token = form
        .params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let answer = introspect(&state, &caller, token, state.now()).await?;
    Ok(no_store_json(StatusCode::OK, &answer))
}
