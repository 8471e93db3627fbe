//! Error responses: RFC 6749 §5.2 JSON errors for the back-channel endpoints, and the two
//! channels of the authorization endpoint (an error page when the redirect URI cannot be
//! trusted, a redirect with `error`, `state` and `iss` otherwise).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oauth_protocol::{ErrorCode, ErrorResponse};

use crate::store::StoreError;

/// A back-channel OAuth error. Its HTTP status follows from the code (RFC 6749 §5.2):
/// 401 for `invalid_client`, 500 for `server_error`, 400 otherwise.
#[derive(Debug)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    /// Answer with `WWW-Authenticate: Basic` (RFC 6749 §5.2 for header authentication).
    pub basic_challenge: bool,
    /// Come back later: 429 (a quota, RFC 6585 §4) or 503 (the database is unreachable),
    /// with `Retry-After` in seconds.
    pub retry_after: Option<(StatusCode, std::time::Duration)>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            basic_challenge: false,
            retry_after: None,
        }
    }

    /// Too many requests from one address or client; OAuth has no code of its own for it,
    /// `temporarily_unavailable` (RFC 6749 §4.1.2.1) says the same to a client.
    pub fn too_many(wait: std::time::Duration, from: &str) -> Self {
        Self {
            retry_after: Some((StatusCode::TOO_MANY_REQUESTS, wait)),
            ..Self::new(
                ErrorCode::TemporarilyUnavailable,
                format!("too many requests from this {from}; try again later"),
            )
        }
    }

    /// The database cannot be reached: 503, so clients retry instead of giving up.
    pub fn unavailable() -> Self {
        Self {
            retry_after: Some((
                StatusCode::SERVICE_UNAVAILABLE,
                std::time::Duration::from_secs(5),
            )),
            ..Self::new(
                ErrorCode::TemporarilyUnavailable,
                "the server cannot reach its database; try again shortly",
            )
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    /// 401; the Basic challenge is sent whenever the client tried header authentication,
    /// and also otherwise, since HTTP requires a challenge on every 401.
    pub fn invalid_client(description: impl Into<String>, _via_header: bool) -> Self {
        Self {
            code: ErrorCode::InvalidClient,
            description: description.into(),
            basic_challenge: true,
            retry_after: None,
        }
    }

    pub fn server_error() -> Self {
        Self {
            code: ErrorCode::ServerError,
            description: "internal error".into(),
            basic_challenge: false,
            retry_after: None,
        }
    }
}

impl From<oauth_protocol::Refusal> for OAuthError {
    fn from(r: oauth_protocol::Refusal) -> Self {
        Self::new(r.code, r.description)
    }
}

/// Whether an error of any kind is the database being unreachable (for pages that report
/// errors of several kinds).
pub fn database_unreachable(e: &dyn std::any::Any) -> bool {
    e.downcast_ref::<StoreError>()
        .is_some_and(StoreError::is_unavailable)
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "database unreachable");
            return Self::unavailable();
        }
        tracing::error!(error = %e, "storage failure");
        Self::server_error()
    }
}

/// JSON body with `Cache-Control: no-store` (RFC 6749 §5.1, §5.2).
pub fn no_store_json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    let mut res = (status, axum::Json(body)).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match (self.retry_after, self.code) {
            (Some((status, _)), _) => status,
            (None, ErrorCode::InvalidClient) => StatusCode::UNAUTHORIZED,
            (None, ErrorCode::ServerError) => StatusCode::INTERNAL_SERVER_ERROR,
            (None, _) => StatusCode::BAD_REQUEST,
        };
        let body = ErrorResponse::new(self.code, self.description);
        let mut res = no_store_json(status, &body);
        if let Some((_, wait)) = self.retry_after {
            res.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(wait.as_secs().max(1)),
            );
        }
        if self.basic_challenge {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"oauth\", charset=\"UTF-8\""),
            );
        }
        res
    }
}
