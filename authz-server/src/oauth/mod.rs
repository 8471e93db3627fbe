//! The protocol decisions of the authorization server, apart from HTTP: handlers extract a
//! request, call one function here with the current time, and map its answer to a response.
//! Nothing here knows about axum; every function takes `now`.

pub mod account;
pub mod authorize;
pub mod consent;
pub mod device;
pub mod federation;
pub mod introspect;
pub mod mint;
pub mod register;
pub mod revocations;
pub mod revoke;
pub mod session;
pub mod sign_in;
pub mod token;

use crate::clients::{Client, Credentials, authenticate};
use crate::error::OAuthError;
use crate::state::AppState;

/// The client a token or revocation request authenticates as (RFC 6749 §2.3).
pub async fn calling_client(
    state: &AppState,
    creds: Option<Credentials>,
) -> Result<Client, OAuthError> {
    let creds = creds
        .ok_or_else(|| OAuthError::invalid_client("client authentication is required", false))?;
    let client = state.client(&creds.client_id).await?;
    authenticate(client, &creds)
}
