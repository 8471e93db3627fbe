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
    tokens: Cache<String, (u64, Option<AccessTokenState>)>,
    /// Client-credentials tokens by jti: whether revoked (`None`: its client is gone).
    machine: Cache<String, (u64, Option<bool>)>,
    clients: Cache<String, (u64, Option<ClientRow>)>,
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
        self.remembered(&self.live.tokens, jti, Option::is_some, || {
            self.load_access_token_state(jti)
        })
        .await
    }

    /// See `load_machine_token_revoked`.
    pub async fn machine_token_revoked(
        &self,
        jti: &str,
        client_id: &str,
    ) -> StoreResult<Option<bool>> {
        self.remembered(
            &self.live.machine,
            jti,
            |_| true,
            || self.load_machine_token_revoked(jti, client_id),
        )
        .await
    }

    /// A registered client. An unknown one is not remembered (it may be added any moment).
    pub async fn client(&self, client_id: &str) -> StoreResult<Option<ClientRow>> {
        self.remembered(&self.live.clients, client_id, Option::is_some, || {
            self.load_client(client_id)
        })
        .await
    }

    /// `cache`'s answer for `key` if it was read in the current generation, else `load`'s,
    /// remembered when `keep` says so.
    async fn remembered<V, F>(
        &self,
        cache: &Cache<String, (u64, V)>,
        key: &str,
        keep: impl Fn(&V) -> bool,
        load: impl FnOnce() -> F,
    ) -> StoreResult<V>
    where
        V: Clone + Send + Sync + 'static,
        F: std::future::Future<Output = StoreResult<V>>,
    {
        let Some(generation) = self.generation() else {
            return load().await;
        };
        if let Some((g, value)) = cache.get(key).await
            && g == generation
        {
            return Ok(value);
        }
        let value = load().await?;
        if keep(&value) {
            cache
                .insert(key.to_owned(), (generation, value.clone()))
                .await;
        }
        Ok(value)
    }
}
