//! `GET /authorize` (RFC 6749 §4.1.1): validate the request, then sign in, ask for consent
//! or go back to the client, as `oauth::authorize::decide` says.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use oauth_protocol::paths;

use super::pages::{login_page, refuse, see_other, with_cookie, with_form_target};
use super::session::{self, consent_purpose, login_csrf, session_csrf};
use crate::oauth::authorize::{AuthRequest, AuthorizeError, validate};
use crate::oauth::consent::{ConsentView, Next, decide, within_limit};
use crate::state::AppState;
use crate::templates::{ConsentPage, ScopeLine, describe_scope, render};

pub fn router() -> Router<AppState> {
    Router::new().route(paths::AUTHORIZE, get(authorize))
}

async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    match show(&state, &headers, &query).await {
        Ok(res) => res,
        Err(e) => refuse(e, &state),
    }
}

async fn show(
    state: &AppState,
    headers: &HeaderMap,
    query: &str,
) -> Result<Response, AuthorizeError> {
    let req = validate(state, query).await?;
    let now = state.now();
    let current = session::session(state, headers, now).await?;
    let req = within_limit(req, current.as_ref())?;
    Ok(match decide(state, &req, current.as_ref(), now).await? {
        Next::Redirect(url) => see_other(&url),
        Next::SignIn => {
            let (csrf, cookie) = login_csrf(state, headers);
            let page = login_page(state, &req, csrf, query, "", None);
            with_form_target(
                with_cookie(render(StatusCode::OK, &page), cookie),
                &req.redirect_uri,
            )
        }
        Next::Consent(view) => {
            let csrf = session_csrf(state, headers, &consent_purpose(query))
                .ok_or(AuthorizeError::Internal)?;
            let page = consent_page(&req, view, csrf, query);
            with_form_target(render(StatusCode::OK, &page), &req.redirect_uri)
        }
    })
}

fn consent_page(req: &AuthRequest, view: ConsentView, csrf: String, query: &str) -> ConsentPage {
    ConsentPage {
        client_name: req.client.name(),
        redirect_host: req.redirect_host(),
        redirect_uri: req.redirect_uri.clone(),
        username: view.user_name,
        resource_name: req.resource.display_name().to_owned(),
        resource: req.resource.resource.clone(),
        csrf_token: csrf,
        request: query.to_owned(),
        scopes: req
            .scope
            .iter()
            .map(|s| ScopeLine {
                name: s.to_owned(),
                description: describe_scope(s),
            })
            .collect(),
        client_uri: req.client.metadata.client_uri.clone(),
        is_metadata_document: req.client.from_document,
        document_host: view.document_host,
        unverified: !req.client.is_vetted(),
        localhost_only: view.localhost_only,
    }
}
