//! `POST /token` (RFC 6749 §3.2): the form, the client, the grant; `oauth::token` decides.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use oauth_protocol::grant::{Grant, GrantType};
use oauth_protocol::paths;

use crate::error::{OAuthError, no_store_json};
use crate::extract::OAuthForm;
use crate::oauth;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(paths::TOKEN, post(token))
}

#[tracing::instrument(skip_all, fields(grant_type, client_id))]
async fn token(
    State(state): State<AppState>,
    peer: super::Peer,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, OAuthError> {
    super::limit_address(&state, &headers, &peer).await?;
    let OAuthForm {
        params,
        credentials,
    } = form;
    // A missing grant_type is refused before the client is looked at; an unknown one after.
    if params.get("grant_type").is_none() {
        return Err(OAuthError::invalid_request("grant_type is required"));
    }
    let client = oauth::calling_client(&state, credentials).await?;
    tracing::Span::current().record("client_id", client.client_id.as_str());
    super::limit_client(&state, &client).await?;
    let grant_type = GrantType::from_params(&params)?;
    tracing::Span::current().record("grant_type", grant_type.as_str());
    let grant = Grant::from_params(grant_type, &params)?;
    let response = oauth::token::exchange(&state, &client, grant, state.now()).await?;
    Ok(no_store_json(StatusCode::OK, &response))
}
