//! RFC 7591 registration decisions: what self-asserted metadata may obtain, and the
//! client it becomes.

use oauth_protocol::register::{ClientInformation, ClientMetadata, GRANT_CLIENT_CREDENTIALS};
use oauth_protocol::secret::digest;
use oauth_protocol::{ErrorCode, ErrorResponse};

use crate::clients::{ORIGIN_DYNAMIC, ORIGIN_DYNAMIC_TOKEN};
use crate::ids::{new_id, new_secret};
use crate::state::AppState;
use crate::store::{ClientRow, StoreError};

pub enum Registration {
    /// RFC 7591 §3.2.2: the metadata is not acceptable.
    Refused(ErrorResponse),
    Store(StoreError),
}

/// Registers a client with validated metadata. `vouched`: the request presented the
/// initial access token (RFC 7591 §3), so it may obtain client_credentials.
pub async fn register(
    state: &AppState,
    metadata: ClientMetadata,
    vouched: bool,
    now: i64,
) -> Result<ClientInformation, Registration> {
    // RFC 6749 §4.4 and RFC 7591 §5: client_credentials acts with no user behind it, so
    // self-asserted metadata cannot ask for it.
    if metadata.allows_grant(GRANT_CLIENT_CREDENTIALS) && !vouched {
        return Err(Registration::Refused(ErrorResponse::new(
            ErrorCode::InvalidClientMetadata,
            "client_credentials is available only to clients created by an administrator \
             (or registered with the initial access token)",
        )));
    }
    let issued_at = now;
    let client_id = new_id();
    let secret = metadata
        .token_endpoint_auth_method
        .is_confidential()
        .then(new_secret);
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
        .await
        .map_err(Registration::Store)?;
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
    Ok(ClientInformation {
        client_id,
        client_secret_expires_at: secret.as_ref().map(|_| 0),
        client_secret: secret,
        client_id_issued_at: issued_at,
        metadata,
    })
}
