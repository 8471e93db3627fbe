//! RFC 8628 device authorization requests: created by the device, decided by the person on
//! `/device`, polled and redeemed once by the device. Each step is one transaction.

use sqlx::FromRow;

use super::grants::write_tokens;
use super::{NewTokens, Store, StoreResult};

#[derive(Debug, Clone, FromRow)]
pub struct DeviceRow {
    pub device_code_hash: String,
    pub user_code_hash: String,
    pub client_id: String,
    pub scope: String,
    pub resource: String,
    /// `pending`, `approved` or `denied`.
    pub status: String,
    pub user_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub poll_interval: i64,
    pub last_polled_at: Option<i64>,
}

pub const PENDING: &str = "pending";
pub const APPROVED: &str = "approved";
pub const DENIED: &str = "denied";

/// What a poll of the token endpoint found (RFC 8628 §3.5).
#[derive(Debug)]
pub enum Poll<E> {
    Issued,
    Pending,
    /// Polled sooner than the interval: the interval is now `0` seconds.
    SlowDown(i64),
    Denied,
    Expired,
    /// Unknown, redeemed already, or another client's.
    NotFound,
    Rejected(E),
}

impl Store {
    pub async fn insert_device_code(&self, row: &DeviceRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO device_codes (device_code_hash, user_code_hash, client_id, scope, resource,
               status, user_id, created_at, expires_at, poll_interval, last_polled_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL)",
        )
        .bind(&row.device_code_hash)
        .bind(&row.user_code_hash)
        .bind(&row.client_id)
        .bind(&row.scope)
        .bind(&row.resource)
        .bind(&row.status)
        .bind(&row.user_id)
        .bind(row.created_at)
        .bind(row.expires_at)
        .bind(row.poll_interval)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// A request still waiting for its person, by the digest of its user code.
    pub async fn pending_device_code(
        &self,
        user_code_hash: &str,
        now: i64,
    ) -> StoreResult<Option<DeviceRow>> {
        Ok(sqlx::query_as(
            "SELECT * FROM device_codes WHERE user_code_hash = $1 AND status = $2 AND expires_at > $3",
        )
        .bind(user_code_hash)
        .bind(PENDING)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The person's decision on a pending request; with an approval, the consent to
    /// remember is written in the same transaction. False when it was no longer pending.
    pub async fn decide_device_code(
        &self,
        user_code_hash: &str,
        user_id: &str,
        approved: bool,
        scope: &str,
        consent: Option<&str>,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let row: Option<DeviceRow> = sqlx::query_as(
            "UPDATE device_codes SET status = $1, user_id = $2, scope = $6
             WHERE user_code_hash = $3 AND status = $4 AND expires_at > $5 RETURNING *",
        )
        .bind(if approved { APPROVED } else { DENIED })
        .bind(user_id)
        .bind(user_code_hash)
        .bind(PENDING)
        .bind(now)
        .bind(scope)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(false);
        };
        if let Some(scope) = consent {
            sqlx::query(
                "INSERT INTO consents (user_id, client_id, resource, scope, updated_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (user_id, client_id, resource) DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at",
            )
            .bind(user_id)
            .bind(&row.client_id)
            .bind(&row.resource)
            .bind(scope)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// One poll by `client_id` (RFC 8628 §3.4, §3.5). An approved request is deleted as it
    /// is redeemed, so a device code gives tokens once; `check` mints them, and when it
    /// refuses nothing is written.
    pub async fn poll_device_code<E>(
        &self,
        device_code_hash: &str,
        client_id: &str,
        now: i64,
        check: impl FnOnce(&DeviceRow) -> Result<NewTokens, E>,
    ) -> StoreResult<Poll<E>> {
        let mut tx = self.writer.begin().await?;
        let row: Option<DeviceRow> =
            sqlx::query_as("SELECT * FROM device_codes WHERE device_code_hash = $1")
                .bind(device_code_hash)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(row) = row.filter(|r| r.client_id == client_id) else {
            return Ok(Poll::NotFound);
        };
        let delete = "DELETE FROM device_codes WHERE device_code_hash = $1";
        if row.expires_at <= now {
            sqlx::query(delete)
                .bind(device_code_hash)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Poll::Expired);
        }
        match row.status.as_str() {
            APPROVED => {}
            DENIED => {
                sqlx::query(delete)
                    .bind(device_code_hash)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(Poll::Denied);
            }
            _ => {
                let fast =
                    oauth_protocol::device::too_fast(row.last_polled_at, row.poll_interval, now);
                let interval = if fast {
                    row.poll_interval + oauth_protocol::device::SLOW_DOWN_STEP
                } else {
                    row.poll_interval
                };
                sqlx::query(
                    "UPDATE device_codes SET last_polled_at = $1, poll_interval = $2
                     WHERE device_code_hash = $3",
                )
                .bind(now)
                .bind(interval)
                .bind(device_code_hash)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                return Ok(if fast {
                    Poll::SlowDown(interval)
                } else {
                    Poll::Pending
                });
            }
        }
        // Approved: consumed by exactly one poll, whoever gets the delete.
        let deleted = sqlx::query(&format!("{delete} AND status = $2"))
            .bind(device_code_hash)
            .bind(APPROVED)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted != 1 {
            tx.rollback().await?;
            return Ok(Poll::NotFound);
        }
        let enabled: Option<(i64,)> = sqlx::query_as("SELECT disabled FROM users WHERE id = $1")
            .bind(&row.user_id)
            .fetch_optional(&mut *tx)
            .await?;
        if enabled != Some((0,)) {
            tx.rollback().await?;
            return Ok(Poll::NotFound);
        }
        let tokens = match check(&row) {
            Ok(t) => t,
            Err(e) => {
                tx.rollback().await?;
                return Ok(Poll::Rejected(e));
            }
        };
        write_tokens(&mut tx, &tokens).await?;
        tx.commit().await?;
        Ok(Poll::Issued)
    }
}
