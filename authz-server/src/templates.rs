//! One askama struct per page. Auto-escaping is on for every value.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub client_name: String,
    /// Where the user goes back to; none on the account page's own sign-in.
    pub redirect_host: Option<String>,
    pub error: Option<String>,
    pub csrf_token: String,
    pub request: String,
    pub username: String,
    /// Where a sign-in without an authorization request continues (`/device?…`); empty
    /// for the account page.
    pub then: String,
    /// "Continue with …" for each upstream provider.
    pub providers: Vec<ProviderLink>,
    /// Whether username and password are offered.
    pub password_form: bool,
}

pub struct ProviderLink {
    pub href: String,
    pub label: String,
}

pub struct ScopeLine {
    pub name: String,
    pub description: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    pub client_name: String,
    pub redirect_host: String,
    pub redirect_uri: String,
    pub username: String,
    pub resource_name: String,
    pub resource: String,
    pub csrf_token: String,
    pub request: String,
    pub scopes: Vec<ScopeLine>,
    pub client_uri: Option<String>,
    pub is_metadata_document: bool,
    /// The host serving the metadata document (for document clients).
    pub document_host: String,
    /// Registered by itself (RFC 7591 without the initial access token, or a document).
    pub unverified: bool,
    pub localhost_only: bool,
}

/// The confirmation part of the device page: what the person is about to allow.
pub struct DeviceConfirm {
    pub client_name: String,
    /// As the device shows it, `XXXX-XXXX`.
    pub user_code: String,
    pub resource_name: String,
    pub resource: String,
    pub scopes: Vec<ScopeLine>,
}

/// `/device` (RFC 8628 §3.3): enter a code, or confirm the request it names.
#[derive(Template)]
#[template(path = "device.html")]
pub struct DevicePage {
    pub username: String,
    pub csrf_token: String,
    pub confirm: Option<DeviceConfirm>,
    pub typed: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub title: String,
    pub message: String,
    /// A link the person may follow (an error response to an unvetted client).
    pub continue_to: Option<String>,
    pub continue_host: String,
}

pub struct GrantLine {
    pub id: String,
    pub client_name: String,
    pub scopes: Vec<String>,
    pub resource: String,
    pub resource_name: String,
    pub last_used: String,
}

#[derive(Template)]
#[template(path = "grants.html")]
pub struct GrantsPage {
    pub username: String,
    pub csrf_token: String,
    pub grants: Vec<GrantLine>,
    /// Identities at upstream providers linked to this account.
    pub identities: Vec<crate::oauth::account::LinkedLine>,
    /// Providers this account has no identity at, to link one.
    pub providers: Vec<ProviderLine>,
}

pub struct ProviderLine {
    pub name: String,
    pub label: String,
}

/// Renders a page with a status; pages never go into shared caches.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => {
            let mut res = (status, Html(html)).into_response();
            res.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            res
        }
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// 503 with `Retry-After`: the database cannot be reached just now.
pub fn unavailable_page() -> Response {
    let mut res = error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again in a moment",
        "The server cannot reach its database just now. Please try again in a few seconds.",
    );
    res.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("5"),
    );
    res
}

pub fn error_page(status: StatusCode, title: &str, message: impl Into<String>) -> Response {
    render(
        status,
        &ErrorPage {
            title: title.to_owned(),
            message: message.into(),
            continue_to: None,
            continue_host: String::new(),
        },
    )
}

/// An error meant for an application whose redirect is not followed automatically: the page
/// names the destination and offers a link instead (RFC 9700 §4.11.2).
pub fn interstitial(message: impl Into<String>, href: String, host: String) -> Response {
    render(
        StatusCode::BAD_REQUEST,
        &ErrorPage {
            title: "The request could not be completed".to_owned(),
            message: message.into(),
            continue_to: Some(href),
            continue_host: host,
        },
    )
}

/// What a scope lets an application do, for the consent page.
pub fn describe_scope(scope: &str) -> String {
    match scope {
        "mcp:read" => "Read your profile, notes and usage through the MCP server".into(),
        "mcp:write" => "Create notes on your behalf through the MCP server".into(),
        "offline_access" => "Stay connected when you are not using it".into(),
        other => format!("Use the \u{201c}{other}\u{201d} permission"),
    }
}
