//! Writes kept off the request path: the request counts of `get_api_usage` and the gateway's
//! audit of calls. A request adds to memory and moves on; a writer task stores what has
//! gathered once a second, in one transaction. Reading either through this store, and
//! closing it, writes what is waiting first, so a count or a call is visible at once on this
//! instance and nothing is lost on a clean shutdown. A crash loses at most the last second.
//! A user's written counts are read from the database at most once a second: another
//! instance's counts show up within two seconds, this instance's at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{GatewayCall, Store};

const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Most gateway calls held while the database refuses them; beyond it the oldest go (and
/// the loss is logged).
const MAX_CALLS: usize = 100_000;

#[derive(Default)]
pub struct Pending {
    /// Counts not yet written, by user and then name.
    usage: Mutex<HashMap<String, HashMap<String, i64>>>,
    calls: Mutex<Vec<GatewayCall>>,
    /// Held while a batch is written: a reader waits for it instead of seeing neither the
    /// batch in memory nor in the database.
    writing: tokio::sync::Mutex<()>,
    writer_started: AtomicBool,
    /// Each user's written counts as last read, for at most `FLUSH_EVERY` and only until this
    /// instance writes counts of that user (other instances write theirs at the same pace).
    written: Mutex<HashMap<String, (std::time::Instant, Counts)>>,
}

/// A user's counts by name.
type Counts = Vec<(String, i64)>;

impl Store {
    /// Counts one call of `name` by `user`.
    pub fn count_request(&self, user: &str, name: &str) {
        {
            let mut usage = self.pending.usage.lock().expect("usage lock");
            let names = match usage.get_mut(user) {
                Some(n) => n,
                None => usage.entry(user.to_owned()).or_default(),
            };
            match names.get_mut(name) {
                Some(n) => *n += 1,
                None => {
                    names.insert(name.to_owned(), 1);
                }
            }
        }
        self.start_writer();
    }

    /// Records one call through the gateway.
    pub fn record_gateway_call(&self, call: GatewayCall) {
        let mut calls = self.pending.calls.lock().expect("calls lock");
        if calls.len() >= MAX_CALLS {
            calls.remove(0);
            tracing::error!(
                "the gateway call queue is full (the database refuses writes): oldest call record dropped"
            );
        }
        calls.push(call);
        drop(calls);
        self.start_writer();
    }

    fn start_writer(&self) {
        if self.pending.writer_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            loop {
                tick.tick().await;
                if let Err(e) = store.flush().await {
                    tracing::error!(error = %e, "writing request counts and gateway calls failed; retrying");
                }
            }
        });
    }

    /// Writes what is waiting, in one transaction. On failure it stays waiting.
    pub async fn flush(&self) -> sqlx::Result<()> {
        let _writing = self.pending.writing.lock().await;
        self.flush_locked().await
    }

    async fn flush_locked(&self) -> sqlx::Result<()> {
        let usage = std::mem::take(&mut *self.pending.usage.lock().expect("usage lock"));
        let calls = std::mem::take(&mut *self.pending.calls.lock().expect("calls lock"));
        if usage.is_empty() && calls.is_empty() {
            return Ok(());
        }
        let result = async {
            let mut tx = self.writer.begin().await?;
            // In one order for every instance: two instances' batches lock the same rows in
            // the same order and wait for each other instead of deadlocking.
            let mut rows: Vec<(&String, &String, &i64)> = usage
                .iter()
                .flat_map(|(user, names)| names.iter().map(move |(name, n)| (user, name, n)))
                .collect();
            rows.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            for (user, name, n) in rows {
                sqlx::query(
                    "INSERT INTO api_usage (user_sub, name, count) VALUES ($1, $2, $3)
                     ON CONFLICT (user_sub, name) DO UPDATE SET count = api_usage.count + $3",
                )
                .bind(user)
                .bind(name)
                .bind(n)
                .execute(&mut *tx)
                .await?;
            }
            for c in &calls {
                Self::insert_gateway_call_in(&mut tx, c).await?;
            }
            tx.commit().await
        }
        .await;
        if result.is_ok() {
            let mut written = self.pending.written.lock().expect("usage lock");
            for user in usage.keys() {
                written.remove(user);
            }
        }
        if let Err(e) = result {
            // Back in the queue, ahead of anything newer.
            let mut pending = self.pending.usage.lock().expect("usage lock");
            for (user, names) in usage {
                let entry = pending.entry(user).or_default();
                for (name, n) in names {
                    *entry.entry(name).or_default() += n;
                }
            }
            drop(pending);
            let mut pending = self.pending.calls.lock().expect("calls lock");
            let newer = std::mem::replace(&mut *pending, calls);
            pending.extend(newer);
            return Err(e);
        }
        Ok(())
    }

    /// A user's request counts by name, including those not yet written.
    pub async fn usage(&self, user: &str) -> sqlx::Result<Vec<(String, i64)>> {
        let _writing = self.pending.writing.lock().await;
        let remembered = self
            .pending
            .written
            .lock()
            .expect("usage lock")
            .get(user)
            .filter(|(at, _)| at.elapsed() < FLUSH_EVERY)
            .map(|(_, rows)| rows.clone());
        let mut rows = match remembered {
            Some(rows) => rows,
            None => {
                let rows: Vec<(String, i64)> =
                    sqlx::query_as("SELECT name, count FROM api_usage WHERE user_sub = $1")
                        .bind(user)
                        .fetch_all(&self.pool)
                        .await?;
                let mut written = self.pending.written.lock().expect("usage lock");
                if written.len() > 100_000 {
                    written.clear();
                }
                written.insert(user.to_owned(), (std::time::Instant::now(), rows.clone()));
                rows
            }
        };
        if let Some(names) = self.pending.usage.lock().expect("usage lock").get(user) {
            for (name, n) in names {
                match rows.iter_mut().find(|(r, _)| r == name) {
                    Some((_, count)) => *count += n,
                    None => rows.push((name.clone(), *n)),
                }
            }
        }
        rows.sort();
        Ok(rows)
    }
}
