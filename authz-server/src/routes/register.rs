//! RFC 7591 dynamic client registration.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;
use oauth_protocol::paths;
use oauth_protocol::register::{ClientInformation, ClientMetadata};
use oauth_protocol::secret::digest;
use oauth_protocol::{ErrorCode, ErrorResponse};

use crate::crypto::{new_id, new_secret};
use crate::error::{OAuthError, no_store_json};
use crate::state::{AppState, now};
use crate::store::ClientRow;

pub fn router() -> Router<AppState> {
    Router::new().route(paths::REGISTER, post(register))
}

fn refuse(e: ErrorResponse) -> Response {
    no_store_json(StatusCode::BAD_REQUEST, &e)
}

#[tracing::instrument(skip_all, fields(client_id))]
async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
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
            origin: "dynamic".into(),
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
