//! Storage for the admin command and the audit trail.

use sqlx::FromRow;

use super::{ClientRow, Store, StoreError, StoreResult, is_unique_violation};

#[derive(Debug, Clone, FromRow)]
pub struct ResourceServerRow {
    pub resource: String,
    pub name: Option<String>,
    pub client_id: String,
    pub secret_hash: String,
    pub created_at: i64,
    pub machine_clients: i64,
}

#[derive(Debug, Clone, FromRow)]
pub struct AuditEvent {
    pub id: String,
    pub at: i64,
    pub kind: String,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub detail: String,
}

/// At most `max` characters of `s`, control and bidi characters written as `\u{..}`.
pub fn audit_text(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars().take(max) {
        if oauth_protocol::register::is_hidden_char(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Ends a user's sign-in sessions and revokes their grants and access tokens.
async fn end_user_access(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user_id: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    for sql in [
        "UPDATE grants SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        "UPDATE access_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
    ] {
        sqlx::query(sql)
            .bind(now)
            .bind(user_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

impl Store {
    /// Sets a new password. Unless `keep_sessions`, the user's sign-in sessions end and their
    /// grants are revoked in the same transaction: a password reset after a compromise must
    /// also shut out whoever used the old one.
    pub async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
        keep_sessions: bool,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let user: Option<(String,)> =
            sqlx::query_as("UPDATE users SET password_hash = $1 WHERE username = $2 RETURNING id")
                .bind(password_hash)
                .bind(username)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((id,)) = user else { return Ok(false) };
        if !keep_sessions {
            end_user_access(&mut tx, &id, now).await?;
        }
        tx.commit().await?;
        self.changed();
        Ok(true)
    }

    /// Disables or enables a user; disabling also ends their sign-in sessions and revokes
    /// their grants, in one transaction.
    pub async fn set_disabled(
        &self,
        username: &str,
        disabled: bool,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let user: Option<(String,)> =
            sqlx::query_as("UPDATE users SET disabled = $1 WHERE username = $2 RETURNING id")
                .bind(i64::from(disabled))
                .bind(username)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((id,)) = user else { return Ok(false) };
        if disabled {
            end_user_access(&mut tx, &id, now).await?;
        }
        tx.commit().await?;
        self.changed();
        Ok(true)
    }

    /// Removes a user with everything that hangs off them (sessions, consents, grants,
    /// codes and tokens), in one transaction.
    pub async fn delete_user(&self, username: &str) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let user: Option<(String,)> = sqlx::query_as("SELECT id FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((id,)) = user else { return Ok(false) };
        // Access tokens of a grant go with it (ON DELETE CASCADE); remove the rest explicitly
        // so that both backends behave the same whatever their foreign-key settings.
        for sql in [
            "DELETE FROM access_tokens WHERE user_id = $1",
            "DELETE FROM refresh_tokens WHERE grant_id IN (SELECT id FROM grants WHERE user_id = $1)",
            "DELETE FROM grants WHERE user_id = $1",
            "DELETE FROM authorization_codes WHERE user_id = $1",
            "DELETE FROM consents WHERE user_id = $1",
            "DELETE FROM sessions WHERE user_id = $1",
            "DELETE FROM users WHERE id = $1",
        ] {
            sqlx::query(sql).bind(&id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.changed();
        Ok(true)
    }

    pub async fn list_clients(&self) -> StoreResult<Vec<ClientRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM clients ORDER BY client_id_issued_at, client_id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn set_client_secret(&self, client_id: &str, secret_hash: &str) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE clients SET secret_hash = $1 WHERE client_id = $2 AND secret_hash IS NOT NULL",
        )
        .bind(secret_hash)
        .bind(client_id)
        .execute(&self.writer)
        .await?
        .rows_affected();
        self.changed();
        Ok(n == 1)
    }

    /// Removes a client and revokes every grant and token it holds, in one transaction.
    pub async fn delete_client(&self, client_id: &str, now: i64) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let n = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        for sql in [
            "UPDATE grants SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL",
            "UPDATE access_tokens SET revoked_at = $1 WHERE client_id = $2 AND revoked_at IS NULL",
        ] {
            sqlx::query(sql)
                .bind(now)
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM consents WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.changed();
        Ok(true)
    }

    pub async fn insert_resource_server(&self, row: &ResourceServerRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO resource_servers (resource, name, client_id, secret_hash, created_at, machine_clients) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&row.resource)
        .bind(&row.name)
        .bind(&row.client_id)
        .bind(&row.secret_hash)
        .bind(row.created_at)
        .bind(row.machine_clients)
        .execute(&self.writer)
        .await
        .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("resource server") } else { e.into() })?;
        Ok(())
    }

    pub async fn list_resource_servers(&self) -> StoreResult<Vec<ResourceServerRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM resource_servers ORDER BY resource")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Appends a security event. Never carries a secret: only ids and a short detail. Every
    /// text is cut to a bounded length with control characters escaped, so a submitted
    /// username can neither fill the table nor forge lines in the audit output.
    /// Writes an event now, after those queued before it (`audit_soon`), so that the trail
    /// keeps the order things happened in.
    pub async fn audit(&self, event: &AuditEvent) -> StoreResult<()> {
        self.flush_audit().await?;
        let mut conn = self.writer.acquire().await?;
        Self::insert_audit(&mut conn, event).await
    }

    pub(super) async fn insert_audit(
        conn: &mut sqlx::AnyConnection,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        let clean = |s: &str| audit_text(s, 200);
        sqlx::query("INSERT INTO audit_events (id, at, kind, user_id, client_id, detail) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&event.id)
            .bind(event.at)
            .bind(clean(&event.kind))
            .bind(event.user_id.as_deref().map(clean))
            .bind(event.client_id.as_deref().map(clean))
            .bind(clean(&event.detail))
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// The newest events first.
    pub async fn audit_events(&self, limit: i64) -> StoreResult<Vec<AuditEvent>> {
        self.flush_audit().await?;
        Ok(
            sqlx::query_as("SELECT id, at, kind, user_id, client_id, detail FROM audit_events ORDER BY at DESC, seq DESC LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
