//! What every introspection and client authentication reads, answered from memory for as
//! long as nothing that could change the answer has happened.
//!
//! Every write that can end a token's life or change a client (a revocation, a replay, a
//! user disabled or removed, a client removed or given a new secret) moves a generation
//! counter on, here after this process commits it, and in the database through triggers
//! for writes of other processes (another instance, the admin command), which
//! `poll_changes` notices. A remembered answer is used only while the generation it was read
//! in is current, so this instance is exact at once and other instances' changes are seen
//! within one poll. Expiry is never remembered: callers judge it with their clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use moka::future::Cache;

use super::{AccessTokenState, ClientRow, Store, StoreResult};

/// Answers remembered of each kind; beyond it the least used are read again.
const CAPACITY: u64 = 100_000;

pub struct Live {
    generation: AtomicU64,
    /// The database's revocation counter when last polled.
    seen: AtomicI64,
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

    fn generation(&self) -> u64 {
        self.live.generation.load(Ordering::Acquire)
    }

    /// Notices changes other processes committed since the last poll.
    pub async fn poll_changes(&self) -> StoreResult<()> {
        let (seq,): (i64,) = sqlx::query_as("SELECT seq FROM revocation_counter WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        if self.live.seen.swap(seq, Ordering::AcqRel) != seq {
            self.changed();
        }
        Ok(())
    }

    /// The access-token record introspection reports on.
    pub async fn access_token_state(&self, jti: &str) -> StoreResult<Option<AccessTokenState>> {
        let generation = self.generation();
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
        let generation = self.generation();
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
        let generation = self.generation();
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
