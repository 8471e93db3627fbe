//! The token endpoint (RFC 6749 §3.2, OAuth 2.1 §3.2): authorization code with PKCE,
//! refresh-token rotation, and client credentials.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use oauth_protocol::form::Params;
use oauth_protocol::register::{
    GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN,
};
use oauth_protocol::secret::digest;
use oauth_protocol::token::TokenResponse;
use oauth_protocol::{ErrorCode, Scope, paths, pkce};

use crate::clients::{Client, authenticate, credentials};
use crate::crypto::{derive_token, new_id};
use crate::error::{OAuthError, no_store_json};
use crate::state::{AppState, now};
use crate::store::{Exchange, GrantRow};
use crate::tokens::{Mint, mint};

pub fn router() -> Router<AppState> {
    Router::new().route(paths::TOKEN, post(token))
}

/// Parses an `application/x-www-form-urlencoded` body, refusing anything else.
pub fn form_params(headers: &HeaderMap, body: &Bytes) -> Result<Params, OAuthError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(body);
    if let Some(dup) = params.first_duplicate() {
        return Err(OAuthError::invalid_request(format!(
            "parameter {dup} is repeated"
        )));
    }
    Ok(params)
}

/// Authenticates the calling client (secret or, for public clients, none).
pub async fn calling_client(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Client, OAuthError> {
    let creds = credentials(headers, params)?
        .ok_or_else(|| OAuthError::invalid_client("client authentication is required", false))?;
    let client = state.client(&creds.client_id).await?;
    authenticate(client, &creds)
}

#[tracing::instrument(skip_all, fields(grant_type, client_id))]
async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let params = form_params(&headers, &body)?;
    let grant_type = params
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?
        .to_owned();
    tracing::Span::current().record("grant_type", grant_type.as_str());
    let client = calling_client(&state, &headers, &params).await?;
    tracing::Span::current().record("client_id", client.client_id.as_str());
    let known = [
        GRANT_AUTHORIZATION_CODE,
        GRANT_REFRESH_TOKEN,
        GRANT_CLIENT_CREDENTIALS,
    ];
    if !known.contains(&grant_type.as_str()) {
        return Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!("grant_type {grant_type:?} is not supported"),
        ));
    }
    if !client.metadata.allows_grant(&grant_type) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("this client is not registered for the {grant_type} grant"),
        ));
    }
    let response = match grant_type.as_str() {
        GRANT_AUTHORIZATION_CODE => authorization_code(&state, &client, &params).await?,
        GRANT_REFRESH_TOKEN => refresh_token(&state, &client, &params).await?,
        _ => client_credentials(&state, &client, &params).await?,
    };
    state.metrics.inc(
        "tokens_issued_total",
        &[("grant_type", grant_type.as_str())],
    );
    tracing::info!("token issued");
    let kind = if grant_type == GRANT_REFRESH_TOKEN {
        "token_refreshed"
    } else {
        "token_issued"
    };
    state
        .audit(kind, None, Some(&client.client_id), &grant_type)
        .await;
    Ok(no_store_json(StatusCode::OK, &response))
}

/// The `resource` of a token request, normalised against the configured resource servers.
fn requested_resource(state: &AppState, params: &Params) -> Result<Option<String>, OAuthError> {
    match params.get("resource") {
        None => Ok(None),
        Some(r) => state
            .resource_server(r)
            .map(|rs| Some(rs.resource))
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidTarget, "unknown resource")),
    }
}

fn requested_scope(params: &Params) -> Result<Option<Scope>, OAuthError> {
    params
        .get("scope")
        .map(|s| {
            Scope::parse(s).map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.to_string()))
        })
        .transpose()
}

async fn authorization_code(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let verifier = params
        .get("code_verifier")
        .ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
    let redirect_uri = params.get("redirect_uri");
    let resource = requested_resource(state, params)?;
    let now = now();
    let with_refresh = client.metadata.allows_grant(GRANT_REFRESH_TOKEN);
    let mut response = None;
    let outcome = state
        .store
        .redeem_code(&digest(code), now, |row| {
            if row.client_id != client.client_id {
                return Err(OAuthError::invalid_grant(
                    "the code was issued to another client",
                ));
            }
            if row.expires_at <= now {
                return Err(OAuthError::invalid_grant("the code has expired"));
            }
            // OAuth 2.1 §4.1.3: redirect_uri must match when the authorization request had one;
            // we always record the effective one, so a sent value must equal it.
            if redirect_uri.is_some_and(|r| r != row.redirect_uri) {
                return Err(OAuthError::invalid_grant(
                    "redirect_uri does not match the authorization request",
                ));
            }
            // RFC 6749 §4.1.3: required here when the authorization request carried it.
            if redirect_uri.is_none() && row.redirect_uri_sent != 0 {
                return Err(OAuthError::invalid_grant(
                    "redirect_uri is required: the authorization request carried one",
                ));
            }
            if !pkce::verify_s256(verifier, &row.code_challenge) {
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
            if resource.as_ref().is_some_and(|r| *r != row.resource) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    "resource differs from the authorization request",
                ));
            }
            let scope = Scope::parse(&row.scope).unwrap_or_default();
            let grant_id = new_id();
            let (resp, tokens) = mint(
                state,
                now,
                Mint {
                    client_id: &client.client_id,
                    user_id: Some(&row.user_id),
                    resource: &row.resource,
                    scope: &scope,
                    grant_id: Some(&grant_id),
                    refresh_token: None,
                    new_grant: Some(GrantRow {
                        id: grant_id.clone(),
                        user_id: Some(row.user_id.clone()),
                        client_id: client.client_id.clone(),
                        resource: row.resource.clone(),
                        scope: row.scope.clone(),
                        created_at: now,
                        last_used_at: now,
                        revoked_at: None,
                    }),
                    with_refresh,
                },
            );
            response = Some(resp);
            Ok(tokens)
        })
        .await?;
    finish(state, client, outcome, response, "code").await
}

