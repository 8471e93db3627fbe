//! RFC 8628, the device authorization grant: a device without a browser asks for a code
//! pair, a person approves the user code on `/device` (signed in, with the client, scopes and
//! resource shown), and the device polls the token endpoint until then.

use oauth_protocol::device::{self, DEVICE_CODE_TTL, POLL_INTERVAL};
use oauth_protocol::register::{GRANT_DEVICE_CODE, GRANT_REFRESH_TOKEN};
use oauth_protocol::secret::digest;
use oauth_protocol::token::TokenResponse;
use oauth_protocol::{ErrorCode, Scope, paths};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

use super::authorize::offered_scope;
use super::mint::{Mint, mint};
use crate::clients::Client;
use crate::error::OAuthError;
use crate::ids::{new_id, new_secret};
use crate::state::AppState;
use crate::store::device::{APPROVED, PENDING};
use crate::store::{DeviceRow, GrantRow, Poll, SessionRow, StoreError};

/// RFC 8628 §3.2.
#[derive(Debug, Serialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// RFC 8628 §3.1–3.2: a new request for `client`. In headless mode it is approved at once
/// as the headless user, as the authorization endpoint would.
pub async fn start(
    state: &AppState,
    client: &Client,
    scope: Scope,
    resource: Option<&str>,
    now: i64,
) -> Result<DeviceAuthorization, OAuthError> {
    if !client.metadata.allows_grant(GRANT_DEVICE_CODE) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client is not registered for the device_code grant",
        ));
    }
    let scope = offered_scope(client, scope, state.config.supported_scopes())?;
    let resource = match resource {
        Some(r) => state.resource_server(r),
        None => state.default_resource_server(),
    }
    .ok_or_else(|| {
        OAuthError::new(
            ErrorCode::InvalidTarget,
            if resource.is_some() {
                "the resource is not known to this server"
            } else {
                "resource is required"
            },
        )
    })?;
    let device_code = new_secret();
    let (status, user_id) = match &state.headless_user_id {
        Some(user) => (APPROVED, Some(user.clone())),
        None => (PENDING, None),
    };
    // A collision of user codes is possible (2^34.6 of them): draw again.
    for _ in 0..4 {
        let user_code = new_user_code();
        let row = DeviceRow {
            device_code_hash: digest(&device_code),
            user_code_hash: digest(&user_code),
            client_id: client.client_id.clone(),
            scope: scope.to_string(),
            resource: resource.resource.clone(),
            status: status.into(),
            user_id: user_id.clone(),
            created_at: now,
            expires_at: now + DEVICE_CODE_TTL,
            poll_interval: POLL_INTERVAL,
            last_polled_at: None,
        };
        match state.store.insert_device_code(&row).await {
            Ok(()) => {}
            Err(StoreError::Database(e)) if db::is_unique_violation(&e) => continue,
            Err(e) => return Err(e.into()),
        }
        let kind = if user_id.is_some() {
            "headless_approved"
        } else {
            "device_authorization_started"
        };
        state
            .audit(
                kind,
                user_id.as_deref(),
                Some(&client.client_id),
                &scope.to_string(),
            )
            .await;
        let shown = device::display(&user_code);
        let page = state.config.endpoint(paths::DEVICE);
        return Ok(DeviceAuthorization {
            device_code,
            verification_uri_complete: format!("{page}?user_code={shown}"),
            verification_uri: page,
            user_code: shown,
            expires_in: DEVICE_CODE_TTL,
            interval: POLL_INTERVAL,
        });
    }
    Err(OAuthError::server_error())
}

fn new_user_code() -> String {
    let random = SystemRandom::new();
    let mut bytes = [0u8; 32];
    loop {
        random
            .fill(&mut bytes)
            .expect("the OS random source failed");
        if let Some(code) = device::user_code_from(&bytes) {
            return code;
        }
    }
}

/// A pending request for the code a person typed, with its client.
pub struct Pending {
    pub row: DeviceRow,
    pub client: Client,
    /// The normalised code, as the decision form carries it.
    pub user_code: String,
}

