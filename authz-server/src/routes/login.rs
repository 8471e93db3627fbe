//! `POST /login` and `POST /logout`: the sign-in form (for an authorization request, or for
//! the account page) and signing out. `oauth::sign_in` decides; this maps its answer to pages.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use oauth_protocol::paths;

use super::Peer;
use super::pages::{
    account_login_page, login_page, refuse, see_other, with_cookie, with_form_target,
};
use super::session::AccountForm;
use super::session::{self, login_csrf, login_csrf_ok, session_cookie_name, set_cookie};
use crate::extract::PageForm;
use crate::oauth::authorize::{AuthorizeError, validate, without_prompt_login};
use crate::oauth::sign_in::{SignInError, sign_in};
use crate::state::AppState;
use crate::templates::{error_page, render};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::LOGIN, post(login))
        .route(paths::LOGOUT, post(logout))
}

/// Form fields `username`, `password`, `csrf_token`, `request` (the pending authorization
/// request; empty when signing in to manage the account).
#[tracing::instrument(skip_all)]
async fn login(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    PageForm(form): PageForm,
) -> Response {
    if !state.config.password_login {
        return error_page(
            StatusCode::FORBIDDEN,
            "Password sign-in is off",
            "Sign in with one of the providers on the sign-in page.",
        );
    }
    let query = form.get("request").unwrap_or_default().to_owned();
    let req = if query.is_empty() {
        None
    } else {
        match validate(&state, &query).await {
            Ok(r) => Some(r),
            Err(e) => return refuse(e, &state),
        }
    };
    let client_id = req.as_ref().map(|r| r.client.client_id.clone());
    let username = form.get("username").unwrap_or_default().to_owned();
    // The one other place a sign-in may continue to: the device page (never a free URL).
    let then = form.get("then").and_then(super::device::then_path);
    let again = |error: &str, status: StatusCode| {
        let (csrf, cookie) = login_csrf(&state, &headers);
        let page = match &req {
            Some(req) => login_page(&state, req, csrf, &query, &username, Some(error)),
            None => {
                let mut page = account_login_page(&state, csrf, &username, Some(error));
                page.then = then.clone().unwrap_or_default();
                page.providers = super::pages::provider_links(&state, "", &page.then);
                page
            }
        };
        let res = with_cookie(render(status, &page), cookie);
        match &req {
            Some(req) => with_form_target(res, &req.redirect_uri),
            None => res,
        }
    };
    if !login_csrf_ok(&state, &headers, form.get("csrf_token")) {
        let reason = super::session::insecure_origin_hint(&state, &headers)
            .unwrap_or_else(|| "This form expired. Please sign in again.".into());
        return again(&reason, StatusCode::FORBIDDEN);
    }
    let password = form.get("password").unwrap_or_default().to_owned();
    let address = state.client_address(&headers, peer.0);
    let user_id = match sign_in(&state, &username, password, address, client_id.as_deref()).await {
        Ok(id) => id,
        Err(SignInError::Throttled(wait)) => {
            let window = crate::throttle::human(state.login_by_user.window());
            return super::too_many(
                wait,
                again(
                    &format!(
                        "Too many failed sign-in attempts. Please wait {window} and try again."
                    ),
                    StatusCode::TOO_MANY_REQUESTS,
                ),
            );
        }
        Err(SignInError::Busy) => {
            let mut res = again(
                "The server is busy. Please try again in a moment.",
                StatusCode::SERVICE_UNAVAILABLE,
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            return res;
        }
        Err(SignInError::Wrong) => return again("Wrong username or password.", StatusCode::OK),
        Err(SignInError::Store(e)) => return refuse(AuthorizeError::from(e), &state),
    };
    let session_id = match crate::oauth::session::start(&state, &user_id, state.now()).await {
        Ok(id) => id,
        Err(e) => return refuse(AuthorizeError::from(e), &state),
    };
    let next = match &req {
        Some(_) => format!("{}?{}", paths::AUTHORIZE, without_prompt_login(&query)),
        None => then.unwrap_or_else(|| paths::ACCOUNT.to_owned()),
    };
    let mut res = see_other(&next);
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            &state,
            &session_cookie_name(&state),
            &session_id,
            state.config.session_ttl,
        ),
    );
    res
}

/// Form field `csrf_token`.
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    AccountForm(_): AccountForm,
) -> Response {
    let name = session_cookie_name(&state);
    if let Some(id) = session::cookie(&headers, &name)
        && let Err(e) = crate::oauth::session::end(&state, id).await
    {
        return refuse(AuthorizeError::from(e), &state);
    }
    let mut res = error_page(StatusCode::OK, "Signed out", "You have been signed out.");
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&state, &name, "", 0));
    res
}
