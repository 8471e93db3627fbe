//! RFC 7662 token introspection. Callers authenticate (§2.1): a resource server with its
//! configured credentials sees only tokens minted for its resource; a client sees only its
//! own tokens. Anything else is exactly `{"active":false}`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use oauth_protocol::introspect::IntrospectionResponse;
use oauth_protocol::paths;
use oauth_protocol::secret::digest;

use crate::clients::{authenticate, credentials};
use crate::error::{OAuthError, no_store_json};
use crate::routes::token::form_params;
use crate::state::{AppState, now};

pub fn router() -> Router<AppState> {
    Router::new().route(paths::INTROSPECT, post(introspect))
}

/// Who is asking.
pub enum Caller {
    ResourceServer { resource: String },
    Client { client_id: String },
}

impl Caller {
    fn may_see(&self, client_id: &str, resource: &str) -> bool {
        match self {
            Caller::ResourceServer { resource: own } => own == resource,
            Caller::Client { client_id: own } => own == client_id,
        }
    }
}

async fn authenticate_caller(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Caller, oauth_protocol::form::Params), OAuthError> {
    let params = form_params(headers, body)?;
    let creds = credentials(headers, &params)?.ok_or_else(|| {
        OAuthError::invalid_client("introspection requires client authentication", false)
    })?;
    let secret = creds.secret.as_deref().unwrap_or_default();
    if let Some(rs) = state.resource_server_by_client(&creds.client_id) {
        if creds.secret.is_some() && rs.secret_matches(secret) {
            return Ok((
                Caller::ResourceServer {
                    resource: rs.resource.clone(),
                },
                params,
            ));
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
    Ok((
        Caller::Client {
            client_id: client.client_id,
        },
        params,
    ))
}

#[tracing::instrument(skip_all)]
async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let (caller, params) = authenticate_caller(&state, &headers, &body).await?;
    let token = params
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let answer = lookup(&state, &caller, token).await?;
    Ok(no_store_json(StatusCode::OK, &answer))
}

async fn lookup(
    state: &AppState,
    caller: &Caller,
    token: &str,
) -> Result<IntrospectionResponse, OAuthError> {
    let now = now();
    let issuer = &state.config.issuer;
    if let Ok(claims) = state.keys.verify_fresh(&state.store, token, now).await {
        if claims.iss != *issuer || claims.exp <= now {
            return Ok(IntrospectionResponse::inactive());
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
            sub: Some(claims.sub),
            aud: Some(row.resource),
            iss: Some(issuer.clone()),
            jti: Some(row.jti),
            email: row.email,
            name: row.display_name,
        });
    }
    if let Some(ctx) = state.store.refresh_token_context(&digest(token)).await? {
        let live = !ctx.is_dead(now);
        // A rotated token is live only while its grace window lasts.
        let rotated_out = ctx
            .rotated_at
            .is_some_and(|at| now - at > state.config.refresh_grace);
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
                aud: Some(ctx.resource),
                iss: Some(issuer.clone()),
                jti: None,
                email: None,
                name: None,
            });
        }
    }
    Ok(IntrospectionResponse::inactive())
}
