//! Browser-facing pieces: the login session and CSRF cookies, the stylesheet, and the
//! routes of the HTML pages.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use oauth_protocol::paths;
use oauth_protocol::secret::{constant_time_eq, digest};

use crate::crypto::new_secret;
use crate::state::AppState;
use crate::store::SessionRow;

pub const SESSION_COOKIE: &str = "authz_session";
pub const CSRF_COOKIE: &str = "authz_csrf";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::AUTHORIZE, get(super::authorize::authorize))
        .route(paths::LOGIN, post(super::authorize::login))
        .route(paths::CONSENT, post(super::authorize::consent))
        .route(paths::LOGOUT, post(super::authorize::logout))
        .route(paths::STYLESHEET, get(stylesheet))
        .route(paths::ACCOUNT, get(super::account::account))
        .route(paths::ACCOUNT_REVOKE, post(super::account::revoke))
}

async fn stylesheet() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        include_str!("../../../assets/style.css"),
    )
        .into_response()
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for our cookies: HttpOnly, SameSite=Lax, Secure under https.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.config.is_https() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .expect("cookie values are base64url")
}

/// The CSRF token of this browser, and a `Set-Cookie` when it needs a new one.
/// Double-submit: the form carries the value, the cookie proves it came from our page.
pub fn csrf_token(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookie(headers, CSRF_COOKIE) {
        Some(v) if v.len() >= 32 => (v.to_owned(), None),
        _ => {
            let token = new_secret();
            let header = set_cookie(state, CSRF_COOKIE, &token, state.config.session_ttl);
            (token, Some(header))
        }
    }
}

pub fn csrf_ok(headers: &HeaderMap, submitted: Option<&str>) -> bool {
    match (cookie(headers, CSRF_COOKIE), submitted) {
        (Some(c), Some(s)) => c.len() >= 32 && constant_time_eq(c.as_bytes(), s.as_bytes()),
        _ => false,
    }
}

pub async fn session(
    state: &AppState,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<SessionRow>, crate::store::StoreError> {
    match cookie(headers, SESSION_COOKIE) {
        Some(id) => state.store.session(&digest(id), now).await,
        None => Ok(None),
    }
}
