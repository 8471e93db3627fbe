//! Single-use exchanges (codes, refresh-token rotation) and the token look-ups behind
//! introspection and revocation. Each exchange is one transaction.

use super::grants::{revoke_grant_in, write_tokens};
use super::{
    AccessTokenState, CodeRow, Exchange, NewTokens, REFRESH_CONTEXT, RefreshContext, Store,
    StoreResult,
};

/// A code as its redemption marked it, and its user's `disabled` (`None`: no such user).
#[derive(sqlx::FromRow)]
struct RedeemedCode {
    #[sqlx(flatten)]
    code: CodeRow,
    user_disabled: Option<i64>,
}

impl Store {
    /// Stores a new authorization code, and when `consent` is given, records the user's
    /// consent for the code's client and resource in the same transaction.
    pub async fn insert_code(
        &self,
        code: &CodeRow,
        consent: Option<(&str, i64)>,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
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

    /// Redeems an authorization code exactly once (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3),
    /// into the new grant `grant_id`. `check` validates the code against the token request
    /// and mints the tokens of that grant; if it refuses, the transaction is rolled back and
    /// the code stays as it was. A second redemption revokes the grant the first one created.
    pub async fn redeem_code<E>(
        &self,
        code_hash: &str,
        grant_id: &str,
        now: i64,
        check: impl FnOnce(&CodeRow) -> Result<NewTokens, E>,
    ) -> StoreResult<Exchange<E>> {
        let mut tx = self.writer.begin().await?;
        // One statement marks the code used, links it to its grant (for replay detection)
        // and reads whether its user may still sign in: every statement of this transaction
        // is a round trip, and it holds the single writer.
        let row: Option<RedeemedCode> = sqlx::query_as(
            "UPDATE authorization_codes SET consumed_at = $1, grant_id = $2
             WHERE code_hash = $3 AND consumed_at IS NULL
             RETURNING *, (SELECT u.disabled FROM users u WHERE u.id = authorization_codes.user_id) AS user_disabled",
        )
        .bind(now)
        .bind(grant_id)
        .bind(code_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(RedeemedCode {
            code,
            user_disabled,
        }) = row
        else {
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
                    self.changed();
                    Exchange::Replayed
                }
            });
        };
        // A user disabled (or deleted) after the code was issued gets nothing for it.
        if user_disabled != Some(0) {
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
        debug_assert!(
            tokens.grant.as_ref().is_some_and(|g| g.id == grant_id),
            "a code's tokens belong to the grant it was redeemed into"
        );
        write_tokens(&mut tx, &tokens).await?;
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
        let mut tx = self.writer.begin().await?;
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
            self.changed();
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

    /// A client-credentials token, which has no row: `None` when its client no longer
    /// exists, else whether the token was revoked (a row of `revoked_access_tokens`, or the
    /// row such tokens had before they went without one).
    pub(super) async fn load_machine_token_revoked(
        &self,
        jti: &str,
        client_id: &str,
    ) -> StoreResult<Option<bool>> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM revoked_access_tokens r WHERE r.jti = $1)
                  + (SELECT COUNT(*) FROM access_tokens a WHERE a.jti = $1 AND a.revoked_at IS NOT NULL)
             FROM clients c WHERE c.client_id = $2",
        )
        .bind(jti)
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(n,)| n > 0))
    }

    pub async fn revoke_machine_token(
        &self,
        jti: &str,
        client_id: &str,
        expires_at: i64,
    ) -> StoreResult<()> {
        let n = sqlx::query(
            "INSERT INTO revoked_access_tokens (jti, client_id, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(client_id)
        .bind(expires_at)
        .execute(&self.writer)
        .await?;
        if n.rows_affected() > 0 {
            self.changed();
        }
        Ok(())
    }

    pub(super) async fn load_access_token_state(
        &self,
        jti: &str,
    ) -> StoreResult<Option<AccessTokenState>> {
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

    pub async fn revoke_access_token(&self, jti: &str, now: i64) -> StoreResult<()> {
        let n = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 WHERE jti = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(jti)
        .execute(&self.writer)
        .await?;
        // A revocation that changed nothing leaves what is remembered alone.
        if n.rows_affected() > 0 {
            self.changed();
        }
        Ok(())
    }
}