/// The pending request a typed code names, if any.
pub async fn pending(
    state: &AppState,
    typed: &str,
    now: i64,
) -> Result<Option<Pending>, OAuthError> {
    let Some(user_code) = device::normalize(typed) else {
        return Ok(None);
    };
    let Some(row) = state
        .store
        .pending_device_code(&digest(&user_code), now)
        .await?
    else {
        return Ok(None);
    };
    let Some(client) = state.client(&row.client_id).await? else {
        return Ok(None);
    };
    Ok(Some(Pending {
        row,
        client,
        user_code,
    }))
}

/// The person's answer on `/device`. An approval is remembered as consent for the client
/// and resource, as on the consent page; a sign-in that limits its user's scopes narrows
/// what is granted (nothing left is a denial). False when the request is no longer pending.
pub async fn decide(
    state: &AppState,
    pending: &Pending,
    session: &SessionRow,
    approved: bool,
    now: i64,
) -> Result<bool, OAuthError> {
    let user_id = session.user_id.as_str();
    let asked = Scope::parse(&pending.row.scope).unwrap_or_default();
    let granted = match session.scope_limit.as_deref() {
        Some(limit) => asked.intersection(&Scope::parse(limit).unwrap_or_default()),
        None => asked.clone(),
    };
    let approved = approved && (asked.is_empty() || !granted.is_empty());
    let consent = if approved {
        let prior = state
            .store
            .consent(user_id, &pending.row.client_id, &pending.row.resource)
            .await?
            .and_then(|s| Scope::parse(&s).ok())
            .unwrap_or_default();
        Some(prior.union(&granted).to_string())
    } else {
        None
    };
    let decided = state
        .store
        .decide_device_code(
            &digest(&pending.user_code),
            user_id,
            approved,
            &granted.to_string(),
            consent.as_deref(),
            now,
        )
        .await?;
    if decided {
        let kind = if approved {
            "consent_granted"
        } else {
            "consent_denied"
        };
        state
            .audit(
                kind,
                Some(user_id),
                Some(&pending.row.client_id),
                &format!("device {}", pending.row.scope),
            )
            .await;
    }
    Ok(decided)
}

/// RFC 8628 §3.4–3.5: one poll of the token endpoint.
pub async fn poll(
    state: &AppState,
    client: &Client,
    device_code: &str,
    now: i64,
) -> Result<(TokenResponse, Option<String>), OAuthError> {
    let with_refresh = client.metadata.allows_grant(GRANT_REFRESH_TOKEN);
    let mut issued = None;
    let outcome = state
        .store
        .poll_device_code(&digest(device_code), &client.client_id, now, |row| {
            let user_id = row.user_id.clone().ok_or_else(OAuthError::server_error)?;
            let scope = Scope::parse(&row.scope).unwrap_or_default();
            let grant_id = new_id();
            let (response, tokens) = mint(
                state,
                now,
                Mint {
                    client_id: &client.client_id,
                    user_id: Some(&user_id),
                    resource: &row.resource,
                    scope: &scope,
                    grant_id: Some(&grant_id),
                    refresh_token: None,
                    new_grant: Some(GrantRow {
                        id: grant_id.clone(),
                        user_id: Some(user_id.clone()),
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
            issued = Some((response, Some(user_id)));
            Ok(tokens)
        })
        .await?;
    let refuse = |code, text: &str| Err(OAuthError::new(code, text));
    match outcome {
        Poll::Issued => Ok(issued.expect("set when issued")),
        Poll::Pending => refuse(
            ErrorCode::AuthorizationPending,
            "the user has not answered yet",
        ),
        Poll::SlowDown(interval) => Err(OAuthError::new(
            ErrorCode::SlowDown,
            format!("polling too fast: wait {interval} seconds between requests"),
        )),
        Poll::Denied => refuse(ErrorCode::AccessDenied, "the user denied the request"),
        Poll::Expired => refuse(
            ErrorCode::ExpiredToken,
            "the device code has expired: start again",
        ),
        Poll::NotFound => refuse(
            ErrorCode::InvalidGrant,
            "the device code is invalid, redeemed already, or was issued to another client",
        ),
        Poll::Rejected(e) => Err(e),
    }
}
