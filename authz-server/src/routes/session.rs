//! The browser's side of a session: cookies (with the `__Host-` prefix under https), the
//! CSRF tokens of the forms, and the same-origin check of form posts.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oauth_protocol::form::Params;
use oauth_protocol::secret::constant_time_eq;

use crate::extract::{PageForm, PageFormRejection};
use crate::ids::new_secret;
use crate::oauth::authorize::AuthorizeError;
use crate::oauth::session::SessionRow;
use crate::state::AppState;
use crate::templates::error_page;

const SESSION_COOKIE: &str = "authz_session";
const CSRF_COOKIE: &str = "authz_csrf";

/// Cookie names get the `__Host-` prefix under an https issuer: the browser then accepts
/// them only with `Secure`, `Path=/` and no `Domain`, so no sibling sub-domain or plain-http
/// page on the same host can plant one.
fn cookie_name(state: &AppState, base: &'static str) -> std::borrow::Cow<'static, str> {
    if state.config.is_https() {
        format!("__Host-{base}").into()
    } else {
        base.into()
    }
}

pub fn session_cookie_name(state: &AppState) -> std::borrow::Cow<'static, str> {
    cookie_name(state, SESSION_COOKIE)
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

/// Why a form's cookie may be missing, when the cause is visible from the request: under
/// an https issuer the cookies are `Secure`, so a browser that opened the page over plain
/// http on this machine (`http://127.0.0.1:8001`) never sends them back.
pub fn insecure_origin_hint(state: &AppState, headers: &HeaderMap) -> Option<String> {
    if !state.config.is_https() {
        return None;
    }
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let name = host
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(name, _)| name);
    let loopback = matches!(name, "localhost" | "[::1]")
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback.then(|| {
        format!(
            "This page was opened at http://{host}, but the server's address is {}. Its \
             cookies are Secure (the issuer is https), so the browser does not return them \
             over plain http and the form cannot be checked. Open {} instead.",
            state.config.issuer,
            state.config.endpoint(oauth_protocol::paths::ACCOUNT)
        )
    })
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

/// CSRF tokens are never a value an attacker could plant. A form shown before sign-in
/// carries `HMAC(pre-session cookie, "login")`; a form shown to a signed-in user carries
/// `HMAC(session id, purpose)`, and the consent form's purpose includes the exact request it
/// shows, so its token approves that request and no other.
fn mac(key: &str, purpose: &str) -> String {
    crate::ids::derive_token(key.as_bytes(), purpose)
}

/// The sign-in form's token, and a `Set-Cookie` when this browser needs a pre-session cookie.
pub fn login_csrf(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    let name = cookie_name(state, CSRF_COOKIE);
    match cookie(headers, &name) {
        Some(v) if v.len() >= 32 => (mac(v, "login"), None),
        _ => {
            let value = new_secret();
            let header = set_cookie(state, &name, &value, state.config.session_ttl);
            (mac(&value, "login"), Some(header))
        }
    }
}

pub fn login_csrf_ok(state: &AppState, headers: &HeaderMap, submitted: Option<&str>) -> bool {
    if !same_origin(state, headers) {
        return false;
    }
    match (cookie(headers, &cookie_name(state, CSRF_COOKIE)), submitted) {
        (Some(c), Some(s)) if c.len() >= 32 => {
            constant_time_eq(mac(c, "login").as_bytes(), s.as_bytes())
        }
        _ => false,
    }
}

/// The token for a form shown to the signed-in user of this browser.
pub fn session_csrf(state: &AppState, headers: &HeaderMap, purpose: &str) -> Option<String> {
    cookie(headers, &session_cookie_name(state)).map(|id| mac(id, purpose))
}

pub fn session_csrf_ok(
    state: &AppState,
    headers: &HeaderMap,
    purpose: &str,
    submitted: Option<&str>,
) -> bool {
    if !same_origin(state, headers) {
        return false;
    }
    match (session_csrf(state, headers, purpose), submitted) {
        (Some(want), Some(got)) => constant_time_eq(want.as_bytes(), got.as_bytes()),
        _ => false,
    }
}

/// A form post came from one of our own pages: browsers say where a request comes from
/// (`Sec-Fetch-Site`, `Origin`), and anything cross-origin is refused even when it carries a
/// valid-looking token (a sibling origin could have planted the pre-session cookie).
pub fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    let site_ok = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v == "same-origin" || v == "none");
    let origin_ok = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        // Our pages send `Referrer-Policy: no-referrer`, under which browsers send
        // `Origin: null` even for same-origin form posts; `Sec-Fetch-Site` decides then.
        .is_none_or(|o| {
            o == "null"
                || url::Url::parse(&state.config.issuer)
                    .is_ok_and(|u| u.origin().ascii_serialization() == o)
        });
    site_ok && origin_ok
}

/// The purpose of a consent form's token: the request it shows.
pub fn consent_purpose(request: &str) -> String {
    format!("consent\n{request}")
}

/// The purpose of the account page's forms (revoke, sign out).
pub const ACCOUNT_FORMS: &str = "account";

/// The signed-in session of this browser, if any.
pub async fn session(
    state: &AppState,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<SessionRow>, AuthorizeError> {
    Ok(
        crate::oauth::session::current(state, cookie(headers, &session_cookie_name(state)), now)
            .await?,
    )
}

/// A form of the signed-in user's pages (sign out, revoke an application): a `PageForm`
/// whose CSRF token is the one bound to this browser's session, posted from our own origin.
pub struct AccountForm(pub Params);

pub struct Forbidden;

impl IntoResponse for Forbidden {
    fn into_response(self) -> Response {
        error_page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "Reload the page and try again.",
        )
    }
}

pub enum AccountFormRejection {
    Form(PageFormRejection),
    Csrf(Forbidden),
}

impl IntoResponse for AccountFormRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Form(r) => r.into_response(),
            Self::Csrf(r) => r.into_response(),
        }
    }
}

impl FromRequest<AppState> for AccountForm {
    type Rejection = AccountFormRejection;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let PageForm(params) = PageForm::from_request(req, state)
            .await
            .map_err(AccountFormRejection::Form)?;
        if !session_csrf_ok(state, &headers, ACCOUNT_FORMS, params.get("csrf_token")) {
            return Err(AccountFormRejection::Csrf(Forbidden));
        }
        Ok(Self(params))
    }
}