async fn refresh_token(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let token = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let scope = requested_scope(params)?;
    let resource = requested_resource(state, params)?;
    let now = now();
    // The successor is derived from the presented token, so a retry within the grace
    // window gets the same successor instead of starting a second live chain.
    let successor = derive_token(&state.refresh_key, token);
    let mut response = None;
    let outcome = state
        .store
        .rotate_refresh_token(&digest(token), now, state.config.refresh_grace, |ctx| {
            if ctx.client_id != client.client_id {
                return Err(OAuthError::invalid_grant(
                    "the refresh token was issued to another client",
                ));
            }
            if resource.as_ref().is_some_and(|r| *r != ctx.resource) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    "resource differs from the original grant",
                ));
            }
            let granted = Scope::parse(&ctx.scope).unwrap_or_default();
            // RFC 6749 §6: the scope may narrow, never widen.
            let scope = match &scope {
                Some(s) if !s.is_subset(&granted) => {
                    return Err(OAuthError::new(
                        ErrorCode::InvalidScope,
                        "scope exceeds the original grant",
                    ));
                }
                Some(s) if !s.is_empty() => s.clone(),
                _ => granted,
            };
            let (resp, tokens) = mint(
                state,
                now,
                Mint {
                    client_id: &client.client_id,
                    user_id: ctx.user_id.as_deref(),
                    resource: &ctx.resource,
                    scope: &scope,
                    grant_id: Some(&ctx.grant_id),
                    new_grant: None,
                    with_refresh: true,
                    refresh_token: Some(successor),
                },
            );
            response = Some(resp);
            Ok(tokens)
        })
        .await?;
    finish(state, client, outcome, response, "refresh token").await
}

/// Maps a single-use exchange to the token response or its RFC 6749 §5.2 error: any dead
/// code or refresh token is `invalid_grant`. A replay, which revoked the grant, is audited.
async fn finish(
    state: &AppState,
    client: &Client,
    outcome: Exchange<OAuthError>,
    response: Option<TokenResponse>,
    what: &str,
) -> Result<TokenResponse, OAuthError> {
    match outcome {
        Exchange::Issued => Ok(response.expect("set when issued")),
        Exchange::Rejected(e) => Err(e),
        Exchange::NotFound => Err(OAuthError::invalid_grant(format!(
            "the {what} is invalid, expired or revoked"
        ))),
        Exchange::Replayed => {
            tracing::warn!(
                what,
                "single-use credential replayed; its grant was revoked"
            );
            let detail = format!("{what} replayed");
            state
                .audit(
                    "grant_revoked_on_replay",
                    None,
                    Some(&client.client_id),
                    &detail,
                )
                .await;
            Err(OAuthError::invalid_grant(format!(
                "the {what} was already used"
            )))
        }
    }
}

async fn client_credentials(
    state: &AppState,
    client: &Client,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if !client.is_confidential() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client_credentials requires a confidential client",
        ));
    }
    // RFC 6749 §4.4: only for clients whose access was arranged with this server; a
    // self-registered client asserting the grant type is not enough.
    if !client.is_vetted() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client_credentials is available only to clients created by an administrator",
        ));
    }
    // The scope a machine client may have is what its registration was given, nothing more.
    let allowed = client
        .metadata
        .scope
        .as_deref()
        .map(|s| Scope::parse(s).unwrap_or_default())
        .unwrap_or_default();
    if allowed.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "this client was given no scope for client_credentials",
        ));
    }
    let scope = match requested_scope(params)? {
        Some(s) if !s.is_subset(&allowed) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "scope exceeds what this client may request",
            ));
        }
        Some(s) if !s.is_empty() => s,
        _ => allowed,
    };
    let resource = match params.get("resource") {
        Some(r) => state
            .resource_server(r)
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidTarget, "unknown resource"))?,
        None => state
            .only_resource_server()
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidTarget, "resource is required"))?,
    };
    if !resource.machine_clients {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "this resource does not accept tokens that act for no user",
        ));
    }
    let resource = resource.resource;
    let now = now();
    let (resp, tokens) = mint(
        state,
        now,
        Mint {
            client_id: &client.client_id,
            user_id: None,
            resource: &resource,
            scope: &scope,
            grant_id: None,
            new_grant: None,
            with_refresh: false,
            refresh_token: None,
        },
    );
    state.store.insert_access_token(&tokens).await?;
    Ok(resp)
}
