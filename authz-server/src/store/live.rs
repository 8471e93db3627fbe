//! What every introspection and client authentication reads, answered from memory for as
//! long as nothing that could change the answer has happened.
//!
//! Every write that can end a token's life or change a client (a revocation, a replay, a
//! user disabled or removed, a client removed or given a new secret) moves a generation
//! counter on, here after this process commits it, and in the database through triggers
//! for writes of other processes (another instance, the admin command), which
//! `poll_changes` notices. A remembered answer is used only while the generation it was read
//! in is current, so this instance is exact at once and other instances' changes are seen
//! within one poll. Nothing remembered is used unless a poll succeeded in the last
//! `POLL_FRESH` (a server that cannot poll reads everything from the database, as does a
//! store that is not polled at all). Expiry is never remembered: callers judge it with
//! their clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use moka::future::Cache;

use super::{AccessTokenState, ClientRow, Store, StoreResult};

/// Answers remembered of each kind; beyond it the least used are read again.
const CAPACITY: u64 = 100_000;

/// How recent the last successful poll must be for remembered answers to be used.
const POLL_FRESH: std::time::Duration = std::time::Duration::from_secs(3);

/// Milliseconds since this process first asked, for the time of the last poll.
fn millis() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

pub struct Live {
    generation: AtomicU64,
    /// The database's revocation counter when last polled.
    seen: AtomicI64,
    /// When a poll last succeeded (`millis`); 0: never.
    polled_at: AtomicU64,
    tokens: Cache<String, (u64, Arc<AccessTokenState>)>,
    /// Client-credentials tokens by jti: whether revoked (`None`: its client is gone).
    machine: Cache<String, (u64, Option<bool>)>,
    clients: Cache<String, (u64, Arc<ClientRow>)>,
}

impl Default for Live {
    fn default() -> Self {
        Self {
            generation: AtomicU64::new(0),
            seen: AtomicI64::new(-1),
            polled_at: AtomicU64::new(0),
            tokens: Cache::new(CAPACITY),
            machine: Cache::new(CAPACITY),
            clients: Cache::new(CAPACITY),
        }
    }
}

impl Store {
    /// Forgets every remembered answer: called after each commit that may change one.
    pub(super) fn changed(&self) {
        self.live.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The current generation, or `None` when other processes' changes may be unseen
    /// (no recent successful poll): then nothing remembered is used.
    fn generation(&self) -> Option<u64> {
        let polled = self.live.polled_at.load(Ordering::Acquire);
        let fresh = polled > 0 && millis().saturating_sub(polled) < POLL_FRESH.as_millis() as u64;
        fresh.then(|| self.live.generation.load(Ordering::Acquire))
    }

    /// Notices changes other processes committed since the last poll.
    pub async fn poll_changes(&self) -> StoreResult<()> {
        let (seq,): (i64,) = sqlx::query_as("SELECT seq FROM revocation_counter WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        if self.live.seen.swap(seq, Ordering::AcqRel) != seq {
            self.changed();
        }
        self.live
            .polled_at
            .store(millis().max(1), Ordering::Release);
        Ok(())
    }

    /// The access-token record introspection reports on.
    pub async fn access_token_state(&self, jti: &str) -> StoreResult<Option<AccessTokenState>> {
        let Some(generation) = self.generation() else {
            return self.load_access_token_state(jti).await;
        };
        if let Some((g, row)) = self.live.tokens.get(jti).await
            && g == generation
        {
            return Ok(Some((*row).clone()));
        }
        let row = self.load_access_token_state(jti).await?;
        if let Some(row) = &row {
            self.live
                .tokens
                .insert(jti.to_owned(), (generation, Arc::new(row.clone())))
                .await;
        }
        Ok(row)
    }

    /// See `load_machine_token_revoked`.
    pub async fn machine_token_revoked(
        &self,
        jti: &str,
        client_id: &str,
    ) -> StoreResult<Option<bool>> {
        let Some(generation) = self.generation() else {
            return self.load_machine_token_revoked(jti, client_id).await;
        };
        if let Some((g, state)) = self.live.machine.get(jti).await
            && g == generation
        {
            return Ok(state);
        }
        let state = self.load_machine_token_revoked(jti, client_id).await?;
        self.live
            .machine
            .insert(jti.to_owned(), (generation, state))
            .await;
        Ok(state)
    }

    /// A registered client. An unknown one is not remembered (it may be added any moment).
    pub async fn client(&self, client_id: &str) -> StoreResult<Option<ClientRow>> {
        let Some(generation) = self.generation() else {
            return self.load_client(client_id).await;
        };
        if let Some((g, row)) = self.live.clients.get(client_id).await
            && g == generation
        {
            return Ok(Some((*row).clone()));
        }
        let row = self.load_client(client_id).await?;
        if let Some(row) = &row {
            self.live
                .clients
                .insert(client_id.to_owned(), (generation, Arc::new(row.clone())))
                .await;
        }
        Ok(row)
    }
}
