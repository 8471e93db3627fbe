//! `POST /revocations`: the revocation feed resource servers read (`oauth::revocations`).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use oauth_protocol::paths;

use crate::error::{OAuthError, no_store_json};
use crate::extract::OAuthForm;
use crate::oauth::revocations::read_feed;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(paths::REVOCATIONS, post(handle))
}

async fn handle(State(state): State<AppState>, form: OAuthForm) -> Result<Response, OAuthError> {
    let after = form.params.get("after");
    let answer = read_feed(&state, form.credentials, after).await?;
    Ok(no_store_json(StatusCode::OK, &answer))
}
