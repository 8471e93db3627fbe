//! Sign-in sessions of the HTML pages. The browser holds a random id; the store holds its
//! SHA-256, so a database dump signs no one in.

use oauth_protocol::secret::digest;

use crate::ids::new_secret;
use crate::state::AppState;
pub use crate::store::SessionRow;
use crate::store::StoreResult;

/// The live session a cookie value names, if its user is still enabled.
pub async fn current(
    state: &AppState,
    cookie: Option<&str>,
    now: i64,
) -> StoreResult<Option<SessionRow>> {
    match cookie {
        Some(id) => state.store.session(&digest(id), now).await,
        None => Ok(None),
    }
}

/// Starts a session for `user_id`; returns the id for the cookie.
pub async fn start(state: &AppState, user_id: &str, now: i64) -> StoreResult<String> {
    start_limited(state, user_id, None, now).await
}

/// Starts a session whose user may be granted only `scope_limit` (an upstream sign-in
/// through a provider that maps a claim to scopes).
pub async fn start_limited(
    state: &AppState,
    user_id: &str,
    scope_limit: Option<&str>,
    now: i64,
) -> StoreResult<String> {
    let id = new_secret();
    state
        .store
        .insert_session(
            &digest(&id),
            user_id,
            now,
            now + state.config.session_ttl,
            scope_limit,
        )
        .await?;
    Ok(id)
}

pub async fn end(state: &AppState, cookie: &str) -> StoreResult<()> {
    state.store.delete_session(&digest(cookie)).await
}
