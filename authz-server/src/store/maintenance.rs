//! Housekeeping: deleting what no one can use any more, and row counts for tests.

use super::{Store, StoreResult};

impl Store {
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
        self.flush_audit().await?;
        let mut removed = 0;
        for table in ["device_codes", "upstream_logins"] {
            removed += sqlx::query(&format!("DELETE FROM {table} WHERE expires_at <= $1"))
                .bind(now)
                .execute(&self.writer)
                .await?
                .rows_affected();
        }
        if let Some(cutoff) = audit_before {
            removed += sqlx::query("DELETE FROM audit_events WHERE at < $1")
                .bind(cutoff)
                .execute(&self.writer)
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
        .execute(&self.writer)
        .await?
        .rows_affected();
        self.changed();
        removed += self
            .purge_revocation_feed(now - super::FEED_RETENTION_SECS)
            .await?;
        for (sql, cutoff) in [
            ("DELETE FROM sessions WHERE expires_at < $1", now),
            ("DELETE FROM refresh_tokens WHERE expires_at < $1", now),
            ("DELETE FROM access_tokens WHERE expires_at < $1", now),
            (
                "DELETE FROM revoked_access_tokens WHERE expires_at < $1",
                now,
            ),
            (
                "DELETE FROM authorization_codes WHERE expires_at < $1",
                now - 24 * 3600,
            ),
        ] {
            removed += sqlx::query(sql)
                .bind(cutoff)
                .execute(&self.writer)
                .await?
                .rows_affected();
        }
        Ok(removed)
    }

    /// Row counts, for tests that prove a refused request wrote nothing.
    pub async fn count(&self, table: Table) -> StoreResult<i64> {
        self.flush_audit().await?;
        let sql = match table {
            Table::Grants => "SELECT COUNT(*) FROM grants",
            Table::AccessTokens => "SELECT COUNT(*) FROM access_tokens",
            Table::RefreshTokens => "SELECT COUNT(*) FROM refresh_tokens",
            Table::Codes => "SELECT COUNT(*) FROM authorization_codes",
            Table::Clients => "SELECT COUNT(*) FROM clients",
            Table::Consents => "SELECT COUNT(*) FROM consents",
            Table::Sessions => "SELECT COUNT(*) FROM sessions",
            Table::Audit => "SELECT COUNT(*) FROM audit_events",
            Table::Users => "SELECT COUNT(*) FROM users",
            Table::IdentityLinks => "SELECT COUNT(*) FROM identity_links",
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
    Users,
    IdentityLinks,
}
