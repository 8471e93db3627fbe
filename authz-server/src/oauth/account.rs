//! A signed-in user's view of what they authorized, and revoking it.

use crate::clients::Client;
use crate::state::AppState;
use crate::store::StoreResult;
pub use crate::store::federation::Unlinked;

/// One authorized application, as the account page lists it.
pub struct AuthorizedApp {
    pub grant_id: String,
    pub client_name: String,
    pub scopes: Vec<String>,
    pub resource: String,
    pub resource_name: String,
    pub last_used_at: i64,
}

/// The user's name to show, and their live grants, newest use first. `None` when the user
/// is gone.
pub async fn authorized_apps(
    state: &AppState,
    user_id: &str,
) -> StoreResult<Option<(String, Vec<AuthorizedApp>)>> {
    let Some(user) = state.store.user_by_id(user_id).await? else {
        return Ok(None);
    };
    let mut apps = Vec::new();
    for g in state.store.user_grants(user_id).await? {
        let client_name = state
            .store
            .client(&g.client_id)
            .await?
            .and_then(|row| Client::from_row(&row))
            .map(|c| c.name())
            .unwrap_or_else(|| g.client_id.clone());
        let resource_name = state
            .resource_server(&g.resource)
            .map(|rs| rs.display_name().to_owned())
            .unwrap_or_else(|| g.resource.clone());
        apps.push(AuthorizedApp {
            grant_id: g.id,
            client_name,
            scopes: g
                .scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            resource: g.resource,
            resource_name,
            last_used_at: g.last_used_at,
        });
    }
    Ok(Some((user.display_name.unwrap_or(user.username), apps)))
}

/// Revokes one of the user's own grants and forgets its consent. `false` when the grant is
/// not theirs (someone else's grant looks like a missing one).
pub async fn revoke_own(
    state: &AppState,
    user_id: &str,
    grant_id: &str,
    now: i64,
) -> StoreResult<bool> {
    match state.store.grant(grant_id).await? {
        Some(g) if g.user_id.as_deref() == Some(user_id) => {
            state.store.revoke_grant_and_consent(grant_id, now).await?;
            tracing::info!(client_id = %g.client_id, "grant revoked by its user");
            state
                .audit("grant_revoked", Some(user_id), Some(&g.client_id), "user")
                .await;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// One identity at an upstream provider, as the account page lists it.
pub struct LinkedLine {
    pub provider: String,
    pub label: String,
    pub subject: String,
    pub email: Option<String>,
}

pub async fn linked_identities(state: &AppState, user_id: &str) -> StoreResult<Vec<LinkedLine>> {
    Ok(state
        .store
        .linked_identities(user_id)
        .await?
        .into_iter()
        .map(|l| LinkedLine {
            label: state
                .providers()
                .iter()
                .find(|u| u.name == l.provider)
                .map_or_else(|| l.provider.clone(), |u| u.label().to_owned()),
            provider: l.provider,
            subject: l.subject,
            email: l.email,
        })
        .collect())
}

/// Unlinks one of the user's own identities (audited); never the last way to sign in.
pub async fn unlink_own(
    state: &AppState,
    user_id: &str,
    provider: &str,
    subject: &str,
) -> StoreResult<Unlinked> {
    let outcome = state
        .store
        .unlink_identity(user_id, provider, subject)
        .await?;
    if outcome == Unlinked::Done {
        state
            .audit("identity_unlinked", Some(user_id), None, provider)
            .await;
    }
    Ok(outcome)
}
