//! RFC 7591 dynamic client registration.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use oauth_protocol::paths;
use oauth_protocol::register::{ClientInformation, ClientMetadata, GRANT_CLIENT_CREDENTIALS};
use oauth_protocol::secret::{constant_time_eq, digest};
use oauth_protocol::{ErrorCode, ErrorResponse};

use crate::clients::{ORIGIN_DYNAMIC, ORIGIN_DYNAMIC_TOKEN};
use crate::crypto::{new_id, new_secret};
use crate::error::{OAuthError, no_store_json};
use crate::state::{AppState, now};
use crate::store::ClientRow;

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
    // RFC 6749 §4.4 and RFC 7591 §5: client_credentials acts with no user behind it, so
    // self-asserted metadata cannot ask for it.
    if metadata.allows_grant(GRANT_CLIENT_CREDENTIALS) && !vouched {
        return Ok(refuse(ErrorResponse::new(
            ErrorCode::InvalidClientMetadata,
            "client_credentials is available only to clients created by an administrator \
             (or registered with the initial access token)",
        )));
    }
    let issued_at = now();
    let client_id = new_id();
    let secret = metadata
        .token_endpoint_auth_method
        .is_confidential()
        .then(new_secret);
    tracing::Span::current().record("client_id", client_id.as_str());
    state
        .store
        .insert_client(&ClientRow {
            client_id: client_id.clone(),
            secret_hash: secret.as_deref().map(digest),
            metadata: serde_json::to_string(&metadata).expect("metadata serializes"),
            client_id_issued_at: issued_at,
            origin: if vouched {
                ORIGIN_DYNAMIC_TOKEN
            } else {
                ORIGIN_DYNAMIC
            }
            .into(),
        })
        .await?;
    state.metrics.inc("registrations_total", &[]);
    tracing::info!(
        method = metadata.token_endpoint_auth_method.as_str(),
        "client registered"
    );
    state
        .audit(
            "client_registered",
            None,
            Some(&client_id),
            metadata.client_name.as_deref().unwrap_or_default(),
        )
        .await;
    let info = ClientInformation {
        client_id,
        client_secret_expires_at: secret.as_ref().map(|_| 0),
        client_secret: secret,
        client_id_issued_at: issued_at,
        metadata,
    };
    Ok(no_store_json(StatusCode::CREATED, &info))
}
