//! The revocation feed's rows (migration 0009): written by triggers in every revoking
//! transaction, read by resource servers, kept a day.

use oauth_protocol::revocations::{Event, FeedAnswer, PAGE};

use super::{Store, StoreResult};

/// Events before the cursor sent again with each answer: on PostgreSQL two revoking commits
/// at one instant can take their ids out of order, and a reader must not skip the earlier.
/// Readers skip what they already applied.
const RESENT: i64 = 16;

/// How long events are kept: far past any resource server's cache TTL.
pub const FEED_RETENTION_SECS: i64 = 24 * 3600;

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    jti: Option<String>,
    sub: Option<String>,
    client_id: Option<String>,
}

impl Store {
    /// The events after `after` (and the last few before it) that concern `resource` or
    /// every resource; without `after`, only the cursor to start from.
    pub async fn revocation_feed(
        &self,
        after: Option<i64>,
        resource: &str,
    ) -> StoreResult<FeedAnswer> {
        let (head, purged): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM revocation_events), purged_through
               FROM revocation_feed WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        let Some(after) = after else {
            return Ok(FeedAnswer {
                cursor: head,
                events: Vec::new(),
                more: false,
                reset: false,
            });
        };
        // A cursor below what was purged has missed events; one past the head comes from
        // another database (or one that was restored).
        if after < purged || after > head {
            return Ok(FeedAnswer {
                cursor: head,
                events: Vec::new(),
                more: false,
                reset: true,
            });
        }
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT id, jti, sub, client_id FROM revocation_events
              WHERE id > $1 AND (resource IS NULL OR resource = $2)
              ORDER BY id LIMIT $3",
        )
        .bind(after - RESENT)
        .bind(resource)
        .bind(PAGE as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() > PAGE;
        let events: Vec<Event> = rows
            .into_iter()
            .take(PAGE)
            .map(|r| Event {
                id: r.id,
                jti: r.jti,
                sub: r.sub,
                client_id: r.client_id,
            })
            .collect();
        // Without more to read, the head: events for other resources need not be read again.
        let cursor = match (more, events.last()) {
            (true, Some(last)) => last.id,
            _ => head,
        };
        Ok(FeedAnswer {
            cursor,
            events,
            more,
            reset: false,
        })
    }

    /// Deletes events older than `before`, keeping the newest (so the head never goes back),
    /// and records how far it deleted, in one transaction.
    pub(super) async fn purge_revocation_feed(&self, before: i64) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await?;
        let (through,): (Option<i64>,) = sqlx::query_as(
            "SELECT MAX(id) FROM revocation_events
              WHERE at < $1 AND id < (SELECT MAX(id) FROM revocation_events)",
        )
        .bind(before)
        .fetch_one(&mut *tx)
        .await?;
        let Some(through) = through else {
            return Ok(0);
        };
        let n = sqlx::query("DELETE FROM revocation_events WHERE id <= $1")
            .bind(through)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(
            "UPDATE revocation_feed SET purged_through = $1 WHERE id = 1 AND purged_through < $1",
        )
        .bind(through)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(n)
    }
}
