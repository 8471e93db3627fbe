//! The audit trail off the request path: a request records its event and moves on, and a
//! writer task stores what has gathered in one transaction per batch. Reading the trail
//! through this store (`audit_events`, `count`), purging it and closing the store write what
//! is waiting first, so nothing is lost on a clean shutdown; a crash loses what had not
//! reached the database yet: the events of the last `GATHER` interval and of the batch
//! being written.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{AuditEvent, Store, StoreResult};

/// Most events held in memory while the database refuses them; beyond it the oldest go
/// (and the loss is logged).
const MAX_PENDING: usize = 100_000;

/// How long the writer lets events gather before it writes them.
const GATHER: std::time::Duration = std::time::Duration::from_millis(50);

#[derive(Default)]
pub struct AuditQueue {
    pending: Mutex<Vec<AuditEvent>>,
    wake: tokio::sync::Notify,
    /// Held while a batch is written, so that batches land in order.
    writing: tokio::sync::Mutex<()>,
    writer_started: AtomicBool,
}

impl Store {
    /// Queues an event for the writer task (started by the first event).
    pub fn audit_soon(&self, event: AuditEvent) {
        let mut pending = self.audit_queue.pending.lock().expect("audit lock");
        if pending.len() >= MAX_PENDING {
            pending.remove(0);
            tracing::error!(
                "the audit queue is full (the database refuses writes): oldest event dropped"
            );
        }
        pending.push(event);
        drop(pending);
        if !self.audit_queue.writer_started.swap(true, Ordering::AcqRel) {
            let store = self.clone();
            tokio::spawn(async move {
                loop {
                    store.audit_queue.wake.notified().await;
                    // Under load, a moment's wait turns many transactions into one.
                    tokio::time::sleep(GATHER).await;
                    if let Err(e) = store.flush_audit().await {
                        tracing::error!(error = %e, "writing audit events failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        store.audit_queue.wake.notify_one();
                    }
                }
            });
        }
        self.audit_queue.wake.notify_one();
    }

    /// Writes every queued event, in one transaction. On failure they stay queued.
    pub async fn flush_audit(&self) -> StoreResult<()> {
        let _writing = self.audit_queue.writing.lock().await;
        let batch = std::mem::take(&mut *self.audit_queue.pending.lock().expect("audit lock"));
        if batch.is_empty() {
            return Ok(());
        }
        let result: StoreResult<()> = async {
            let mut tx = self.writer.begin().await?;
            for event in &batch {
                Self::insert_audit(&mut tx, event).await?;
            }
            tx.commit().await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let mut pending = self.audit_queue.pending.lock().expect("audit lock");
            let newer = std::mem::replace(&mut *pending, batch);
            pending.extend(newer);
            return Err(e);
        }
        Ok(())
    }
}
