//! Minting: RFC 9068 JWT access tokens and opaque refresh tokens, with the rows that make
//! them revocable.

use oauth_protocol::Scope;
use oauth_protocol::secret::digest;
use oauth_protocol::token::{AccessTokenClaims, TokenResponse};

use crate::ids::{new_id, new_secret};
use crate::state::AppState;
use crate::store::{AccessTokenRow, GrantRow, NewTokens, RefreshTokenRow};

pub struct Mint<'a> {
    pub client_id: &'a str,
    /// The user, or `None` for client credentials (the client is its own subject).
    pub user_id: Option<&'a str>,
    pub resource: &'a str,
    /// Scope of this access token (may be narrower than the grant's).
    pub scope: &'a Scope,
    /// The grant the tokens belong to.
    pub grant_id: Option<&'a str>,
    /// A grant to create together with the tokens.
    pub new_grant: Option<GrantRow>,
    pub with_refresh: bool,
    /// The refresh token to issue (a rotation's derived successor); a new one when `None`.
    pub refresh_token: Option<String>,
}

pub fn mint(state: &AppState, now: i64, m: Mint<'_>) -> (TokenResponse, NewTokens) {
    let cfg = &state.config;
    let jti = new_id();
    let claims = AccessTokenClaims {
        iss: cfg.issuer.clone(),
        sub: m.user_id.unwrap_or(m.client_id).to_owned(),
        aud: m.resource.to_owned(),
        client_id: m.client_id.to_owned(),
        scope: m.scope.to_string(),
        iat: now,
        exp: now + cfg.access_token_ttl,
        jti: jti.clone(),
    };
    let access_token = state.keys.sign(&claims);
    let grant_id = m.grant_id.map(str::to_owned);
    let refresh =
        (m.with_refresh && grant_id.is_some()).then(|| m.refresh_token.unwrap_or_else(new_secret));
    let tokens = NewTokens {
        grant: m.new_grant,
        access: AccessTokenRow {
            jti,
            grant_id: grant_id.clone(),
            client_id: m.client_id.to_owned(),
            user_id: m.user_id.map(str::to_owned),
            resource: m.resource.to_owned(),
            scope: m.scope.to_string(),
            issued_at: now,
            expires_at: claims.exp,
            revoked_at: None,
        },
        refresh: refresh
            .as_ref()
            .zip(grant_id)
            .map(|(rt, grant_id)| RefreshTokenRow {
                token_hash: digest(rt),
                grant_id,
                created_at: now,
                expires_at: now + cfg.refresh_token_ttl,
            }),
    };
    let response = TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: cfg.access_token_ttl as u64,
        refresh_token: refresh,
        scope: Some(m.scope.to_string()),
    };
    (response, tokens)
}
