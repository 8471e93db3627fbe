//! `POST /revoke` (RFC 7009): 200 whenever the client authenticated, whatever the token;
//! `oauth::revoke` decides what to revoke.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use oauth_protocol::paths;

use crate::error::OAuthError;
use crate::extract::OAuthForm;
use crate::oauth;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(paths::REVOKE, post(handle))
}

#[tracing::instrument(skip_all, fields(client_id))]
async fn handle(
    State(state): State<AppState>,
    peer: super::Peer,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, OAuthError> {
    super::limit_address(&state, &headers, &peer).await?;
    let client = oauth::calling_client(&state, form.credentials).await?;
    tracing::Span::current().record("client_id", client.client_id.as_str());
    super::limit_client(&state, &client).await?;
    let token = form
        .params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let hint = form.params.get("token_type_hint");
    oauth::revoke::revoke(&state, &client, token, hint, state.now()).await?;
    Ok(StatusCode::OK.into_response())
}
