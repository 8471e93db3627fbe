//! The token endpoint's decisions (RFC 6749 §3.2, OAuth 2.1 §3.2): which client may use
//! which grant, what a code or refresh token is worth, and the tokens it buys. Every
//! function takes `now`.

use oauth_protocol::grant::{Grant, GrantType};
use oauth_protocol::register::GRANT_REFRESH_TOKEN;
use oauth_protocol::secret::digest;
use oauth_protocol::token::TokenResponse;
use oauth_protocol::{ErrorCode, Scope, pkce};

use crate::clients::Client;
use crate::error::OAuthError;
use crate::ids::{derive_token, new_id};
use crate::oauth::mint::{Mint, mint};
use crate::state::AppState;
use crate::store::{Exchange, GrantRow};

/// Checks that `client` may use the grant, exchanges it, and records the issue.
pub async fn exchange(
    state: &AppState,
    client: &Client,
    grant: Grant,
    now: i64,
) -> Result<TokenResponse, OAuthError> {
    let grant_type = grant.grant_type();
    let name = grant_type.as_str();
    if !client.metadata.allows_grant(name) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("this client is not registered for the {name} grant"),
        ));
    }
    let (response, user_id) = match grant {
        Grant::AuthorizationCode {
            code,
            code_verifier,
            redirect_uri,
            resource,
        } => {
            authorization_code(
                state,
                client,
                &code,
                &code_verifier,
                redirect_uri.as_deref(),
                resource.as_deref(),
                now,
            )
            .await?
        }
        Grant::RefreshToken {
            refresh_token: token,
            scope,
            resource,
        } => refresh_token(state, client, &token, scope, resource.as_deref(), now).await?,
        Grant::ClientCredentials { scope, resource } => (
            client_credentials(state, client, scope, resource.as_deref(), now).await?,
            None,
        ),
        Grant::DeviceCode { device_code } => {
            super::device::poll(state, client, &device_code, now).await?
        }
    };
    state
        .metrics
        .inc("tokens_issued_total", &[("grant_type", name)]);
    tracing::info!("token issued");
    let kind = if grant_type == GrantType::RefreshToken {
        "token_refreshed"
    } else {
        "token_issued"
    };
    state
        .audit(kind, user_id.as_deref(), Some(&client.client_id), name)
        .await;
    Ok(response)
}

/// The `resource` of a token request, normalised against the configured resource servers.
fn requested_resource(
    state: &AppState,
    resource: Option<&str>,
) -> Result<Option<String>, OAuthError> {
    match resource {
        None => Ok(None),
        Some(r) => state
            .resource_server(r)
            .map(|rs| Some(rs.resource))
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidTarget, "unknown resource")),
    }
}

/// A token response and the user it was issued for (none for a machine client).
type Issued = (TokenResponse, Option<String>);

/// RFC 6749 §4.1.3 / OAuth 2.1 §4.1.3: redeems a code exactly once.
async fn authorization_code(
    state: &AppState,
    client: &Client,
    code: &str,
    verifier: &str,
    redirect_uri: Option<&str>,
    resource: Option<&str>,
    now: i64,
) -> Result<Issued, OAuthError> {
    let resource = requested_resource(state, resource)?;
    let with_refresh = client.metadata.allows_grant(GRANT_REFRESH_TOKEN);
    let mut response = None;
    let grant_id = new_id();
    let outcome = state
        .store
        .redeem_code(&digest(code), &grant_id, now, |row| {
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
            response = Some((resp, Some(row.user_id.clone())));
            Ok(tokens)
        })
        .await?;
    finish(state, client, outcome, response, "code").await
}

/// OAuth 2.1 §4.3.1: rotates a refresh token; the scope may narrow, never widen.
async fn refresh_token(
    state: &AppState,
    client: &Client,
    token: &str,
    scope: Option<Scope>,
    resource: Option<&str>,
    now: i64,
) -> Result<Issued, OAuthError> {
    let resource = requested_resource(state, resource)?;
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
            response = Some((resp, ctx.user_id.clone()));
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
    response: Option<Issued>,
    what: &str,
) -> Result<Issued, OAuthError> {
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

/// RFC 6749 §4.4: a token that acts for no user, for a client an administrator arranged.
async fn client_credentials(
    state: &AppState,
    client: &Client,
    scope: Option<Scope>,
    resource: Option<&str>,
    now: i64,
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
    let scope = match scope {
        Some(s) if !s.is_subset(&allowed) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "scope exceeds what this client may request",
            ));
        }
        Some(s) if !s.is_empty() => s,
        _ => allowed,
    };
    let resource = match resource {
        Some(r) => state
            .resource_server(r)
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidTarget, "unknown resource"))?,
        None => state
            .default_resource_server()
            .ok_or_else(|| OAuthError::new(ErrorCode::InvalidTarget, "resource is required"))?,
    };
    if !resource.machine_clients {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "this resource does not accept tokens that act for no user",
        ));
    }
    let resource = resource.resource;
    // No row: the token lives while its client does (see `introspect::is_machine_token`).
    let (resp, _) = mint(
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
    Ok(resp)
}
