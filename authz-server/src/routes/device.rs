//! RFC 8628: `POST /device_authorization` for devices, and the `/device` page where a
//! signed-in person enters the code and approves or denies what it names. The decision
//! form's token is bound to the session and to the code shown.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use oauth_protocol::device::{display, normalize};
use oauth_protocol::{Scope, paths};

use super::Peer;
use super::pages::{account_login_page, see_other};
use super::session::{self, login_csrf, session_csrf, session_csrf_ok};
use crate::error::{OAuthError, no_store_json};
use crate::extract::{OAuthForm, PageForm};
use crate::oauth;
use crate::oauth::device::Pending;
use crate::state::AppState;
use crate::templates::{DeviceConfirm, DevicePage, ScopeLine, describe_scope, error_page, render};

pub fn router() -> Router<AppState> {
    Router::new().route(paths::DEVICE, axum::routing::get(page).post(decide))
}

/// The API half, mounted with the other endpoints (CORS, JSON errors).
pub fn api() -> Router<AppState> {
    Router::new().route(paths::DEVICE_AUTHORIZATION, post(device_authorization))
}

/// RFC 8628 §3.1: `client_id` (or client authentication), `scope`, `resource`.
#[tracing::instrument(skip_all, fields(client_id))]
async fn device_authorization(
    State(state): State<AppState>,
    peer: super::Peer,
    headers: axum::http::HeaderMap,
    form: OAuthForm,
) -> Result<Response, OAuthError> {
    super::limit_address(&state, &headers, &peer).await?;
    let OAuthForm {
        params,
        credentials,
    } = form;
    let client = oauth::calling_client(&state, credentials).await?;
    tracing::Span::current().record("client_id", client.client_id.as_str());
    super::limit_client(&state, &client).await?;
    let scope = match params.get("scope") {
        Some(s) => Scope::parse(s)
            .map_err(|e| OAuthError::new(oauth_protocol::ErrorCode::InvalidScope, e.to_string()))?,
        None => Scope::default(),
    };
    let started =
        oauth::device::start(&state, &client, scope, params.get("resource"), state.now()).await?;
    Ok(no_store_json(StatusCode::OK, &started))
}

/// Where a sign-in started on `/device` continues: the page, with the code if it was a
/// well-formed one. Nothing else, so the field cannot send a browser elsewhere.
pub fn return_path(typed: Option<&str>) -> String {
    match typed.and_then(normalize) {
        Some(code) => format!("{}?user_code={}", paths::DEVICE, display(&code)),
        None => paths::DEVICE.to_owned(),
    }
}

/// A `then` field, accepted only when it is the device page (rebuilt, never echoed).
pub fn then_path(then: &str) -> Option<String> {
    if then != paths::DEVICE && !then.starts_with("/device?") {
        return None;
    }
    let query = then.split_once('?').map_or("", |(_, q)| q);
    let code = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "user_code")
        .map(|(_, v)| v.into_owned());
    Some(return_path(code.as_deref()))
}

#[derive(serde::Deserialize)]
struct CodeQuery {
    user_code: Option<String>,
}

