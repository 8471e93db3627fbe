//! `GET /federation/{provider}/start` (the login page's "Continue with …"),
//! `POST /account/identities/link` (the account page's "Link") and
//! `GET /federation/{provider}/callback`. `oauth::federation` decides; this sets the
//! browser-binding and session cookies and maps refusals to pages that say what happened.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use oauth_protocol::paths;

use super::pages::{refuse, see_other};
use super::session::{self, AccountForm, session_cookie_name, set_cookie};
use crate::oauth::authorize::{validate, without_prompt_login};
use crate::oauth::federation::{self, FederationError, SignedIn, TRANSACTION_TTL, Then};
use crate::state::AppState;
use crate::templates::error_page;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/federation/{provider}/start", get(start))
        .route("/federation/{provider}/callback", get(callback))
        .route("/account/identities/link", post(link))
}

fn binding_cookie(state: &AppState) -> String {
    if state.config.is_https() {
        "__Host-authz_upstream".into()
    } else {
        "authz_upstream".into()
    }
}

fn pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// `request` (the pending authorization request) is checked before the browser leaves, so
/// a bad request is refused here, not after an upstream round trip.
async fn start(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    peer: super::Peer,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(address) = state.client_address(&headers, peer.0)
        && let Err(wait) = state.upstream_starts.reserve(&address.to_string()).await
    {
        return super::too_many(
            wait,
            error_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-ins",
                "Too many sign-ins were started from your address. Please wait a few minutes.",
            ),
        );
    }
    let params = pairs(query.as_deref());
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let request = get("request").unwrap_or_default();
    if !request.is_empty()
        && let Err(e) = validate(&state, &request).await
    {
        return refuse(e, &state);
    }
    // Where a sign-in without a request goes: the device page, or the account page.
    let then = if !request.is_empty() {
        Then::Authorize(request)
    } else if let Some(page) = get("then").and_then(|t| super::device::then_path(&t)) {
        Then::Page(page)
    } else {
        Then::Account
    };
    redirect_upstream(&state, &provider, &then).await
}

async fn redirect_upstream(state: &AppState, provider: &str, then: &Then) -> Response {
    match federation::start(state, provider, then, state.now()).await {
        Ok(started) => {
            let mut res = see_other(&started.redirect);
            res.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(
                    state,
                    &binding_cookie(state),
                    &started.binding,
                    TRANSACTION_TTL,
                ),
            );
            res
        }
        Err(e) => failure(state, provider, e),
    }
}

/// `POST /account/identities/link`: form fields `provider`, `csrf_token`. The signed-in user
/// signs in at the provider; the identity that comes back is linked to them.
async fn link(
    State(state): State<AppState>,
    headers: HeaderMap,
    AccountForm(form): AccountForm,
) -> Response {
    let now = state.now();
    match session::session(&state, &headers, now).await {
        Ok(Some(current)) => {
            let provider = form.get("provider").unwrap_or_default().to_owned();
            redirect_upstream(&state, &provider, &Then::Link(current.user_id)).await
        }
        Ok(None) => see_other(paths::ACCOUNT),
        Err(e) => refuse(e, &state),
    }
}

async fn callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let name = binding_cookie(&state);
    let binding = session::cookie(&headers, &name).map(str::to_owned);
    let now = state.now();
    let current = session::session(&state, &headers, now).await.ok().flatten();
    let finished = federation::finish(
        &state,
        &provider,
        &pairs(query.as_deref()),
        binding.as_deref(),
        current.as_ref().map(|s| s.user_id.as_str()),
        now,
    )
    .await;
    let mut res = match finished {
        // A link leaves the session as it is.
        Ok(SignedIn {
            then: Then::Link(_),
            ..
        }) => see_other(paths::ACCOUNT),
        Ok(signed_in) => signed_in_page(&state, signed_in, now).await,
        Err(e) => failure(&state, &provider, e),
    };
    // The transaction is spent either way.
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&state, &name, "", 0));
    res
}

/// A new session, and on to where the sign-in was going.
async fn signed_in_page(state: &AppState, signed_in: SignedIn, now: i64) -> Response {
    let session_id = match crate::oauth::session::start_limited(
        state,
        &signed_in.user_id,
        signed_in.scope_limit.as_deref(),
        now,
    )
    .await
    {
        Ok(id) => id,
        Err(e) => return refuse(e.into(), state),
    };
    let next = match signed_in.then {
        Then::Authorize(request) => {
            format!("{}?{}", paths::AUTHORIZE, without_prompt_login(&request))
        }
        Then::Page(page) => page,
        Then::Account | Then::Link(_) => paths::ACCOUNT.to_owned(),
    };
    let mut res = see_other(&next);
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            state,
            &session_cookie_name(state),
            &session_id,
            state.config.session_ttl,
        ),
    );
    res
}

fn failure(state: &AppState, provider: &str, e: FederationError) -> Response {
    let label = state
        .providers()
        .iter()
        .find(|u| u.name == provider)
        .map_or(provider, |u| u.label())
        .to_owned();
    let (status, title, message) = match &e {
        FederationError::UnknownProvider => (
            StatusCode::NOT_FOUND,
            "Unknown sign-in method",
            "There is no such sign-in method here.".to_owned(),
        ),
        FederationError::Upstream(u) => {
            tracing::warn!(provider, error = %u, "upstream sign-in failed");
            (
                StatusCode::BAD_GATEWAY,
                "Sign-in unavailable",
                format!("{label} could not be reached or answered in a way we cannot use. Try again later, or sign in another way."),
            )
        }
        FederationError::Expired => (
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "This sign-in expired or was started in another browser. Go back to the application and start again.".to_owned(),
        ),
        FederationError::Denied(m) | FederationError::NotAllowed(m) => {
            (StatusCode::FORBIDDEN, "Sign-in refused", m.clone())
        }
        FederationError::BadToken(why) => {
            tracing::warn!(provider, why, "upstream answer refused");
            (
                StatusCode::BAD_GATEWAY,
                "Sign-in refused",
                format!("The answer from {label} could not be verified, so it was not used."),
            )
        }
        FederationError::NoAccount => (
            StatusCode::FORBIDDEN,
            "No account",
            format!("No account here is linked to your {label} identity. Ask an administrator for access."),
        ),
        FederationError::EmailTaken => (
            StatusCode::CONFLICT,
            "Account exists",
            format!("An account with this email already exists here. To keep it safe it is not linked to your {label} identity automatically: sign in to that account another way, then link {label} on its account page."),
        ),
        FederationError::LinkedElsewhere => (
            StatusCode::CONFLICT,
            "Already linked",
            format!("This {label} identity is linked to another account here, so it was not linked to yours."),
        ),
        FederationError::Disabled => (
            StatusCode::FORBIDDEN,
            "Account disabled",
            "This account is disabled.".to_owned(),
        ),
        FederationError::Store(err) => {
            tracing::error!(error = %err, "upstream sign-in could not be stored");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "Please try again in a moment.".to_owned(),
            )
        }
    };
    error_page(status, title, message)
}
