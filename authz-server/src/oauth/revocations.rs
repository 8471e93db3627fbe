//! The revocation feed (`oauth_protocol::revocations`): only configured resource servers read
//! it, each the events of its own resource and those that concern every resource.

use oauth_protocol::ErrorCode;
use oauth_protocol::revocations::FeedAnswer;

use crate::clients::Credentials;
use crate::error::OAuthError;
use crate::oauth::introspect::{Caller, authenticate_caller};
use crate::state::AppState;

/// `after` as sent: absent, or a cursor from an earlier answer.
pub async fn read_feed(
    state: &AppState,
    creds: Option<Credentials>,
    after: Option<&str>,
) -> Result<FeedAnswer, OAuthError> {
    let Caller::ResourceServer { resource } = authenticate_caller(state, creds).await? else {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "the revocation feed is for resource servers",
        ));
    };
    let after = after
        .map(|a| {
            a.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| OAuthError::invalid_request("after must be a cursor"))
        })
        .transpose()?;
    Ok(state.store.revocation_feed(after, &resource).await?)
}
