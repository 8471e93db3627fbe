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
const REFRESH_CONTEXT: &str =
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

async fn write_tokens(tx: &mut Transaction<'static, Any>, t: &NewTokens) -> StoreResult<()> {
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

async fn revoke_grant_in(
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
    /// Stores a new authorization code, and when `consent` is given, records the user's
    /// consent for the code's client and resource in the same transaction.
    pub async fn insert_code(
        &self,
        code: &CodeRow,
        consent: Option<(&str, i64)>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        if let Some((scope, now)) = consent {
            sqlx::query(
                "INSERT INTO consents (user_id, client_id, resource, scope, updated_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (user_id, client_id, resource) DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at",
            )
            .bind(&code.user_id)
            .bind(&code.client_id)
            .bind(&code.resource)
            .bind(scope)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "INSERT INTO authorization_codes
               (code_hash, client_id, user_id, redirect_uri, code_challenge, resource, scope, expires_at, consumed_at, grant_id, redirect_uri_sent)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9)",
        )
        .bind(&code.code_hash)
        .bind(&code.client_id)
        .bind(&code.user_id)
        .bind(&code.redirect_uri)
        .bind(&code.code_challenge)
        .bind(&code.resource)
        .bind(&code.scope)
        .bind(code.expires_at)
        .bind(code.redirect_uri_sent)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Redeems an authorization code exactly once (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3).
    /// `check` validates the code against the token request and mints the tokens; if it
    /// refuses, the transaction is rolled back and the code stays as it was. A second
    /// redemption revokes the grant the first one created.
    pub async fn redeem_code<E>(
        &self,
        code_hash: &str,
        now: i64,
        check: impl FnOnce(&CodeRow) -> Result<NewTokens, E>,
    ) -> StoreResult<Exchange<E>> {
        let mut tx = self.pool.begin().await?;
        let row: Option<CodeRow> = sqlx::query_as(
            "UPDATE authorization_codes SET consumed_at = $1
             WHERE code_hash = $2 AND consumed_at IS NULL RETURNING *",
        )
        .bind(now)
        .bind(code_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(code) = row else {
            let prior: Option<(Option<String>,)> =
                sqlx::query_as("SELECT grant_id FROM authorization_codes WHERE code_hash = $1")
                    .bind(code_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
            return Ok(match prior {
                None => Exchange::NotFound,
                Some((grant_id,)) => {
                    if let Some(grant_id) = grant_id {
                        revoke_grant_in(&mut tx, &grant_id, now).await?;
                    }
                    tx.commit().await?;
                    Exchange::Replayed
                }
            });
        };
        // A user disabled after the code was issued gets nothing for it.
        let enabled: Option<(i64,)> = sqlx::query_as("SELECT disabled FROM users WHERE id = $1")
            .bind(&code.user_id)
            .fetch_optional(&mut *tx)
            .await?;
        if enabled != Some((0,)) {
            tx.rollback().await?;
            return Ok(Exchange::NotFound);
        }
        let tokens = match check(&code) {
            Ok(t) => t,
            Err(e) => {
                tx.rollback().await?;
                return Ok(Exchange::Rejected(e));
            }
        };
        write_tokens(&mut tx, &tokens).await?;
        let grant_id = tokens
            .grant
            .as_ref()
            .map(|g| g.id.clone())
            .or_else(|| tokens.access.grant_id.clone());
        sqlx::query("UPDATE authorization_codes SET grant_id = $1 WHERE code_hash = $2")
            .bind(grant_id)
            .bind(code_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Exchange::Issued)
    }

    /// Rotates a refresh token (OAuth 2.1 §4.3.1). The first use marks it rotated; further
    /// uses within `grace` seconds also succeed, so that concurrent or retried requests of
    /// one client do not log it out; a use after that revokes the whole grant.
    pub async fn rotate_refresh_token<E>(
        &self,
        token_hash: &str,
        now: i64,
        grace: i64,
        check: impl FnOnce(&RefreshContext) -> Result<NewTokens, E>,
    ) -> StoreResult<Exchange<E>> {
        let mut tx = self.pool.begin().await?;
        // Write first: it takes the row lock (PostgreSQL) or the write lock (SQLite) before
        // anything is read, so concurrent rotations of one token queue up here.
        let marked: Option<(String,)> = sqlx::query_as(
            "UPDATE refresh_tokens SET rotated_at = COALESCE(rotated_at, $1) WHERE token_hash = $2 RETURNING grant_id",
        )
        .bind(now)
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        if marked.is_none() {
            return Ok(Exchange::NotFound);
        }
        let ctx: RefreshContext = sqlx::query_as(REFRESH_CONTEXT)
            .bind(token_hash)
            .fetch_one(&mut *tx)
            .await?;
        if ctx.is_dead(now) {
            tx.rollback().await?;
            return Ok(Exchange::NotFound);
        }
        if !oauth_protocol::grant::rotated_token_usable(ctx.rotated_at, now, grace) {
            revoke_grant_in(&mut tx, &ctx.grant_id, now).await?;
            tx.commit().await?;
            return Ok(Exchange::Replayed);
        }
        let tokens = match check(&ctx) {
            Ok(t) => t,
            Err(e) => {
                tx.rollback().await?;
                return Ok(Exchange::Rejected(e));
            }
        };
        write_tokens(&mut tx, &tokens).await?;
        sqlx::query("UPDATE grants SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&ctx.grant_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Exchange::Issued)
    }

    /// Records an access token that belongs to no grant (client credentials).
    pub async fn insert_access_token(&self, tokens: &NewTokens) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        write_tokens(&mut tx, tokens).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn access_token_state(&self, jti: &str) -> StoreResult<Option<AccessTokenState>> {
        Ok(sqlx::query_as(
            "SELECT a.jti, a.client_id, a.user_id, u.username, u.email, u.display_name, a.resource, a.scope, a.issued_at, a.expires_at,
                    a.revoked_at, g.revoked_at AS grant_revoked_at, u.disabled AS user_disabled
             FROM access_tokens a
             LEFT JOIN grants g ON g.id = a.grant_id
             LEFT JOIN users u ON u.id = a.user_id
             WHERE a.jti = $1",
        )
        .bind(jti)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// A refresh token's grant, for introspection and revocation.
    pub async fn refresh_token_context(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<RefreshContext>> {
        Ok(sqlx::query_as(REFRESH_CONTEXT)
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn revoke_grant(&self, grant_id: &str, now: i64) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        revoke_grant_in(&mut tx, grant_id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revokes a grant and forgets the consent behind it, in one transaction, so the next
    /// authorization request for that client and resource asks the user again.
    pub async fn revoke_grant_and_consent(&self, grant_id: &str, now: i64) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
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
        Ok(())
    }

    pub async fn revoke_access_token(&self, jti: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 WHERE jti = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(jti)
        .execute(&self.pool)
        .await?;
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

    /// Deletes rows that can no longer matter: expired sessions, refresh tokens and access
    /// tokens, codes a day past expiry (kept that long so a late replay still revokes),
    /// audit events older than `audit_before` (when given), and dynamically registered
    /// clients issued before `unused_clients_before` that never obtained a grant or a code.
    pub async fn purge_expired(
        &self,
        now: i64,
        audit_before: Option<i64>,
        unused_clients_before: i64,
    ) -> StoreResult<u64> {
        let mut removed = 0;
        if let Some(cutoff) = audit_before {
            removed += sqlx::query("DELETE FROM audit_events WHERE at < $1")
                .bind(cutoff)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        removed += sqlx::query(
            "DELETE FROM clients WHERE origin = 'dynamic' AND client_id_issued_at < $1
               AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.client_id = clients.client_id)
               AND NOT EXISTS (SELECT 1 FROM authorization_codes c WHERE c.client_id = clients.client_id)
               AND NOT EXISTS (SELECT 1 FROM consents k WHERE k.client_id = clients.client_id)",
        )
        .bind(unused_clients_before)
        .execute(&self.pool)
        .await?
        .rows_affected();
        for (sql, cutoff) in [
            ("DELETE FROM sessions WHERE expires_at < $1", now),
            ("DELETE FROM refresh_tokens WHERE expires_at < $1", now),
            ("DELETE FROM access_tokens WHERE expires_at < $1", now),
            (
                "DELETE FROM authorization_codes WHERE expires_at < $1",
                now - 24 * 3600,
            ),
        ] {
            removed += sqlx::query(sql)
                .bind(cutoff)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(removed)
    }

    /// Row counts, for tests that prove a refused request wrote nothing.
    pub async fn count(&self, table: Table) -> StoreResult<i64> {
        let sql = match table {
            Table::Grants => "SELECT COUNT(*) FROM grants",
            Table::AccessTokens => "SELECT COUNT(*) FROM access_tokens",
            Table::RefreshTokens => "SELECT COUNT(*) FROM refresh_tokens",
            Table::Codes => "SELECT COUNT(*) FROM authorization_codes",
            Table::Clients => "SELECT COUNT(*) FROM clients",
            Table::Consents => "SELECT COUNT(*) FROM consents",
            Table::Sessions => "SELECT COUNT(*) FROM sessions",
            Table::Audit => "SELECT COUNT(*) FROM audit_events",
        };
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&self.pool).await?;
        Ok(n)
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Table {
    Grants,
    AccessTokens,
    RefreshTokens,
    Codes,
    Clients,
    Consents,
    Sessions,
    Audit,
}
