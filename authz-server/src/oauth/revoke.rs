//! RFC 7009 revocation decisions. Unknown tokens and tokens of other clients are left alone
//! (§2.2: the answer is the same); revoking a refresh token revokes its whole grant.

use oauth_protocol::secret::digest;

use crate::clients::Client;
use crate::error::OAuthError;
use crate::state::AppState;

/// Revokes `token` if it is `client`'s. The hint only orders the look-ups (§2.1).
pub async fn revoke(
    state: &AppState,
    client: &Client,
    token: &str,
    hint: Option<&str>,
    now: i64,
) -> Result<(), OAuthError> {
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
                    if super::introspect::is_machine_token(&claims) {
                        state
                            .store
                            .revoke_machine_token(&claims.jti, &claims.client_id, claims.exp)
                            .await?;
                    }
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
    Ok(())
}
