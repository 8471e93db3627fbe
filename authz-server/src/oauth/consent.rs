//! The consent decision (OAuth 2.1 §4.1.1, OpenID `prompt`): sign in, ask, or issue the
//! code at once because the person already approved this client, resource and scope.

use oauth_protocol::uri::is_loopback_host;
use oauth_protocol::{ErrorCode, Scope};

use super::authorize::{AuthRequest, AuthorizeError, issue_code, redirect_host};
use crate::state::AppState;
use crate::store::{SessionRow, StoreError};

/// What the authorization endpoint does next with a valid request.
pub enum Next {
    /// Back to the client (with a code).
    Redirect(String),
    /// Ask the person to sign in.
    SignIn,
    /// Ask the signed-in person to approve.
    Consent(ConsentView),
}

/// What the consent page shows besides the request itself.
pub struct ConsentView {
    pub user_name: String,
    /// Every redirect URI is on this computer (the MCP spec asks to warn).
    pub localhost_only: bool,
    /// For document clients: the host serving the metadata document.
    pub document_host: String,
}

/// OAuth 2.1 §4.1.1 and OpenID `prompt`: sign in, ask for consent, or issue the code. In
/// headless mode the person is skipped; everything else is checked as usual.
pub async fn decide(
    state: &AppState,
    req: &AuthRequest,
    session: Option<&SessionRow>,
    now: i64,
) -> Result<Next, AuthorizeError> {
    if let Some(user_id) = &state.headless_user_id {
        state
            .audit(
                "headless_approved",
                Some(user_id),
                Some(&req.client.client_id),
                &req.scope.to_string(),
            )
            .await;
        return issue_code(state, req, user_id, None, now)
            .await
            .map(Next::Redirect);
    }
    let Some(session) = session.filter(|_| !req.prompt_login) else {
        if req.prompt_none {
            return Err(req.error(ErrorCode::LoginRequired, "the user is not signed in"));
        }
        return Ok(Next::SignIn);
    };
    let prior = prior_consent(state, &session.user_id, req).await?;
    if !req.prompt_consent && !prior.is_empty() && req.scope.is_subset(&prior) {
        return issue_code(state, req, &session.user_id, None, now)
            .await
            .map(Next::Redirect);
    }
    if req.prompt_none {
        return Err(req.error(
            ErrorCode::ConsentRequired,
            "the user has not approved this application",
        ));
    }
    let user = state
        .store
        .user_by_id(&session.user_id)
        .await?
        .ok_or(AuthorizeError::Internal)?;
    let localhost_only = req
        .client
        .metadata
        .redirect_uris
        .iter()
        .all(|u| url::Url::parse(u).is_ok_and(|u| is_loopback_host(&u)));
    let document_host = if req.client.from_document {
        redirect_host(&req.client.client_id)
    } else {
        String::new()
    };
    Ok(Next::Consent(ConsentView {
        user_name: user.display_name.unwrap_or(user.username),
        localhost_only,
        document_host,
    }))
}

/// Narrows `req` to what the signed-in user may be granted, when their sign-in limits it (a
/// provider that maps a claim to scopes). RFC 6749 §3.3 lets the server issue less than was
/// asked; the token response names what was issued. Nothing left of a request that asked for
/// something is `access_denied`.
pub fn within_limit(
    mut req: AuthRequest,
    session: Option<&SessionRow>,
) -> Result<AuthRequest, AuthorizeError> {
    let Some(limit) = session.and_then(|s| s.scope_limit.as_deref()) else {
        return Ok(req);
    };
    let allowed = req
        .scope
        .intersection(&Scope::parse(limit).unwrap_or_default());
    if allowed.is_empty() && !req.scope.is_empty() {
        return Err(req.error(
            ErrorCode::AccessDenied,
            "this account may not be granted any of the requested scopes",
        ));
    }
    req.scope = allowed;
    Ok(req)
}

/// The person approved: remember the consent (with what was approved before for this
/// client and resource) together with the code.
pub async fn approve(
    state: &AppState,
    req: &AuthRequest,
    user_id: &str,
    now: i64,
) -> Result<String, AuthorizeError> {
    let prior = prior_consent(state, user_id, req).await?;
    let remembered = prior.union(&req.scope);
    tracing::info!(client_id = %req.client.client_id, "consent given");
    state
        .audit(
            "consent_granted",
            Some(user_id),
            Some(&req.client.client_id),
            &req.scope.to_string(),
        )
        .await;
    issue_code(state, req, user_id, Some(&remembered), now).await
}

/// The person said no: the client is told `access_denied`.
pub async fn deny(state: &AppState, req: &AuthRequest, user_id: &str) -> AuthorizeError {
    tracing::info!(client_id = %req.client.client_id, "consent denied");
    state
        .audit(
            "consent_denied",
            Some(user_id),
            Some(&req.client.client_id),
            "",
        )
        .await;
    req.denied()
}

/// The scopes this user has already approved for this client at this resource server.
pub async fn prior_consent(
    state: &AppState,
    user_id: &str,
    req: &AuthRequest,
) -> Result<Scope, StoreError> {
    let stored = state
        .store
        .consent(user_id, &req.client.client_id, &req.resource.resource)
        .await?;
    Ok(stored
        .and_then(|s| Scope::parse(&s).ok())
        .unwrap_or_default())
}
