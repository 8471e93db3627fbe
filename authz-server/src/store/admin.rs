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

impl Store {
    pub async fn set_password(&self, username: &str, password_hash: &str) -> StoreResult<bool> {
        let n = sqlx::query("UPDATE users SET password_hash = $1 WHERE username = $2")
            .bind(password_hash)
            .bind(username)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// Disables or enables a user; disabling also ends their sign-in sessions and revokes
    /// their grants, in one transaction.
    pub async fn set_disabled(
        &self,
        username: &str,
        disabled: bool,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
        let user: Option<(String,)> =
            sqlx::query_as("UPDATE users SET disabled = $1 WHERE username = $2 RETURNING id")
                .bind(i64::from(disabled))
                .bind(username)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((id,)) = user else { return Ok(false) };
        if disabled {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE grants SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE access_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(&id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Removes a user with everything that hangs off them (sessions, consents, grants,
    /// codes and tokens), in one transaction.
    pub async fn delete_user(&self, username: &str) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
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
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Removes a client and revokes every grant and token it holds, in one transaction.
    pub async fn delete_client(&self, client_id: &str, now: i64) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await?;
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
        Ok(true)
    }

    pub async fn insert_resource_server(&self, row: &ResourceServerRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO resource_servers (resource, name, client_id, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&row.resource)
        .bind(&row.name)
        .bind(&row.client_id)
        .bind(&row.secret_hash)
        .bind(row.created_at)
        .execute(&self.pool)
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

    /// Appends a security event. Never carries a secret: only ids and a short detail.
    pub async fn audit(&self, event: &AuditEvent) -> StoreResult<()> {
        sqlx::query("INSERT INTO audit_events (id, at, kind, user_id, client_id, detail) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&event.id)
            .bind(event.at)
            .bind(&event.kind)
            .bind(&event.user_id)
            .bind(&event.client_id)
            .bind(&event.detail)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The newest events first.
    pub async fn audit_events(&self, limit: i64) -> StoreResult<Vec<AuditEvent>> {
        Ok(
            sqlx::query_as("SELECT * FROM audit_events ORDER BY at DESC, id DESC LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
