//! What the HTML pages share: the stylesheet, redirects after a form post, cookies on a
//! response, the per-page CSP, and the login page and error responses of the authorization
//! flow.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use oauth_protocol::paths;

use crate::oauth::authorize::{AuthRequest, AuthorizeError, redirect_host, with_query};
use crate::state::AppState;
use crate::templates::{LoginPage, ProviderLink, error_page, interstitial};

pub fn router() -> Router<AppState> {
    Router::new().route(paths::STYLESHEET, get(stylesheet))
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

/// A 303 to `location` (after a form post).
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "Invalid redirect",
            "The redirect address is not valid.",
        ),
    }
}

pub fn with_cookie(mut res: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

/// A page whose form may end in a redirect to the client: `form-action` must allow the
/// client's address too, since browsers check it against every redirect a form leads to.
pub fn with_form_target(mut res: Response, redirect_uri: &str) -> Response {
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        super::page_csp(Some(redirect_uri)),
    );
    res
}

/// The response for a refused authorization request: an error page, a redirect back to
/// the client, or, for an unvetted client, a page with a link to it.
pub fn refuse(e: AuthorizeError, state: &AppState) -> Response {
    {
        match e {
            AuthorizeError::Page { title, message } => {
                error_page(StatusCode::BAD_REQUEST, title, message)
            }
            AuthorizeError::Redirect {
                redirect_uri,
                state: st,
                code,
                description,
                trusted,
            } => {
                let mut params = vec![
                    ("error", code.as_str()),
                    ("error_description", description.as_str()),
                ];
                if let Some(s) = &st {
                    params.push(("state", s));
                }
                params.push(("iss", &state.config.issuer));
                let target = with_query(&redirect_uri, &params);
                if trusted {
                    see_other(&target)
                } else {
                    interstitial(
                        format!("{description} ({})", code.as_str()),
                        target,
                        redirect_host(&redirect_uri),
                    )
                }
            }
            AuthorizeError::Internal => error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The server could not complete this request. Please try again.",
            ),
            AuthorizeError::Unavailable => crate::templates::unavailable_page(),
        }
    }
}

/// "Continue with …" links for the login page: each starts an upstream sign-in that comes
/// back to `request` (or to `then`, or to the account page).
pub fn provider_links(state: &AppState, request: &str, then: &str) -> Vec<ProviderLink> {
    state
        .providers()
        .iter()
        .map(|up| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            if !request.is_empty() {
                q.append_pair("request", request);
            }
            if !then.is_empty() {
                q.append_pair("then", then);
            }
            let q = q.finish();
            ProviderLink {
                href: format!(
                    "/federation/{}/start{}{q}",
                    up.name,
                    if q.is_empty() { "" } else { "?" }
                ),
                label: up.label().to_owned(),
            }
        })
        .collect()
}

pub fn login_page(
    state: &AppState,
    req: &AuthRequest,
    csrf: String,
    query: &str,
    username: &str,
    error: Option<&str>,
) -> LoginPage {
    LoginPage {
        client_name: req.client.name(),
        redirect_host: Some(req.redirect_host()),
        error: error.map(str::to_owned),
        csrf_token: csrf,
        request: query.to_owned(),
        username: username.to_owned(),
        then: String::new(),
        providers: provider_links(state, query, ""),
        password_form: state.config.password_login,
    }
}

/// The sign-in page for managing one's own account (no authorization request).
pub fn account_login_page(
    state: &AppState,
    csrf: String,
    username: &str,
    error: Option<&str>,
) -> LoginPage {
    LoginPage {
        client_name: String::new(),
        redirect_host: None,
        error: error.map(str::to_owned),
        csrf_token: csrf,
        request: String::new(),
        username: username.to_owned(),
        then: String::new(),
        providers: provider_links(state, "", ""),
        password_form: state.config.password_login,
    }
}
