//! Counting attempts per key (a username, a client address) in a sliding window. An
//! attempt is reserved before the expensive or sensitive work starts, atomically per key,
//! so parallel requests cannot all slip under the limit; a reservation that turns out
//! fine is given back, one that fails stays counted.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::future::Cache;

#[derive(Debug)]
struct Window {
    count: u32,
    /// When the first and the last counted attempts were reserved.
    first: Instant,
    last: Instant,
}

#[derive(Clone)]
pub struct Throttle {
    windows: Cache<String, Arc<Mutex<Window>>>,
    max: u32,
    window: Duration,
    /// Count from the first attempt (a quota per window) rather than from the last one.
    fixed: bool,
}

/// One reserved attempt. Dropping it keeps it counted; `give_back` un-counts it.
pub struct Reservation {
    window: Arc<Mutex<Window>>,
}

impl Reservation {
    pub fn give_back(self) {
        let mut w = self.window.lock().expect("throttle lock poisoned");
        w.count = w.count.saturating_sub(1);
    }
}

impl Throttle {
    /// At most `max` counted attempts per key, each within `window` of the previous one.
    pub fn new(max: u32, window: Duration, capacity: u64) -> Self {
        Self {
            windows: Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(window)
                .build(),
            max,
            window,
            fixed: false,
        }
    }

    /// At most `max` attempts per key in each `window` counted from its first attempt.
    pub fn quota(max: u32, window: Duration, capacity: u64) -> Self {
        Self {
            fixed: true,
            ..Self::new(max, window, capacity)
        }
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Reserves an attempt for `key`, or says how long until one is allowed again.
    pub async fn reserve(&self, key: &str) -> Result<Reservation, Duration> {
        let window = self
            .windows
            .get_with_by_ref(key, async {
                Arc::new(Mutex::new(Window {
                    count: 0,
                    first: Instant::now(),
                    last: Instant::now(),
                }))
            })
            .await;
        let mut w = window.lock().expect("throttle lock poisoned");
        let now = Instant::now();
        let elapsed = now.duration_since(if self.fixed { w.first } else { w.last });
        if elapsed >= self.window {
            w.count = 0;
        }
        if w.count >= self.max {
            return Err(self
                .window
                .saturating_sub(elapsed)
                .max(Duration::from_secs(1)));
        }
        if w.count == 0 {
            w.first = now;
        }
        w.count += 1;
        w.last = now;
        drop(w);
        Ok(Reservation { window })
    }
}

/// Quotas per minute for the back-channel endpoints: one per client address, one per
/// confidential client. Per instance: with several instances a caller gets each quota from
/// each of them.
#[derive(Clone)]
pub struct RateLimits {
    per_address: Option<Throttle>,
    per_client: Option<Throttle>,
}

impl RateLimits {
    /// Requests per minute; 0 turns a limit off.
    pub fn per_minute(per_address: u32, per_client: u32) -> Self {
        let quota =
            |max: u32| (max > 0).then(|| Throttle::quota(max, Duration::from_secs(60), 100_000));
        Self {
            per_address: quota(per_address),
            per_client: quota(per_client),
        }
    }

    /// Counts one request from `address`, or says how long until one is allowed.
    pub async fn address(&self, address: Option<std::net::IpAddr>) -> Result<(), Duration> {
        match (&self.per_address, address) {
            (Some(t), Some(ip)) => t.reserve(&ip.to_string()).await.map(drop),
            _ => Ok(()),
        }
    }

    /// Counts one request from a confidential client.
    pub async fn client(&self, client_id: &str) -> Result<(), Duration> {
        match &self.per_client {
            Some(t) => t.reserve(client_id).await.map(drop),
            None => Ok(()),
        }
    }
}

/// "15 minutes", "1 hour", "30 seconds": a window for people to read.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = if s >= 3600 && s.is_multiple_of(3600) {
        (s / 3600, "hour")
    } else if s >= 60 {
        (s.div_ceil(60), "minute")
    } else {
        (s.max(1), "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parallel_reservations_never_exceed_the_limit() {
        let t = Throttle::new(10, Duration::from_secs(60), 100);
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let t = t.clone();
                tokio::spawn(async move { t.reserve("alice").await.is_ok() })
            })
            .collect();
        let mut ok = 0;
        for task in tasks {
            ok += usize::from(task.await.unwrap());
        }
        assert_eq!(ok, 10);
        assert!(t.reserve("bob").await.is_ok(), "keys are independent");
    }

    #[tokio::test]
    async fn given_back_attempts_do_not_count_and_the_window_ends() {
        let t = Throttle::new(2, Duration::from_millis(300), 100);
        t.reserve("k").await.unwrap().give_back();
        let _a = t.reserve("k").await.unwrap();
        let _b = t.reserve("k").await.unwrap();
        assert!(t.reserve("k").await.is_err());
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(t.reserve("k").await.is_ok());
    }

    #[tokio::test]
    async fn a_quota_is_counted_from_the_first_attempt() {
        let t = Throttle::quota(2, Duration::from_millis(300), 100);
        let _a = t.reserve("k").await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _b = t.reserve("k").await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(
            t.reserve("k").await.is_ok(),
            "a new window began 300 ms after the first"
        );
    }

    #[test]
    fn windows_read_well() {
        assert_eq!(human(Duration::from_secs(900)), "15 minutes");
        assert_eq!(human(Duration::from_secs(3600)), "1 hour");
        assert_eq!(human(Duration::from_secs(61)), "2 minutes");
        assert_eq!(human(Duration::from_secs(5)), "5 seconds");
    }
}
