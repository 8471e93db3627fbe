//! RFC 7591 dynamic client registration.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use oauth_protocol::paths;
use oauth_protocol::register::ClientMetadata;
use oauth_protocol::secret::constant_time_eq;
use oauth_protocol::{ErrorCode, ErrorResponse};

use crate::error::{OAuthError, no_store_json};
use crate::oauth::register::Registration;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route(paths::REGISTER, post(register))
}

fn refuse(e: ErrorResponse) -> Response {
    refuse_with(StatusCode::BAD_REQUEST, e)
}

fn refuse_with(status: StatusCode, e: ErrorResponse) -> Response {
    no_store_json(status, &e)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[tracing::instrument(skip_all, fields(client_id))]
async fn register(
    State(state): State<AppState>,
    peer: super::Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    // RFC 7591 §3: the initial access token, when configured and presented, vouches for
    // the registration; a wrong one is refused rather than treated as anonymous.
    let vouched = match (&state.config.registration_token, bearer(&headers)) {
        (Some(expected), Some(presented)) => {
            if !constant_time_eq(expected.expose().as_bytes(), presented.as_bytes()) {
                let mut res = refuse_with(
                    StatusCode::UNAUTHORIZED,
                    ErrorResponse::new(
                        ErrorCode::InvalidToken,
                        "the initial access token is not valid",
                    ),
                );
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
                return Ok(res);
            }
            true
        }
        _ => false,
    };
    if !vouched && let Some(ip) = state.client_address(&headers, peer.0) {
        let limit = state.registrations.reserve(&ip.to_string()).await;
        if let Err(wait) = limit {
            tracing::warn!(%ip, "registration rate limit reached");
            return Ok(super::too_many(
                wait,
                refuse(ErrorResponse::new(
                    ErrorCode::InvalidRequest,
                    "too many registrations from this address; try again later",
                )),
            ));
        }
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return Ok(refuse(ErrorResponse::new(
            ErrorCode::InvalidClientMetadata,
            "the request body must be application/json",
        )));
    }
    let doc: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return Ok(refuse(ErrorResponse::new(
                ErrorCode::InvalidClientMetadata,
                format!("malformed JSON: {e}"),
            )));
        }
    };
    let metadata = match ClientMetadata::from_json(&doc, &state.config.supported_scopes()) {
        Ok(m) => m,
        Err(e) => return Ok(refuse(e)),
    };
    let info = match crate::oauth::register::register(&state, metadata, vouched, state.now()).await
    {
        Ok(info) => info,
        Err(Registration::Refused(e)) => return Ok(refuse(e)),
        Err(Registration::Store(e)) => return Err(e.into()),
    };
    tracing::Span::current().record("client_id", info.client_id.as_str());
    Ok(no_store_json(StatusCode::CREATED, &info))
}