/// `GET /device[?user_code=…]`: sign in first; then the code entry form, or the request the
/// code names with Allow and Deny.
async fn page(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Query(q): Query<CodeQuery>,
) -> Response {
    let now = state.now();
    let typed = q.user_code.unwrap_or_default();
    let current = match session::session(&state, &headers, now).await {
        Ok(s) => s,
        Err(_) => return unavailable(),
    };
    let Some(current) = current else {
        let (csrf, cookie) = login_csrf(&state, &headers);
        let mut login = account_login_page(&state, csrf, "", None);
        login.then = return_path(Some(&typed));
        login.providers = super::pages::provider_links(&state, "", &login.then);
        let mut res = render(StatusCode::OK, &login);
        if let Some(c) = cookie {
            res.headers_mut().append(header::SET_COOKIE, c);
        }
        return res;
    };
    let username = match state.store.user_by_id(&current.user_id).await {
        Ok(Some(u)) => u.display_name.unwrap_or(u.username),
        _ => return unavailable(),
    };
    let entry = |error: Option<&str>, status: StatusCode| {
        render(
            status,
            &DevicePage {
                username: username.clone(),
                csrf_token: String::new(),
                confirm: None,
                typed: typed.clone(),
                error: error.map(str::to_owned),
            },
        )
    };
    if typed.trim().is_empty() {
        return entry(None, StatusCode::OK);
    }
    // Every look-up counts against the person and the address until it finds a request.
    let address = state
        .client_address(&headers, peer.0)
        .map(|a| format!("address {a}"));
    let mut reserved = Vec::new();
    for key in std::iter::once(format!("user {}", current.user_id)).chain(address) {
        match state.device_codes.reserve(&key).await {
            Ok(r) => reserved.push(r),
            Err(wait) => {
                for r in reserved {
                    r.give_back();
                }
                let window = crate::throttle::human(state.device_codes.window());
                return super::too_many(
                    wait,
                    entry(
                        Some(&format!(
                            "Too many wrong codes. Please wait {window} and try again."
                        )),
                        StatusCode::TOO_MANY_REQUESTS,
                    ),
                );
            }
        }
    }
    let pending = match oauth::device::pending(&state, &typed, now).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return entry(
                Some("That code is not valid, or it has expired. Check the code on your device."),
                StatusCode::OK,
            );
        }
        Err(_) => return unavailable(),
    };
    for r in reserved {
        r.give_back();
    }
    let Some(csrf) = session_csrf(&state, &headers, &purpose(&pending.user_code)) else {
        return unavailable();
    };
    render(
        StatusCode::OK,
        &DevicePage {
            username,
            csrf_token: csrf,
            confirm: Some(confirmation(&state, &pending)),
            typed: String::new(),
            error: None,
        },
    )
}

fn confirmation(state: &AppState, pending: &Pending) -> DeviceConfirm {
    let resource_name = state
        .resource_server(&pending.row.resource)
        .and_then(|rs| rs.name)
        .unwrap_or_else(|| pending.row.resource.clone());
    DeviceConfirm {
        client_name: pending.client.name(),
        user_code: display(&pending.user_code),
        resource_name,
        resource: pending.row.resource.clone(),
        scopes: pending
            .row
            .scope
            .split_whitespace()
            .map(|s| ScopeLine {
                name: s.to_owned(),
                description: describe_scope(s),
            })
            .collect(),
    }
}

/// The CSRF purpose of a decision form: the code it decides.
fn purpose(user_code: &str) -> String {
    format!("device\n{user_code}")
}

/// `POST /device`: `user_code`, `decision` (`approve` or `deny`), `csrf_token`.
#[tracing::instrument(skip_all)]
async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm,
) -> Response {
    let now = state.now();
    let Ok(Some(current)) = session::session(&state, &headers, now).await else {
        return see_other(&return_path(form.get("user_code")));
    };
    let Some(code) = form.get("user_code").and_then(normalize) else {
        return error_page(StatusCode::BAD_REQUEST, "Invalid request", "No code given.");
    };
    if !session_csrf_ok(&state, &headers, &purpose(&code), form.get("csrf_token")) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "Reload the page and try again.",
        );
    }
    let approved = match form.get("decision") {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "Choose Allow or Deny.",
            );
        }
    };
    let pending = match oauth::device::pending(&state, &code, now).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return error_page(
                StatusCode::OK,
                "Code expired",
                "This code is no longer valid. Start again on your device.",
            );
        }
        Err(_) => return unavailable(),
    };
    match oauth::device::decide(&state, &pending, &current, approved, now).await {
        Ok(true) if approved => error_page(
            StatusCode::OK,
            "Device connected",
            format!(
                "{} can now use your account. You can return to your device.",
                pending.client.name()
            ),
        ),
        Ok(true) => error_page(
            StatusCode::OK,
            "Request denied",
            "The device was not given access. You can close this page.",
        ),
        Ok(false) => error_page(
            StatusCode::OK,
            "Code expired",
            "This code is no longer valid. Start again on your device.",
        ),
        Err(_) => unavailable(),
    }
}

fn unavailable() -> Response {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "Please try again in a moment.",
    )
}
