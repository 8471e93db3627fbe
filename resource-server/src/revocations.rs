//! Following the authorization server's revocation feed (`oauth_protocol::revocations`):
//! every `revocation_poll` seconds the events since the last read end the cached answers of
//! the tokens they name, so a revocation is seen here within about one poll instead of at the
//! end of `cache_ttl`. While the feed cannot be read, cached answers stay until their TTL,
//! which remains the upper bound.
//!
//! The authorization server sends a few events before the cursor again with each answer (on
//! PostgreSQL two revoking commits at one instant can take their ids out of order); events
//! already applied are skipped by id.

use std::collections::BTreeSet;
use std::time::Duration;

use oauth_protocol::revocations::FeedAnswer;

use crate::introspection::{Introspector, Unavailable};

/// Ids remembered as applied, below the cursor.
const REMEMBERED: i64 = 1024;

pub struct Follower {
    introspector: Introspector,
    endpoint: String,
    /// `None` until the first read: where the feed stood when this server started.
    cursor: Option<i64>,
    applied: BTreeSet<i64>,
    failing: bool,
}

impl Follower {
    pub fn new(introspector: Introspector, endpoint: String) -> Self {
        Self {
            introspector,
            endpoint,
            cursor: None,
            applied: BTreeSet::new(),
            failing: false,
        }
    }

    /// Reads every page the feed has now and applies it.
    pub async fn poll(&mut self) -> Result<(), Unavailable> {
        loop {
            let answer = self
                .introspector
                .read_feed(&self.endpoint, self.cursor)
                .await?;
            let more = answer.more;
            self.apply(answer);
            if !more {
                return Ok(());
            }
        }
    }

    fn apply(&mut self, answer: FeedAnswer) {
        if answer.reset {
            tracing::info!(
                "the revocation feed lost this server's place: every cached answer is forgotten"
            );
            self.introspector.forget_all();
            self.applied.clear();
        }
        let fresh: Vec<_> = answer
            .events
            .into_iter()
            .filter(|e| self.applied.insert(e.id))
            .collect();
        self.introspector.forget(&fresh);
        self.cursor = Some(answer.cursor);
        let floor = answer.cursor - REMEMBERED;
        self.applied = self.applied.split_off(&floor);
    }

    /// Polls every `every` until the task is dropped; failures are logged once per outage.
    pub async fn run(mut self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.poll().await {
                Ok(()) if self.failing => {
                    self.failing = false;
                    tracing::info!("the revocation feed can be read again");
                }
                Ok(()) => {}
                Err(e) => {
                    self.introspector
                        .stats
                        .feed_errors
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if !self.failing {
                        self.failing = true;
                        tracing::warn!(error = %e, "the revocation feed cannot be read: revocations are seen only when cached answers end (cache_ttl)");
                    }
                }
            }
        }
    }
}
