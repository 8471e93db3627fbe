//! The signed-in user's page of authorized applications, where any of them can be revoked.
//! Revocation is immediate here; resource servers notice within their cache TTL.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use oauth_protocol::paths;

use super::pages::{account_login_page, see_other};
use super::session::AccountForm;
use super::session::{self as web, ACCOUNT_FORMS, login_csrf, session_csrf};
use crate::state::AppState;
use crate::templates::{GrantLine, GrantsPage, ProviderLine, error_page, render};

fn internal<E: std::fmt::Display + 'static>(e: E) -> Response {
    if crate::error::database_unreachable(&e) {
        tracing::warn!(error = %e, "database unreachable");
        return crate::templates::unavailable_page();
    }
    tracing::error!(error = %e, "account page failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Please try again.",
    )
}

fn session_failed(e: crate::oauth::authorize::AuthorizeError) -> Response {
    match e {
        crate::oauth::authorize::AuthorizeError::Unavailable => {
            crate::templates::unavailable_page()
        }
        _ => internal("the session could not be looked up"),
    }
}

fn ago(now: i64, at: i64) -> String {
    match now - at {
        s if s < 60 => "just now".into(),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::ACCOUNT, get(account))
        .route(paths::ACCOUNT_REVOKE, post(revoke))
        .route("/account/identities/unlink", post(unlink))
}

/// `GET /account`.
async fn account(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let now = state.now();
    let session = match web::session(&state, &headers, now).await {
        Ok(s) => s,
        Err(e) => return session_failed(e),
    };
    let Some(session) = session else {
        let (csrf, cookie) = login_csrf(&state, &headers);
        let mut res = render(StatusCode::OK, &account_login_page(&state, csrf, "", None));
        if let Some(c) = cookie {
            res.headers_mut().append(axum::http::header::SET_COOKIE, c);
        }
        return res;
    };
    let Some(csrf) = session_csrf(&state, &headers, ACCOUNT_FORMS) else {
        return internal("a session without its cookie");
    };
    let (username, apps) =
        match crate::oauth::account::authorized_apps(&state, &session.user_id).await {
            Ok(Some(found)) => found,
            Ok(None) => return internal("session user vanished"),
            Err(e) => return internal(e),
        };
    let lines = apps
        .into_iter()
        .map(|a| GrantLine {
            id: a.grant_id,
            client_name: a.client_name,
            scopes: a.scopes,
            resource: a.resource,
            resource_name: a.resource_name,
            last_used: ago(now, a.last_used_at),
        })
        .collect();
    let identities = match crate::oauth::account::linked_identities(&state, &session.user_id).await
    {
        Ok(list) => list,
        Err(e) => return internal(e),
    };
    let providers = state
        .providers()
        .iter()
        .filter(|u| !identities.iter().any(|i| i.provider == u.name))
        .map(|u| ProviderLine {
            name: u.name.clone(),
            label: u.label().to_owned(),
        })
        .collect();
    let page = GrantsPage {
        username,
        csrf_token: csrf,
        grants: lines,
        identities,
        providers,
    };
    render(StatusCode::OK, &page)
}

/// `POST /account/grants/revoke`: form fields `grant_id`, `csrf_token`.
async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    AccountForm(form): AccountForm,
) -> Response {
    let now = state.now();
    let session = match web::session(&state, &headers, now).await {
        Ok(Some(s)) => s,
        Ok(None) => return see_other(paths::ACCOUNT),
        Err(e) => return session_failed(e),
    };
    let grant_id = form.get("grant_id").unwrap_or_default();
    match crate::oauth::account::revoke_own(&state, &session.user_id, grant_id, now).await {
        Ok(true) => see_other(paths::ACCOUNT),
        Ok(false) => error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "That authorization does not exist.",
        ),
        Err(e) => internal(e),
    }
}

/// `POST /account/identities/unlink`: form fields `provider`, `subject`, `csrf_token`.
async fn unlink(
    State(state): State<AppState>,
    headers: HeaderMap,
    AccountForm(form): AccountForm,
) -> Response {
    use crate::oauth::account::Unlinked;
    let now = state.now();
    let session = match web::session(&state, &headers, now).await {
        Ok(Some(s)) => s,
        Ok(None) => return see_other(paths::ACCOUNT),
        Err(e) => return session_failed(e),
    };
    let (provider, subject) = (
        form.get("provider").unwrap_or_default(),
        form.get("subject").unwrap_or_default(),
    );
    match crate::oauth::account::unlink_own(&state, &session.user_id, provider, subject).await {
        Ok(Unlinked::Done) => see_other(paths::ACCOUNT),
        Ok(Unlinked::NotFound) => error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "That sign-in method is not linked to your account.",
        ),
        Ok(Unlinked::LastWay) => error_page(
            StatusCode::CONFLICT,
            "Cannot unlink",
            "This is the only way you can sign in to this account, so it stays linked.",
        ),
        Err(e) => internal(e),
    }
}
