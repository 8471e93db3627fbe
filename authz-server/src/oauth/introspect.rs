//! RFC 7662 introspection decisions. A resource server sees only tokens minted for its
//! resource; a confidential client sees only its own tokens.

use oauth_protocol::introspect::{Audience, IntrospectionResponse};
use oauth_protocol::secret::digest;
use oauth_protocol::token::AccessTokenClaims;

use crate::clients::{Credentials, authenticate};
use crate::error::OAuthError;
use crate::state::AppState;

/// A client-credentials token: it acts for its client (RFC 9068 §2.2: `sub` is the client),
/// and has no row; it lives as long as its client and is revoked by listing its `jti`.
pub fn is_machine_token(claims: &AccessTokenClaims) -> bool {
    claims.sub == claims.client_id
}

/// Who is asking.
pub enum Caller {
    ResourceServer { resource: String },
    Client { client_id: String },
}

impl Caller {
    pub fn may_see(&self, client_id: &str, resource: &str) -> bool {
        match self {
            Caller::ResourceServer { resource: own } => own == resource,
            Caller::Client { client_id: own } => own == client_id,
        }
    }
}

/// RFC 7662 §2.1: the caller authenticates, as a resource server with its configured
/// credentials or as a confidential client.
pub async fn authenticate_caller(
    state: &AppState,
    creds: Option<Credentials>,
) -> Result<Caller, OAuthError> {
    let creds = creds.ok_or_else(|| {
        OAuthError::invalid_client("introspection requires client authentication", false)
    })?;
    let secret = creds.secret.as_deref().unwrap_or_default();
    if let Some(rs) = state.resource_server_by_client(&creds.client_id) {
        if creds.secret.is_some() && rs.secret_matches(secret) {
            return Ok(Caller::ResourceServer {
                resource: rs.resource.clone(),
            });
        }
        return Err(OAuthError::invalid_client(
            "client authentication failed",
            creds.via_header,
        ));
    }
    let client = authenticate(state.client(&creds.client_id).await?, &creds)?;
    if !client.is_confidential() {
        return Err(OAuthError::invalid_client(
            "introspection requires a confidential client",
            creds.via_header,
        ));
    }
    Ok(Caller::Client {
        client_id: client.client_id,
    })
}

/// RFC 7662 §2.2: what `caller` may learn about `token`; anything it may not see, or that is
/// not live, is exactly `{"active":false}`.
pub async fn introspect(
    state: &AppState,
    caller: &Caller,
    token: &str,
    now: i64,
) -> Result<IntrospectionResponse, OAuthError> {
    let issuer = &state.config.issuer;
    if let Ok(claims) = state.keys.verify_fresh(&state.store, token, now).await {
        if claims.iss != *issuer || claims.exp <= now {
            return Ok(IntrospectionResponse::inactive());
        }
        if is_machine_token(&claims) {
            let live = state
                .store
                .machine_token_revoked(&claims.jti, &claims.client_id)
                .await?
                == Some(false);
            if !live || !caller.may_see(&claims.client_id, &claims.aud) {
                return Ok(IntrospectionResponse::inactive());
            }
            return Ok(IntrospectionResponse {
                active: true,
                scope: Some(claims.scope.clone()),
                client_id: Some(claims.client_id.clone()),
                username: None,
                token_type: Some("Bearer".into()),
                exp: Some(claims.exp),
                iat: Some(claims.iat),
                sub: Some(claims.sub.clone()),
                aud: Some(Audience::One(claims.aud.clone())),
                iss: Some(issuer.clone()),
                jti: Some(claims.jti.clone()),
                email: None,
                name: None,
            });
        }
        let Some(row) = state.store.access_token_state(&claims.jti).await? else {
            return Ok(IntrospectionResponse::inactive());
        };
        if row.is_dead() || !caller.may_see(&row.client_id, &row.resource) {
            return Ok(IntrospectionResponse::inactive());
        }
        return Ok(IntrospectionResponse {
            active: true,
            scope: Some(row.scope),
            client_id: Some(row.client_id),
            username: row.username,
            token_type: Some("Bearer".into()),
            exp: Some(row.expires_at),
            iat: Some(row.issued_at),
            sub: Some(claims.sub.clone()),
            aud: Some(Audience::One(row.resource)),
            iss: Some(issuer.clone()),
            jti: Some(row.jti),
            email: row.email,
            name: row.display_name,
        });
    }
    if let Some(ctx) = state.store.refresh_token_context(&digest(token)).await? {
        let live = !ctx.is_dead(now);
        // A rotated token is live only while its grace window lasts.
        let rotated_out = !oauth_protocol::grant::rotated_token_usable(
            ctx.rotated_at,
            now,
            state.config.refresh_grace,
        );
        if live && !rotated_out && caller.may_see(&ctx.client_id, &ctx.resource) {
            let username = match &ctx.user_id {
                Some(id) => state.store.user_by_id(id).await?.map(|u| u.username),
                None => None,
            };
            return Ok(IntrospectionResponse {
                active: true,
                scope: Some(ctx.scope),
                client_id: Some(ctx.client_id.clone()),
                username,
                token_type: Some("refresh_token".into()),
                exp: Some(ctx.expires_at),
                iat: None,
                sub: Some(ctx.user_id.unwrap_or(ctx.client_id)),
                aud: Some(Audience::One(ctx.resource)),
                iss: Some(issuer.clone()),
                jti: None,
                email: None,
                name: None,
            });
        }
    }
    Ok(IntrospectionResponse::inactive())
}
