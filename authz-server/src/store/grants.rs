//! Grants and the credentials that hang off them: authorization codes, refresh tokens and
//! access-token records. A grant is one user's authorization of one client for one resource;
//! revoking it kills every token issued under it.

use sqlx::{Any, FromRow, Transaction};

use super::{Store, StoreResult};

#[derive(Debug, Clone, FromRow)]
pub struct CodeRow {
    pub code_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub resource: String,
    pub scope: String,
    pub expires_at: i64,
    pub consumed_at: Option<i64>,
    pub grant_id: Option<String>,
    /// 1 when the authorization request carried `redirect_uri` (RFC 6749 §4.1.3).
    pub redirect_uri_sent: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct GrantRow {
    pub id: String,
    pub user_id: Option<String>,
    pub client_id: String,
    pub resource: String,
    pub scope: String,
    pub created_at: i64,
    pub last_used_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, FromRow)]
pub struct AccessTokenRow {
    pub jti: String,
    pub grant_id: Option<String>,
    pub client_id: String,
    pub user_id: Option<String>,
    pub resource: String,
    pub scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct RefreshTokenRow {
    pub token_hash: String,
    pub grant_id: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// What one successful grant-type exchange writes.
#[derive(Debug, Clone)]
pub struct NewTokens {
    /// A grant created by this exchange (code redemption); `None` when it extends one.
    pub grant: Option<GrantRow>,
    pub access: AccessTokenRow,
    pub refresh: Option<RefreshTokenRow>,
}

/// Outcome of a single-use credential exchange.
#[derive(Debug)]
pub enum Exchange<E> {
    Issued,
    /// Unknown, expired, revoked: nothing was written.
    NotFound,
    /// Used before (outside any grace window): the grant it produced was revoked.
    Replayed,
    /// The caller's checks refused it: nothing was written.
    Rejected(E),
}

/// A refresh token with its grant, as the rotation check sees it.
#[derive(Debug, Clone, FromRow)]
pub struct RefreshContext {
    pub token_hash: String,
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
    pub grant_id: String,
    pub user_id: Option<String>,
    pub client_id: String,
    pub resource: String,
    pub scope: String,
    pub revoked_at: Option<i64>,
    /// The grant's user is disabled (1), or gone (`None` with a `user_id`).
    pub user_disabled: Option<i64>,
}

impl RefreshContext {
    /// The grant is revoked, expired, or its user can no longer sign in.
    pub fn is_dead(&self, now: i64) -> bool {
        self.revoked_at.is_some()
            || self.expires_at <= now
            || (self.user_id.is_some() && self.user_disabled != Some(0))
    }
}

/// The one query behind `RefreshContext`.
pub(super) const REFRESH_CONTEXT: &str =
    "SELECT r.token_hash, r.expires_at, r.rotated_at, g.id AS grant_id, g.user_id, g.client_id,
        g.resource, g.scope, g.revoked_at, u.disabled AS user_disabled
 FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id LEFT JOIN users u ON u.id = g.user_id
 WHERE r.token_hash = $1";

/// An access-token record joined with what introspection reports.
#[derive(Debug, Clone, FromRow)]
pub struct AccessTokenState {
    pub jti: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub resource: String,
    pub scope: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub grant_revoked_at: Option<i64>,
    pub user_disabled: Option<i64>,
}

impl AccessTokenState {
    /// Revoked, its grant revoked, or its user disabled or removed.
    pub fn is_dead(&self) -> bool {
        self.revoked_at.is_some()
            || self.grant_revoked_at.is_some()
            || (self.user_id.is_some() && self.user_disabled != Some(0))
    }
}

/// A grant as a user sees it on the "authorized applications" page and in the admin tool.
#[derive(Debug, Clone, FromRow)]
pub struct GrantSummary {
    pub id: String,
    pub client_id: String,
    pub resource: String,
    pub scope: String,
    pub created_at: i64,
    pub last_used_at: i64,
}

pub(super) async fn write_tokens(
    tx: &mut Transaction<'static, Any>,
    t: &NewTokens,
) -> StoreResult<()> {
    if let Some(g) = &t.grant {
        sqlx::query(
            "INSERT INTO grants (id, user_id, client_id, resource, scope, created_at, last_used_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
        )
        .bind(&g.id)
        .bind(&g.user_id)
        .bind(&g.client_id)
        .bind(&g.resource)
        .bind(&g.scope)
        .bind(g.created_at)
        .bind(g.last_used_at)
        .execute(&mut **tx)
        .await?;
    }
    let a = &t.access;
    sqlx::query(
        "INSERT INTO access_tokens (jti, grant_id, client_id, user_id, resource, scope, issued_at, expires_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
    )
    .bind(&a.jti)
    .bind(&a.grant_id)
    .bind(&a.client_id)
    .bind(&a.user_id)
    .bind(&a.resource)
    .bind(&a.scope)
    .bind(a.issued_at)
    .bind(a.expires_at)
    .execute(&mut **tx)
    .await?;
    if let Some(r) = &t.refresh {
        // A refresh within the grace window presents the same rotated token and gets the
        // same successor (derived from it), which then already exists.
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at, rotated_at)
             VALUES ($1, $2, $3, $4, NULL) ON CONFLICT (token_hash) DO NOTHING",
        )
        .bind(&r.token_hash)
        .bind(&r.grant_id)
        .bind(r.created_at)
        .bind(r.expires_at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub(super) async fn revoke_grant_in(
    tx: &mut Transaction<'static, Any>,
    grant_id: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(grant_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE access_tokens SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(grant_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    pub async fn revoke_grant(&self, grant_id: &str, now: i64) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        revoke_grant_in(&mut tx, grant_id, now).await?;
        tx.commit().await?;
        self.changed();
        Ok(())
    }

    /// Revokes a grant and forgets the consent behind it, in one transaction, so the next
    /// authorization request for that client and resource asks the user again.
    pub async fn revoke_grant_and_consent(&self, grant_id: &str, now: i64) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        let owner: Option<(Option<String>, String, String)> =
            sqlx::query_as("SELECT user_id, client_id, resource FROM grants WHERE id = $1")
                .bind(grant_id)
                .fetch_optional(&mut *tx)
                .await?;
        revoke_grant_in(&mut tx, grant_id, now).await?;
        if let Some((Some(user_id), client_id, resource)) = owner {
            sqlx::query(
                "DELETE FROM consents WHERE user_id = $1 AND client_id = $2 AND resource = $3",
            )
            .bind(user_id)
            .bind(client_id)
            .bind(resource)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.changed();
        Ok(())
    }

    pub async fn grant(&self, grant_id: &str) -> StoreResult<Option<GrantRow>> {
        Ok(sqlx::query_as("SELECT * FROM grants WHERE id = $1")
            .bind(grant_id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Live grants of a user, newest use first.
    pub async fn user_grants(&self, user_id: &str) -> StoreResult<Vec<GrantSummary>> {
        Ok(sqlx::query_as(
            "SELECT id, client_id, resource, scope, created_at, last_used_at FROM grants
             WHERE user_id = $1 AND revoked_at IS NULL ORDER BY last_used_at DESC",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }
}
