//! Password checks off the async runtime, with bounded cost. An argon2id check takes
//! 19 MiB and tens of milliseconds of CPU, so unbounded parallel sign-ins are unbounded
//! memory. Checks run on a fixed set of worker threads (one per core): at most that many
//! run at once, and because the same threads always do the work, the allocator keeps at
//! most one hash's memory per thread instead of one per blocking-pool thread. A request
//! that cannot get a worker within `wait` is told to come back later.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};

use crate::password::{hash_password, verify_password};

type Job = Box<dyn FnOnce() + Send>;

/// The pool is saturated: answer 503 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

#[derive(Clone)]
pub struct PasswordPool {
    jobs: mpsc::Sender<Job>,
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl PasswordPool {
    /// `workers` threads; a caller waits at most `wait` for one of them.
    pub fn new(workers: usize, wait: Duration) -> Self {
        let (jobs, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("password-{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = rx.lock().map(|r| r.recv());
                        match job {
                            Ok(Ok(job)) => job(),
                            _ => return, // the pool is gone
                        }
                    }
                })
                .expect("spawning a password worker thread");
        }
        Self {
            jobs,
            permits: Arc::new(Semaphore::new(workers.max(1))),
            wait,
        }
    }

    /// One worker per core the process may use.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(cores, Duration::from_secs(2))
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        // The permit travels with the job and is released when the work is done, not when
        // the caller stops waiting: a client that disconnects cannot queue more work.
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(work());
                drop(permit);
            }))
            .map_err(|_| Busy)?;
        rx.await.map_err(|_| Busy)
    }

    /// Checks a password against a stored hash, or against a fixed dummy hash when the user
    /// does not exist, so that the time taken does not tell which usernames exist.
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, Busy> {
        self.run(move || {
            static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            match phc {
                Some(phc) => verify_password(&password, &phc),
                None => {
                    let dummy = DUMMY.get_or_init(|| hash_password("dummy password for timing"));
                    let _ = verify_password(&password, dummy);
                    false
                }
            }
        })
        .await
    }

    pub async fn hash(&self, password: String) -> Result<String, Busy> {
        self.run(move || hash_password(&password)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checks_run_at_most_one_per_worker_and_the_rest_wait_or_are_refused() {
        let pool = PasswordPool::new(1, Duration::from_millis(50));
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
                tokio::spawn(async move {
                    pool.run(move || {
                        use std::sync::atomic::Ordering::SeqCst;
                        let now = running.fetch_add(1, SeqCst) + 1;
                        peak.fetch_max(now, SeqCst);
                        std::thread::sleep(Duration::from_millis(200));
                        running.fetch_sub(1, SeqCst);
                    })
                    .await
                })
            })
            .collect();
        let mut busy = 0;
        for t in tasks {
            if t.await.unwrap() == Err(Busy) {
                busy += 1;
            }
        }
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(busy, 3, "one ran; the others gave up after waiting 50 ms");
        let h = pool.hash("pw".into()).await.unwrap();
        assert!(pool.verify("pw".into(), Some(h)).await.unwrap());
        assert!(!pool.verify("pw".into(), None).await.unwrap());
    }
}
