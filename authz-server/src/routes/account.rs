//! The signed-in user's page of authorized applications, where any of them can be revoked.
//! Revocation is immediate here; resource servers notice within their cache TTL.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use oauth_protocol::form::Params;

use super::authorize::account_login_page;
use super::web::{self, ACCOUNT_FORMS, login_csrf, session_csrf, session_csrf_ok};
use crate::state::{AppState, now};
use crate::templates::{GrantLine, GrantsPage, error_page, render};

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "account page failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Please try again.",
    )
}

fn ago(now: i64, at: i64) -> String {
    match now - at {
        s if s < 60 => "just now".into(),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    }
}

/// `GET /account`.
pub async fn account(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let now = now();
    let session = match web::session(&state, &headers, now).await {
        Ok(s) => s,
        Err(e) => return internal(e),
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
    let (user, grants) = match (
        state.store.user_by_id(&session.user_id).await,
        state.store.user_grants(&session.user_id).await,
    ) {
        (Ok(Some(u)), Ok(g)) => (u, g),
        (Err(e), _) | (_, Err(e)) => return internal(e),
        (Ok(None), _) => return internal("session user vanished"),
    };
    let mut lines = Vec::with_capacity(grants.len());
    for g in grants {
        let client_name = match state.store.client(&g.client_id).await {
            Ok(Some(row)) => crate::clients::Client::from_row(&row).map(|c| c.name()),
            _ => None,
        };
        let resource_name = state
            .resource_server(&g.resource)
            .map(|rs| rs.display_name().to_owned())
            .unwrap_or_else(|| g.resource.clone());
        lines.push(GrantLine {
            client_name: client_name.unwrap_or_else(|| g.client_id.clone()),
            scopes: g
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            resource: g.resource,
            resource_name,
            last_used: ago(now, g.last_used_at),
            id: g.id,
        });
    }
    let page = GrantsPage {
        username: user.display_name.unwrap_or(user.username),
        csrf_token: csrf,
        grants: lines,
    };
    render(StatusCode::OK, &page)
}

/// `POST /account/grants/revoke`: form fields `grant_id`, `csrf_token`.
pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::parse(&body);
    if !session_csrf_ok(&state, &headers, ACCOUNT_FORMS, form.get("csrf_token")) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "Reload the page and try again.",
        );
    }
    let now = now();
    let session = match web::session(&state, &headers, now).await {
        Ok(Some(s)) => s,
        Ok(None) => return super::authorize::redirect_to(oauth_protocol::paths::ACCOUNT),
        Err(e) => return internal(e),
    };
    let grant_id = form.get("grant_id").unwrap_or_default();
    match state.store.grant(grant_id).await {
        // Someone else's grant looks like a missing one.
        Ok(Some(g)) if g.user_id.as_deref() == Some(session.user_id.as_str()) => {
            if let Err(e) = state.store.revoke_grant_and_consent(grant_id, now).await {
                return internal(e);
            }
            tracing::info!(client_id = %g.client_id, "grant revoked by its user");
            state
                .audit(
                    "grant_revoked",
                    Some(&session.user_id),
                    Some(&g.client_id),
                    "user",
                )
                .await;
            super::authorize::redirect_to(oauth_protocol::paths::ACCOUNT)
        }
        Ok(_) => error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "That authorization does not exist.",
        )
        .into_response(),
        Err(e) => internal(e),
    }
}
