//! RFC 7009 token revocation. Unknown tokens and tokens of other clients get 200 and are
//! left alone (§2.2); revoking a refresh token revokes its whole grant, access tokens included.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use oauth_protocol::paths;
use oauth_protocol::secret::digest;

use crate::error::OAuthError;
use crate::routes::token::{calling_client, form_params};
use crate::state::{AppState, now};

pub fn router() -> Router<AppState> {
    Router::new().route(paths::REVOKE, post(revoke))
}

#[tracing::instrument(skip_all, fields(client_id))]
async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let params = form_params(&headers, &body)?;
    let client = calling_client(&state, &headers, &params).await?;
    tracing::Span::current().record("client_id", client.client_id.as_str());
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let now = now();
    let hint = params.get("token_type_hint");
    // The hint only orders the look-ups (§2.1).
    let access_first = hint != Some("refresh_token");
    for kind in if access_first {
        [true, false]
    } else {
        [false, true]
    } {
        if kind {
            if let Ok(claims) = state.keys.verify_fresh(&state.store, token, now).await {
                if claims.client_id == client.client_id {
                    state.store.revoke_access_token(&claims.jti, now).await?;
                    tracing::info!("access token revoked");
                    state
                        .audit(
                            "token_revoked",
                            Some(&claims.sub),
                            Some(&client.client_id),
                            "access_token",
                        )
                        .await;
                }
                break;
            }
        } else if let Some(ctx) = state.store.refresh_token_context(&digest(token)).await? {
            if ctx.client_id == client.client_id {
                state.store.revoke_grant(&ctx.grant_id, now).await?;
                tracing::info!("refresh token revoked with its grant");
                state
                    .audit(
                        "token_revoked",
                        ctx.user_id.as_deref(),
                        Some(&client.client_id),
                        "refresh_token",
                    )
                    .await;
            }
            break;
        }
    }
    Ok(StatusCode::OK.into_response())
}
