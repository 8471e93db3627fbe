//! The metrics of every request, counted without allocating: a (route, method, status)
//! series is looked up in the registry once, then found again by a hash of its labels under
//! a read lock. Request ids come from a counter instead of the system's random source.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderValue, Request};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use tower_http::request_id::{MakeRequestId, RequestId};

use crate::Metrics;

struct Series {
    route: Box<str>,
    method: &'static str,
    status: u16,
    count: Counter,
    latency: Histogram,
}

#[derive(Default)]
pub struct RequestSeries {
    by_hash: RwLock<HashMap<u64, Vec<Series>>>,
}

fn key(route: &str, method: &str, status: u16) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (route, method, status).hash(&mut h);
    h.finish()
}

impl Metrics {
    /// Counts one answered request and its latency.
    pub fn request(&self, route: &str, method: &'static str, status: u16, seconds: f64) {
        let k = key(route, method, status);
        let series = &self.inner.requests;
        {
            let map = series.by_hash.read().expect("metrics lock");
            if let Some(s) = map.get(&k).and_then(|v| {
                v.iter()
                    .find(|s| &*s.route == route && s.method == method && s.status == status)
            }) {
                s.count.inc();
                s.latency.observe(seconds);
                return;
            }
        }
        let status_text = status.to_string();
        self.inc(
            "http_requests_total",
            &[
                ("route", route),
                ("method", method),
                ("status", &status_text),
            ],
        );
        self.observe(
            "http_request_duration_seconds",
            &[("route", route)],
            seconds,
        );
        let (Some(count), Some(latency)) = (
            self.counter_handle(
                "http_requests_total",
                &[
                    ("route", route),
                    ("method", method),
                    ("status", &status_text),
                ],
            ),
            self.histogram_handle("http_request_duration_seconds", &[("route", route)]),
        ) else {
            return;
        };
        series
            .by_hash
            .write()
            .expect("metrics lock")
            .entry(k)
            .or_default()
            .push(Series {
                route: route.into(),
                method,
                status,
                count,
                latency,
            });
    }
}

/// `x-request-id` values unique within this process and across its restarts: a random
/// prefix drawn at start, then a counter.
#[derive(Clone)]
pub struct CountingRequestId {
    prefix: std::sync::Arc<str>,
    next: std::sync::Arc<AtomicU64>,
}

impl Default for CountingRequestId {
    fn default() -> Self {
        let seed = std::collections::hash_map::RandomState::new();
        let mut h = seed.build_hasher();
        std::time::SystemTime::now().hash(&mut h);
        std::process::id().hash(&mut h);
        Self {
            prefix: format!("{:016x}", h.finish()).into(),
            next: Default::default(),
        }
    }
}

impl MakeRequestId for CountingRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n:x}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}
